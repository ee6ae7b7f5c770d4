package train

import (
	"math"
	"testing"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/internal/testbackend"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// backendTol is, per device kind, the largest relative difference from the CPU alone
// accepted for logits and LoRA gradients (a step's values), and for the adapter after
// 20 steps (AdamW's first steps move each weight by about the learning rate whatever
// the gradient's size, so small differences in small gradients grow there).
var backendTol = map[string][2]float64{
	"blas":   {1e-5, 1e-3},
	"vulkan": {2e-3, 2e-2},
	"cuda":   {2e-3, 2e-2}, // small F32 products use TF32 there
	"metal":  {2e-3, 2e-2},
}

// TestBackendsMatchCPU runs the decoder, a CAL training step and 20 steps of training on
// each device backend present (through ggml's scheduler, the CPU taking what the
// device lacks) and on the CPU alone, and compares logits, gradients and adapters.
func TestBackendsMatchCPU(t *testing.T) {
	kinds := testbackend.Devices(t)
	if len(kinds) == 0 {
		t.Skip("no device backend library here (make blas, make vulkan, make cuda)")
	}
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, tiny.Options{Seed: 7}); err != nil {
		t.Fatal(err)
	}
	cpu, err := ggml.NewBackend("cpu", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cpu.Close)
	mRef, _, s := tinySampleOn(t, cpu, dir, tiny.BaseFile, llava.LoadOptions{})
	logitsRef := logitsOn(t, cpu, mRef, s)
	rigRef := newGradRig(t, mRef, cpu, s, cal.CAL)
	adRef := trainSteps(t, mRef, cpu, s, 20)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			be, err := ggml.NewBackend(kind, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(be.Close) // after the rigs' and trainers' own cleanups
			tol := backendTol[kind]
			m, _, _ := tinySampleOn(t, be, dir, tiny.BaseFile, llava.LoadOptions{})
			if e := maxRel(logitsOn(t, be, m, s), logitsRef); e > tol[0] {
				t.Errorf("%s: logits differ from the CPU's by %.3g (relative), more than %g", be.Describe(), e, tol[0])
			} else {
				t.Logf("%s: logits within %.3g of the CPU's", be.Describe(), e)
			}
			rig := newGradRig(t, m, be, s, cal.CAL)
			if e := math.Abs(rig.loss-rigRef.loss) / math.Abs(rigRef.loss); e > tol[0] {
				t.Errorf("CAL loss %v vs the CPU's %v", rig.loss, rigRef.loss)
			}
			worst := 0.0
			for _, d := range gradDifferences(rigRef, rig) {
				worst = math.Max(worst, d)
			}
			if worst > tol[0] {
				t.Errorf("LoRA gradients differ from the CPU's by %.3g (relative L2), more than %g", worst, tol[0])
			}
			ad := trainSteps(t, m, be, s, 20)
			if e := maxRel(ad, adRef); e > tol[1] {
				t.Errorf("the adapter after 20 steps differs from the CPU run's by %.3g, more than %g", e, tol[1])
			}
			placed := be.Placed()
			t.Logf("gradients within %.3g, 20-step adapter within %.3g; nodes run per backend: %v", worst, maxRel(ad, adRef), placed)
			if placed[be.Name()] == 0 {
				t.Errorf("no node ran on %s: %v", be.Name(), placed)
			}
		})
	}
}

// logitsOn is the logits of the sample's rows on be, through a decoder without adapter.
func logitsOn(t *testing.T, be *ggml.Backend, m *llava.Model, s sample) []float32 {
	t.Helper()
	d := &llava.Decoder{HP: m.HP, W: &m.W, CPU: be.IsCPU()}
	out, err := llava.ComputeLogits(be, d, s.batch, false)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// trainSteps trains a fresh CAL adapter on the sample for n steps on be and returns its
// weights, every LoRA tensor in order.
func trainSteps(t *testing.T, m *llava.Model, be *ggml.Backend, s sample, n int) []float32 {
	t.Helper()
	tr, err := NewTrainer(be, m, Setup{Objective: cal.CAL, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 4, Alpha: 8},
		BackwardWeights: "autodiff", NoImageWeights: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.Adapter.InitRandom(5, 0.1)
	b := s.trainBatch()
	for range n {
		tr.ZeroGrad()
		if _, err := tr.Accumulate(b, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Update(DefaultAdamW(), 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	var out []float32
	for _, p := range tr.Adapter.Params() {
		out = append(out, p.F32()...)
	}
	return out
}

// maxRel is max|a−b| / max|b|.
func maxRel(a, b []float32) float64 {
	var d, m float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / m
}
