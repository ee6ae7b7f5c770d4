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
	tr, err := NewTrainer(be, m, Setup{Objective: cal.CE, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 4, Alpha: 8},
		Dropout: 0.5, Seed: 9, BackwardWeights: "autodiff"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Adapter.InitRandom(2, 0.1)
	b := s.trainBatch()
	sg, err := tr.Graph(tr.Shape(b, cal.CE, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(sg.drops) != 7*m.HP.NLayer {
		t.Fatalf("%d dropout sites, want one per adapted projection (%d)", len(sg.drops), 7*m.HP.NLayer)
	}
	params := tr.Adapter.Params()
	grad := func(seed uint64) []float32 {
		tr.ZeroGrad()
		if _, err := tr.Accumulate(b, seed); err != nil {
			t.Fatal(err)
		}
		return tr.Opt.Grad(params[0])
	}
	a, b2, a2 := grad(1), grad(2), grad(1)
	if slices.Equal(a, b2) {
		t.Error("different dropout masks gave the same gradient")
	}
	if !slices.Equal(a, a2) {
		t.Error("the same dropout seed gave different gradients")
	}
	ev, err := tr.Graph(tr.Shape(b, cal.CE, false))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.drops) != 0 {
		t.Errorf("an evaluation graph has %d dropout sites", len(ev.drops))
	}
}
