package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/testbackend"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// TestGradientsOnOtherBases runs the LoRA gradient check on bases that are not the
// default F32 llama: half-precision weights, which out_prod cannot take, so they are
// loaded Trainable and converted to F32; the qwen2 architecture (q/k/v biases, neox
// RoPE); qwen2vl (M-RoPE); qwen3vl (interleaved M-RoPE, QK-norm, deepstack); Llama 3.x's RoPE frequency factors with llama's optional
// biases; YaRN; gemma3. Q8_0 bases have their own test below.
func TestGradientsOnOtherBases(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tiny.Options
	}{
		{"f16", tiny.Options{Seed: 11, WeightType: gguf.F16}},
		{"f16-tied", tiny.Options{Seed: 11, WeightType: gguf.F16, TiedOutput: true}},
		{"bf16", tiny.Options{Seed: 11, WeightType: gguf.BF16}},
		{"qwen2", tiny.Options{Seed: 11, Arch: tiny.ArchQwen2}},
		{"qwen2-tied-f16", tiny.Options{Seed: 11, Arch: tiny.ArchQwen2, TiedOutput: true, WeightType: gguf.F16}},
		// Llama 3.x's frequency factors with every optional llama bias, and YaRN.
		{"llama3-biases", tiny.Options{Seed: 11, RopeFreqs: true, Biases: true}},
		{"yarn", tiny.Options{Seed: 11, RopeScaling: "yarn"}},
		{"qwen2-output-bias", tiny.Options{Seed: 11, Arch: tiny.ArchQwen2, Biases: true}},
		{"head-width", tiny.Options{Seed: 11, HeadDim: 32}},
		// Qwen2-VL: M-RoPE (ggml_rope_multi's backward), image rows on a 4×4 grid.
		{"qwen2vl", tiny.Options{Seed: 11, Arch: tiny.ArchQwen2VL}},
		{"qwen25vl", tiny.Options{Seed: 11, Arch: tiny.ArchQwen2VL, Projector: tiny.ProjQwen25VL}},
		// Qwen3-VL: interleaved M-RoPE, QK-norm, the deepstack slice added after block 0.
		{"qwen3vl", tiny.Options{Seed: 11, Arch: tiny.ArchQwen3VL}},
		// The tiled and wrapped families on their own tiny files: the decoder is llama's
		// or qwen2's (Pixtral's with wider heads); the image rows are the family's.
		{"smolvlm", tiny.Options{Seed: 11, Family: tiny.FamilySmolVLM}},
		{"internvl", tiny.Options{Seed: 11, Family: tiny.FamilyInternVL, Arch: tiny.ArchQwen2}},
		{"minicpmv", tiny.Options{Seed: 11, Family: tiny.FamilyMiniCPMV, Arch: tiny.ArchQwen2}},
		{"pixtral", tiny.Options{Seed: 11, Family: tiny.FamilyPixtral}},
		{"llava15", tiny.Options{Seed: 11, Family: tiny.FamilyLLaVA15}},
		// Gemma 3: QK-norm, post-norms, the differentiable GELU(tanh) feed-forward, the
		// sliding window on layers 0-4 (the sample is longer than the window).
		{"gemma3", tiny.Options{Seed: 11, Arch: tiny.ArchGemma3}},
		{"gemma3-tied", tiny.Options{Seed: 11, Arch: tiny.ArchGemma3, TiedOutput: true}},
	} {
		for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
			t.Run(c.name+"/"+string(obj), func(t *testing.T) {
				m, be, s := tinySampleWith(t, c.o, llava.LoadOptions{Trainable: true})
				for _, w := range []ggml.Tensor{m.W.Layers[0].Wq, m.W.Layers[1].Down, m.W.Output} {
					if w.Type() != ggml.TypeF32 {
						t.Fatalf("%s loaded as %s, want F32", w.Name(), w.Type())
					}
				}
				checkLoRAGradients(t, m, be, s, obj)
			})
		}
	}
}

// TestGemma3TableGELUGradients checks the gradient training runs with on the CPU: the
// forward values of llama.cpp's table GELU (a staircase, which a finite difference
// cannot check), the backward pass of the exact formula. It must equal the exact
// graph's gradient, which TestGradientsOnOtherBases checks, up to what the table's
// values change downstream (about 1e-3).
func TestGemma3TableGELUGradients(t *testing.T) {
	m, be, s := tinySampleWith(t, tiny.Options{Seed: 11, Arch: tiny.ArchGemma3}, llava.LoadOptions{Trainable: true})
	if !be.IsCPU() {
		t.Skip("the table GELU is the CPU backend's")
	}
	for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
		exact := newGradRig(t, m, be, s, obj)
		table := newGradRig(t, m, be, s, obj, func(st *Setup) { st.ExactGELU = false })
		if table.loss == exact.loss {
			t.Fatalf("%s: the table GELU's loss equals the exact one's (%v): the table was not used", obj, exact.loss)
		}
		var num, den float64
		for i, p := range exact.params {
			ge, gt := exact.opt.Grad(p), table.opt.Grad(table.params[i])
			for j := range ge {
				d := float64(gt[j] - ge[j])
				num += d * d
				den += float64(ge[j]) * float64(ge[j])
			}
		}
		rel := math.Sqrt(num / den)
		t.Logf("%s: loss %.7f (table) vs %.7f (exact); gradients' relative L2 difference %.2e", obj, table.loss, exact.loss, rel)
		if rel > 1e-2 {
			t.Errorf("%s: the table GELU's gradient is %.2e (relative L2) from the exact one's", obj, rel)
		}
	}
}

// dequantizedCopy writes dir/dst: dir/src with every tensor stored as F32, holding the
// values the quantized tensors decode to.
func dequantizedCopy(t *testing.T, dir, src, dst string) {
	t.Helper()
	f, err := gguf.Open(filepath.Join(dir, src))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriterFrom(f)
	w.Set("general.file_type", gguf.Uint32Value(0))
	for _, ti := range f.Tensors {
		v, err := f.TensorF32(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensorF32(ti.Name, gguf.F32, ti.Shape, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(filepath.Join(dir, dst)); err != nil {
		t.Fatal(err)
	}
}

// TestGradientsOnQ8_0Base checks LoRA gradients through frozen Q8_0 weights, which the
// CPU out_prod takes as they are. A finite difference cannot check them directly: a
// Q8_0 product rounds its input activations to 8 bits, so the loss is a staircase in
// the LoRA parameters, and the central difference of a step along the gradient is
// noise whose error falls only as 1/step (measured here: worst relative error 15 at a
// step of 1e-3, 2.2 at 1e-2, 0.29 at 0.1). Instead the gradients are compared with
// those of an F32 copy holding the same (dequantized) weights, whose own gradients pass
// the finite-difference check: the two differ only by the activation rounding. The
// gradients of this random model are sensitive: perturbing its F32 weights by 0.3%
// (relative, random) moved them by up to 3%; the Q8_0 differences measured 3-4.5%. A
// wrong backward through quantized weights would differ by O(1), hence the 10% bound.
func TestGradientsOnQ8_0Base(t *testing.T) {
	for _, tied := range []bool{false, true} {
		for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
			// native: ggml's Q8_0 products; bf16: each matrix dequantized to BF16 before
			// its forward products (the CPU default where it has BF16 dot products).
			for _, forward := range []string{"native", "bf16"} {
				name := "untied/" + string(obj) + "/" + forward
				if tied {
					name = "tied/" + string(obj) + "/" + forward
				}
				t.Run(name, func(t *testing.T) { checkQ8_0Gradients(t, tied, obj, forward) })
			}
		}
	}
}

func checkQ8_0Gradients(t *testing.T, tied bool, obj cal.Objective, forward string) {
	if forward == "bf16" && testbackend.Name() != "cpu" {
		t.Skip("--forward-weights bf16 is a CPU kernel: a device keeps its own products")
	}
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, tiny.Options{Seed: 11, WeightType: gguf.Q8_0, TiedOutput: tied}); err != nil {
		t.Fatal(err)
	}
	dequantizedCopy(t, dir, tiny.BaseFile, "base-f32.gguf")
	mq, beq, sq := tinySampleIn(t, dir, tiny.BaseFile, llava.LoadOptions{Trainable: true})
	if mq.W.Layers[0].Wq.Type() != ggml.TypeQ8_0 || mq.W.Output.Type() != ggml.TypeQ8_0 {
		t.Fatalf("Trainable changed Q8_0 weights to %s", mq.W.Layers[0].Wq.Type())
	}
	mf, bef, sf := tinySampleIn(t, dir, "base-f32.gguf", llava.LoadOptions{})
	rq := newGradRig(t, mq, beq, sq, obj, func(s *Setup) { s.ForwardWeights = forward })
	rf := newGradRig(t, mf, bef, sf, obj)
	// Every forward product through a frozen Q8_0 matrix reads it as stored (native) or
	// through the BF16 dequantization (bf16): none is left behind by the rewrite.
	quantProducts := 0
	g := rq.train.Graph()
	for i := 0; i < g.NNodes(); i++ {
		if n := g.Node(i); n.Op() == "MUL_MAT" && n.Src(0).Type() == ggml.TypeQ8_0 {
			quantProducts++
		}
	}
	if forward == "bf16" && quantProducts != 0 {
		t.Errorf("--forward-weights bf16 left %d products on Q8_0 matrices", quantProducts)
	}
	if forward == "native" && quantProducts == 0 {
		t.Errorf("--forward-weights native has no product on a Q8_0 matrix")
	}
	t.Logf("loss %.5f with Q8_0 weights, %.5f with their F32 copy", rq.loss, rf.loss)
	worst := 0.0
	for i, rel := range gradDifferences(rf, rq) {
		worst = math.Max(worst, rel)
		if rel > 0.1 {
			t.Errorf("%s: gradient differs from the F32 copy's by %.3g (relative norm) > 10%%", rq.params[i].Name(), rel)
		}
	}
	t.Logf("Q8_0 vs F32-copy gradients: worst relative difference %.2e over %d tensors", worst, len(rq.params))
	if forward == "native" {
		checkLoRAGradients(t, mf, bef, sf, obj)
	}
}
