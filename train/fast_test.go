package train

import (
	"math"
	"testing"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// TestTransposedBackwardMatchesAutodiff compares the LoRA gradients of a step whose
// backward multiplies with transposed copies of the frozen matrices against ggml's
// autodiff products: equal with F32 copies, within BF16's rounding with BF16 copies.
func TestTransposedBackwardMatchesAutodiff(t *testing.T) {
	for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
		m, be, s := tinySample(t)
		ref := newGradRig(t, m, be, s, obj)
		for _, c := range []struct {
			typ string
			tol float64
		}{{"f32", 1e-5}, {"bf16", 2e-2}} {
			got := newGradRig(t, m, be, s, obj, withCopies(c.typ, ""))
			// The rewrite must have replaced every product through a frozen weight: ggml's
			// autodiff graph has them, the rewritten one none.
			of := got.tr.Fast.Transposed.Of
			fp := ggml.FrozenProducts{Transposed: of}
			before, after := FrozenOutProds(ref.train.Graph(), fp), FrozenOutProds(got.train.Graph(), fp)
			if before == 0 || after != 0 || got.train.Rewritten < before {
				t.Fatalf("%s copies: %d out_prods through frozen weights before the rewrite, %d after, %d nodes rewritten (%d copies)",
					c.typ, before, after, got.train.Rewritten, len(of))
			}
			if math.Abs(got.loss-ref.loss) > 1e-6*math.Abs(ref.loss) {
				t.Fatalf("%s, %s copies: loss %v, autodiff graph %v", obj, c.typ, got.loss, ref.loss)
			}
			worst := 0.0
			for i, rel := range gradDifferences(ref, got) {
				worst = math.Max(worst, rel)
				if rel > c.tol {
					t.Errorf("%s, %s copies: %s gradient differs by %.2e (relative L2), want ≤ %.0e", obj, c.typ, ref.params[i].Name(), rel, c.tol)
				}
			}
			t.Logf("%s, %s transposed copies: %d LoRA gradients, worst relative L2 difference from autodiff %.2e", obj, c.typ, len(ref.params), worst)
		}
	}
}

// TestTransposedBackwardMatchesFiniteDifferences runs the finite-difference check with
// the BF16 copies training uses by default, on llama and on qwen2vl (M-RoPE).
func TestTransposedBackwardMatchesFiniteDifferences(t *testing.T) {
	m, be, s := tinySample(t)
	checkLoRAGradients(t, m, be, s, cal.CAL, withCopies("bf16", ""))
	m, be, s = tinySampleWith(t, tiny.Options{Seed: 11, Arch: tiny.ArchQwen2VL}, llava.LoadOptions{})
	checkLoRAGradients(t, m, be, s, cal.CAL, withCopies("bf16", ""))
}

// TestNoImageWeightsKeepDelta compares CAL's Δ and weights measured with the Q8_0 copies
// of the image-absent pass against those of the F32 weights.
func TestNoImageWeightsKeepDelta(t *testing.T) {
	m, be, s := tinySample(t)
	ref := newGradRig(t, m, be, s, cal.CAL)
	got := newGradRig(t, m, be, s, cal.CAL, withCopies("", "q8_0"))
	if nw := got.tr.Fast.NoImage; nw == nil || nw.W.Layers[0].Wq.Type() != ggml.TypeQ8_0 {
		t.Fatalf("the trainer made no q8_0 image-absent weights")
	}
	d0, d1 := ref.train.Loss.Delta.F32(), got.train.Loss.Delta.F32()
	var worst, scale float64
	for i := range s.targets {
		worst = math.Max(worst, math.Abs(float64(d1[i]-d0[i])))
		scale = math.Max(scale, math.Abs(float64(d0[i])))
	}
	t.Logf("Δ with Q8_0 image-absent weights: worst |difference| %.2e (largest |Δ| %.3g)", worst, scale)
	if scale == 0 || worst > 0.05*math.Max(scale, 1) {
		t.Errorf("Δ moved by %.3g with Q8_0 image-absent weights (largest |Δ| %.3g)", worst, scale)
	}
}

// TestTransposedOfQuantizedBase checks the copies of a Q8_0 base (dequantized, then
// transposed): F32 copies give autodiff's gradients, as out_prod dequantizes the same rows.
func TestTransposedOfQuantizedBase(t *testing.T) {
	m, be, s := tinySampleWith(t, tiny.Options{Seed: 11, WeightType: gguf.Q8_0, TiedOutput: true}, llava.LoadOptions{Trainable: true})
	if m.W.Output.Type() != ggml.TypeQ8_0 {
		t.Fatalf("output layer is %s, want q8_0", m.W.Output.Type())
	}
	ref := newGradRig(t, m, be, s, cal.CE)
	got := newGradRig(t, m, be, s, cal.CE, withCopies("f32", ""))
	worst := 0.0
	for _, rel := range gradDifferences(ref, got) {
		worst = math.Max(worst, rel)
	}
	t.Logf("Q8_0 base, F32 transposed copies: worst relative L2 difference from autodiff %.2e", worst)
	if worst > 1e-5 {
		t.Errorf("gradients differ from autodiff's by %.2e", worst)
	}
}
