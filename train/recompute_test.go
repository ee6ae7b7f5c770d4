package train

import (
	"math"
	"testing"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// TestRecomputeGivesTheSameGradients compares the LoRA gradients and the loss of a step
// that recomputes each block from its checkpoint with those of the single graph: equal
// to F32 rounding, for both objectives, with LoRA dropout too (the recomputed blocks must
// draw the masks their first computation drew).
func TestRecomputeGivesTheSameGradients(t *testing.T) {
	for _, c := range []struct {
		name    string
		obj     cal.Objective
		dropout float64
	}{{"ce", cal.CE, 0}, {"cal", cal.CAL, 0}, {"cal-dropout", cal.CAL, 0.3}, {"ce-dropout", cal.CE, 0.3}} {
		t.Run(c.name, func(t *testing.T) {
			m, be, s := tinySampleWith(t, tiny.Options{Seed: 11}, llava.LoadOptions{})
			grads := func(recompute string) ([][]float32, float64) {
				tr, err := NewTrainer(be, m, Setup{Objective: c.obj, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 4, Alpha: 4},
					Dropout: c.dropout, Seed: 3, BackwardWeights: "autodiff", NoImageWeights: "f32", Recompute: recompute})
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				tr.Adapter.InitRandom(5, 0.1)
				tr.ZeroGrad()
				mi, err := tr.Accumulate(s.trainBatch(), 77)
				if err != nil {
					t.Fatal(err)
				}
				var out [][]float32
				for _, p := range tr.Adapter.Params() {
					out = append(out, tr.Opt.Grad(p))
				}
				return out, mi.Loss
			}
			ref, l0 := grads("off")
			got, l1 := grads("on")
			worst := 0.0
			for i := range ref {
				var num, den float64
				for j := range ref[i] {
					d := float64(got[i][j] - ref[i][j])
					num += d * d
					den += float64(ref[i][j]) * float64(ref[i][j])
				}
				worst = math.Max(worst, math.Sqrt(num/den))
			}
			t.Logf("%s: loss %.7f vs %.7f; %d LoRA gradients, worst relative L2 difference %.2e", c.name, l1, l0, len(ref), worst)
			if worst > 1e-6 || math.Abs(l1-l0) > 1e-6*math.Abs(l0) {
				t.Errorf("recomputation changed the gradients (%.2e) or the loss (%v vs %v)", worst, l1, l0)
			}
		})
	}
}
