package train

import (
	"slices"
	"testing"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// TestLoRADropout checks that dropout changes the training gradients from step to step
// (different masks), repeats them for the same mask seed, and leaves evaluation alone.
func TestLoRADropout(t *testing.T) {
	m, be, s := tinySampleWith(t, tiny.Options{Seed: 11}, llava.LoadOptions{})
	ad, err := lora.New(be, &m.W, lora.Config{Rank: 4, Alpha: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	ad.InitRandom(2, 0.1)
	if err := ad.EnableDropout(be, 0.5, 9); err != nil {
		t.Fatal(err)
	}
	params := ad.Params()
	for _, p := range params {
		p.SetParam()
	}
	opt, err := NewOptimizer(be, params)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	dec := &llava.Decoder{HP: m.HP, W: &m.W, Adapter: ad}
	sh := Shape{Rows: s.batch.Rows(), Scored: len(s.rows), Obj: cal.CE, Backward: true}
	sg, err := NewStepGraph(be, dec, opt, sh, cal.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defer sg.Close()
	if len(sg.drops) != 7*m.HP.NLayer {
		t.Fatalf("%d dropout sites, want one per adapted projection (%d)", len(sg.drops), 7*m.HP.NLayer)
	}
	grad := func(seed uint64) []float32 {
		opt.ZeroGrad()
		sg.SetDropoutSeed(seed)
		if _, err := sg.Run(s.batch, s.rows, s.targets); err != nil {
			t.Fatal(err)
		}
		return opt.Grad(params[0])
	}
	a, b, a2 := grad(1), grad(2), grad(1)
	if slices.Equal(a, b) {
		t.Error("different dropout masks gave the same gradient")
	}
	if !slices.Equal(a, a2) {
		t.Error("the same dropout seed gave different gradients")
	}
	sh.Backward = false
	ev, err := NewStepGraph(be, dec, nil, sh, cal.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if len(ev.drops) != 0 {
		t.Errorf("an evaluation graph has %d dropout sites", len(ev.drops))
	}
}
