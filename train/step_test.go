package train

import (
	"testing"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// tinySample builds "<prompt with image> answer" on the default tiny model (seed 11),
// supervising the answer tokens.
func tinySample(t *testing.T) (*llava.Model, *ggml.Backend, sample) {
	t.Helper()
	return tinySampleWith(t, tiny.Options{Seed: 11}, llava.LoadOptions{})
}

// TestLoRAGradientsMatchFiniteDifferences compares, for every LoRA tensor, the
// directional derivative of the loss along the tensor's own gradient with a central
// finite difference of the loss computed by a forward-only graph.
func TestLoRAGradientsMatchFiniteDifferences(t *testing.T) {
	for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
		t.Run(string(obj), func(t *testing.T) {
			m, be, s := tinySample(t)
			checkLoRAGradients(t, m, be, s, obj)
		})
		// The loss a few rows at a time (its gradient of the hidden states by block).
		t.Run(string(obj)+"/blocks", func(t *testing.T) {
			m, be, s := tinySample(t)
			checkLoRAGradients(t, m, be, s, obj, func(st *Setup) { st.LossBlock = 3 })
		})
	}
}

// TestAdamWDrivesLossDown trains on one sample and expects the loss to fall by ≥ 90%.
func TestAdamWDrivesLossDown(t *testing.T) {
	m, be, s := tinySample(t)
	tr, err := NewTrainer(be, m, Setup{Objective: cal.CE, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 8, Alpha: 16}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	h := DefaultAdamW()
	h.LR = 1e-2
	var first, last float64
	b := s.trainBatch()
	for step := 0; step < 80; step++ {
		tr.ZeroGrad()
		m, err := tr.Accumulate(b, 0)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = m.Loss
		}
		last = m.Loss
		if _, err := tr.Update(h, 1, 1.0); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loss %.4f → %.4f (%.1f%% lower) after 80 AdamW steps", first, last, 100*(1-last/first))
	if last > 0.1*first {
		t.Errorf("loss fell from %.4f to %.4f, less than 90%%", first, last)
	}
}
