package train

import (
	"testing"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// BenchmarkTinyStep times one training step (forward, loss, backward, AdamW) on the tiny
// model and one sample, for each objective: compare the cal and ce lines of one run.
func BenchmarkTinyStep(b *testing.B) {
	for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
		b.Run(string(obj), func(b *testing.B) {
			m, be, s := tinySampleWith(b, tiny.Options{Seed: 11}, llava.LoadOptions{})
			ad, err := lora.New(be, &m.W, lora.Config{Rank: 8, Alpha: 16})
			if err != nil {
				b.Fatal(err)
			}
			defer ad.Close()
			ad.InitStandard(1)
			params := ad.Params()
			for _, p := range params {
				p.SetParam()
			}
			opt, err := NewOptimizer(be, params)
			if err != nil {
				b.Fatal(err)
			}
			defer opt.Close()
			dec := &llava.Decoder{HP: m.HP, W: &m.W, Adapter: ad}
			sg, err := NewStepGraph(be, dec, opt, Shape{Rows: s.batch.Rows(), Scored: len(s.rows), Obj: obj, Backward: true}, cal.Defaults())
			if err != nil {
				b.Fatal(err)
			}
			defer sg.Close()
			h := DefaultAdamW()
			b.ResetTimer()
			for range b.N {
				opt.ZeroGrad()
				if _, err := sg.Run(s.batch, s.rows, s.targets); err != nil {
					b.Fatal(err)
				}
				if _, err := opt.Update(h, 1, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
