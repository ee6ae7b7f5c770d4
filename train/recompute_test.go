package train

import (
	"math"
	"strings"
	"testing"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// TestRecomputeGivesTheSameGradients compares the LoRA gradients and the loss of a step
// that recomputes each block from its checkpoint with those of the single graph: equal
// to F32 rounding, for both objectives, with LoRA dropout too (the recomputed blocks must
// draw the masks their first computation drew), recomputing every block or all but the
// top one (CAL's pair, and with dropout its two full passes, split at that block), with
// the frozen products of none, one or all of the recomputed blocks stored.
func TestRecomputeGivesTheSameGradients(t *testing.T) {
	for _, c := range []struct {
		name    string
		obj     cal.Objective
		dropout float64
		arch    string
	}{{"ce", cal.CE, 0, ""}, {"cal", cal.CAL, 0, ""}, {"cal-dropout", cal.CAL, 0.3, ""}, {"ce-dropout", cal.CE, 0.3, ""},
		{"qwen2vl-cal", cal.CAL, 0, tiny.ArchQwen2VL}, {"qwen3vl-cal", cal.CAL, 0, tiny.ArchQwen3VL},
		{"gemma3-cal", cal.CAL, 0, tiny.ArchGemma3}} {
		t.Run(c.name, func(t *testing.T) {
			m, be, s := tinySampleWith(t, tiny.Options{Seed: 11, Arch: c.arch}, llava.LoadOptions{})
			grads := func(recompute string, rt retention) ([][]float32, float64) {
				keep := rt.Whole
				tr, err := NewTrainer(be, m, Setup{Objective: c.obj, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 4, Alpha: 4},
					Dropout: c.dropout, Seed: 3, BackwardWeights: "autodiff", NoImageWeights: "f32", Recompute: recompute})
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				tr.Plan.Kept, tr.Plan.Products, tr.graphs.retain = keep, rt.Products, rt
				tr.Adapter.InitRandom(5, 0.1)
				tr.ZeroGrad()
				mi, err := tr.Accumulate(s.trainBatch(), 77)
				if err != nil {
					t.Fatal(err)
				}
				if r := tr.graphs.recomputing; recompute == "on" && (r == nil || len(r.parts) != 2+m.HP.NLayer-keep) {
					t.Fatalf("the recomputing step does not have the forward, top and %d block graphs", m.HP.NLayer-keep)
				}
				if r := tr.graphs.recomputing; recompute == "on" && rt.Products > 0 && len(r.stored) == 0 {
					t.Fatalf("with the products of %d blocks stored, none were", rt.Products)
				}
				var out [][]float32
				for _, p := range tr.Adapter.Params() {
					out = append(out, tr.Opt.Grad(p))
				}
				return out, mi.Loss
			}
			ref, l0 := grads("off", retention{})
			for _, rt := range recomputeRetentions(m.HP.NLayer) {
				keep := rt.Whole
				got, l1 := grads("on", rt)
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
				t.Logf("%s, top %d blocks kept, products of %d stored: loss %.7f vs %.7f; %d LoRA gradients, worst relative L2 difference %.2e", c.name, keep, rt.Products, l1, l0, len(ref), worst)
				if worst > 1e-6 || math.Abs(l1-l0) > 1e-6*math.Abs(l0) {
					t.Errorf("recomputation (top %d kept, products of %d stored) changed the gradients (%.2e) or the loss (%v vs %v)", keep, rt.Products, worst, l1, l0)
				}
			}
		})
	}
}

// recomputeRetentions are the retentions the gradient test tries on n blocks: every
// number of whole blocks, each with no, one and every recomputed block's products stored.
func recomputeRetentions(n int) []retention {
	var out []retention
	for keep := 0; keep < n; keep++ {
		seen := map[int]bool{}
		for _, p := range []int{0, 1, n - keep} {
			if !seen[p] {
				seen[p] = true
				out = append(out, retention{Whole: keep, Products: p})
			}
		}
	}
	return out
}

// TestMemoryPlanKeepsWhatFits checks the plan's choice under a budget: the single graph
// when it fits, else recomputation storing the frozen products of as many blocks, and
// then keeping as many top blocks whole, as fit (one more would not), and a refusal
// naming what would fit when nothing does.
func TestMemoryPlanKeepsWhatFits(t *testing.T) {
	m, be, s := tinySampleWith(t, tiny.Options{Seed: 11}, llava.LoadOptions{})
	b := s.trainBatch()
	plan := func(budget int64, recompute string) (MemoryPlan, *Trainer, error) {
		st := Setup{Objective: cal.CAL, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 4, Alpha: 4}, BackwardWeights: "tiled",
			NoImageWeights: "f32", Recompute: recompute, PlanOnly: true, Budget: budget, BudgetName: "the test's budget"}
		st.Largest = (&Trainer{Setup: st}).Shape(b, cal.CAL, true)
		tr, err := NewTrainer(be, m, st)
		if err != nil {
			return MemoryPlan{}, nil, err
		}
		t.Cleanup(tr.Close)
		return tr.Plan, tr, nil
	}
	off, _, err := plan(0, "off")
	if err != nil {
		t.Fatal(err)
	}
	on, tr, err := plan(0, "on")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("single graph: %s", off)
	t.Logf("every block recomputed: %s", on)
	if on.Total() >= off.Total() {
		t.Fatalf("recomputation predicts %d bytes, not less than the single graph's %d", on.Total(), off.Total())
	}
	if p, _, err := plan(off.Total(), "auto"); err != nil || p.Recompute {
		t.Errorf("with the single graph's memory, auto chose %s (%v)", p, err)
	}
	p, _, err := plan(off.Total()-1, "auto")
	if err != nil || !p.Recompute || p.Total() > off.Total()-1 {
		t.Fatalf("just below the single graph's memory, auto chose %s (%v)", p, err)
	}
	t.Logf("just below it: %s", p)
	// One more block's products stored, or with every block's, one more block kept
	// whole, would not have fitted.
	n := m.HP.NLayer
	next := retention{Whole: p.Kept, Products: p.Products + 1}
	if p.Products >= n-p.Kept {
		next = retention{Whole: p.Kept + 1, Products: n - p.Kept - 1}
	}
	if next.Whole < n {
		c, ck, err := tr.measureCompute(tr.Setup.Largest, true, next, p.Backward, p.Forward)
		if err != nil {
			t.Fatal(err)
		}
		if more, b := p.Total()-p.Compute-p.Checkpoints+c+ck, off.Total()-1; more <= b-b/keepMargin {
			t.Errorf("auto chose %s where %+v fits (%d bytes)", p, next, more)
		}
	}
	if _, _, err := plan(on.Total()-1, "auto"); err == nil || !strings.Contains(err.Error(), "what would fit") {
		t.Errorf("below every plan's memory: %v, want a refusal saying what would fit", err)
	}
}
