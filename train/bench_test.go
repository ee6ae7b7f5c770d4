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
			tr, err := NewTrainer(be, m, Setup{Objective: obj, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 8, Alpha: 16}, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			batch := s.trainBatch()
			h := DefaultAdamW()
			b.ResetTimer()
			for range b.N {
				tr.ZeroGrad()
				if _, err := tr.Accumulate(batch, 0); err != nil {
					b.Fatal(err)
				}
				if _, err := tr.Update(h, 1, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
