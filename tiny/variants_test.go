package tiny

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/imageio"
)

// llamaLogits loads base.gguf of dir with libllama and returns the logits of every row
// of a short prompt.
func llamaLogits(t *testing.T, dir string) []float32 {
	t.Helper()
	lm, err := llama.LoadModel(filepath.Join(dir, BaseFile), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	if lm.NVocab() != len(BuildVocab().Tokens) || lm.NEmbd() != NEmbd || lm.NLayer() != NLayer {
		t.Fatalf("libllama sees vocab %d, n_embd %d, %d layers", lm.NVocab(), lm.NEmbd(), lm.NLayer())
	}
	toks, err := lm.Tokenize("<|im_start|>user\nwhat is in the image?", true, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := llama.NewContext(lm, llama.ContextParams{NCtx: 64, KVF32: true, NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.DecodeTokens(toks, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	logits, err := ctx.LogitsAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(logits) != len(toks)*lm.NVocab() {
		t.Fatalf("%d logits for %d tokens", len(logits), len(toks))
	}
	for i, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %d is %v", i, v)
		}
	}
	return logits
}

func maxAbsDiff(a, b []float32) (d, m float64) {
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d, m
}

// Every architecture × weight type passes calft's checks, has the promised tensor
// types, and loads and decodes in libllama with logits close to the F32 model's.
func TestVariantsLoadInLibllama(t *testing.T) {
	for _, arch := range []string{ArchLlama, ArchQwen2, ArchQwen2VL} {
		var ref []float32
		for _, wt := range []gguf.DType{gguf.F32, gguf.F16, gguf.BF16, gguf.Q8_0, gguf.Q4_0} {
			t.Run(fmt.Sprintf("%s-%s", arch, wt), func(t *testing.T) {
				dir := generate(t, Options{Seed: 4, Arch: arch, WeightType: wt})
				m, err := check.TextModel(filepath.Join(dir, BaseFile))
				if err != nil {
					t.Fatal(err)
				}
				if m.Arch != arch || m.NEmbd != NEmbd || m.NHeadKV != NHeadKV || m.Tied {
					t.Errorf("model %+v", m)
				}
				f, err := gguf.Open(filepath.Join(dir, BaseFile))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if ft, _ := f.Integer("general.file_type"); uint32(ft) != fileTypes[wt] {
					t.Errorf("general.file_type %d", ft)
				}
				biases := 0
				for _, ti := range f.Tensors {
					want := gguf.F32
					if len(ti.Shape) == 2 {
						want = wt
					}
					if ti.Type != want {
						t.Errorf("%s is %s, want %s", ti.Name, ti.Type, want)
					}
					if strings.HasSuffix(ti.Name, ".bias") {
						biases++
						v, _ := f.TensorF32(ti.Name)
						for i, x := range v {
							if x == 0 {
								t.Errorf("%s[%d] is zero", ti.Name, i)
							}
						}
					}
				}
				if want := map[string]int{ArchLlama: 0, ArchQwen2: 3 * NLayer, ArchQwen2VL: 3 * NLayer}[arch]; biases != want {
					t.Errorf("%d bias tensors, want %d", biases, want)
				}
				logits := llamaLogits(t, dir)
				if wt == gguf.F32 {
					ref = logits
					return
				}
				if ref == nil {
					t.Skip("no F32 reference")
				}
				// Rounding the weights moves the logits a little (4-bit weights of this tiny random
				// model a lot), never wholesale.
				d, mx := maxAbsDiff(logits, ref)
				tol := map[gguf.DType]float64{gguf.F16: 0.01, gguf.BF16: 0.05, gguf.Q8_0: 0.05, gguf.Q4_0: 0.6}[wt]
				t.Logf("max |logit − F32 logit| = %.3g (max |logit| %.3g)", d, mx)
				if d > tol*mx {
					t.Errorf("logits moved by %.3g, more than %.0f%% of %.3g", d, 100*tol, mx)
				}
			})
		}
	}
}

// qwen2 shares every common tensor with llama for the same seed, adds only the biases,
// and libllama computes different logits with it (biases and neox RoPE are in effect).
func TestQwen2SharesLlamaWeights(t *testing.T) {
	dl, dq := generate(t, Options{Seed: 6}), generate(t, Options{Seed: 6, Arch: ArchQwen2})
	fl, err := gguf.Open(filepath.Join(dl, BaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	fq, err := gguf.Open(filepath.Join(dq, BaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer fq.Close()
	if len(fq.Tensors) != len(fl.Tensors)+3*NLayer {
		t.Fatalf("%d qwen2 and %d llama tensors", len(fq.Tensors), len(fl.Tensors))
	}
	for _, ti := range fl.Tensors {
		x, _ := fl.TensorData(ti.Name)
		y, err := fq.TensorData(ti.Name)
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between llama and qwen2 (%v)", ti.Name, err)
		}
	}
	for _, name := range []string{MmprojFile, DataFile} {
		a, b := allFiles(t, dl)[name], allFiles(t, dq)[name]
		if !bytes.Equal(a, b) {
			t.Errorf("%s depends on the architecture", name)
		}
	}
	if arch, _ := fq.String("general.architecture"); arch != ArchQwen2 || !fq.Has("qwen2.attention.head_count_kv") || fq.Has("llama.block_count") {
		t.Errorf("qwen2 metadata: architecture %q", arch)
	}
	d, m := maxAbsDiff(llamaLogits(t, dq), llamaLogits(t, dl))
	if d < 1e-2*m {
		t.Errorf("qwen2 and llama logits differ by only %.3g (max %.3g): libllama ignores the arch?", d, m)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, o := range []Options{{Arch: "gemma"}, {WeightType: gguf.Q4_K}, {Arch: ArchQwen2, Projector: ProjQwen2VL},
		{Arch: ArchQwen2VL, Projector: ProjMLP}, {Arch: ArchQwen2VL, Projector: "qwen3vl_merger"}} {
		if err := GenerateWith(t.TempDir(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// TestQwenProjectors checks the Qwen2-VL and Qwen2.5-VL towers: they pass calft's
// mmproj checks, and mtmd loads them and turns a 32×32 image into 16 finite rows of
// the text model's width on a 4×4 M-RoPE grid, advancing 4 positions.
func TestQwenProjectors(t *testing.T) {
	for _, proj := range []string{ProjQwen2VL, ProjQwen25VL} {
		t.Run(proj, func(t *testing.T) {
			dir := generate(t, Options{Seed: 4, Arch: ArchQwen2VL, Projector: proj})
			mm, err := check.Mmproj(filepath.Join(dir, MmprojFile))
			if err != nil {
				t.Fatal(err)
			}
			if mm.ProjectorType != proj || mm.OutputWidth != NEmbd || mm.PatchSize != QwenPatchSize {
				t.Errorf("mmproj %+v", mm)
			}
			lm, err := llama.LoadModel(filepath.Join(dir, BaseFile), llama.ModelParams{})
			if err != nil {
				t.Fatal(err)
			}
			defer lm.Close()
			mc, err := mtmd.Init(filepath.Join(dir, MmprojFile), lm, mtmd.Params{NThreads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer mc.Close()
			img, err := imageio.Load(filepath.Join(dir, ImageDir, "000.png"))
			if err != nil {
				t.Fatal(err)
			}
			e, err := mc.Encode(img.Pix, img.W, img.H)
			if err != nil {
				t.Fatal(err)
			}
			if !e.MRoPE || e.NRows != 16 || e.NX != 4 || e.NY != 4 || e.NPos != 4 || e.NEmbd != NEmbd {
				t.Errorf("image rows: %d of width %d, grid %dx%d, %d positions, M-RoPE %v", e.NRows, e.NEmbd, e.NX, e.NY, e.NPos, e.MRoPE)
			}
			for i, v := range e.Data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("row value %d is %v", i, v)
				}
			}
		})
	}
}
