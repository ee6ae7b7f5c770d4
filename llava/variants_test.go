package llava_test

import (
	"path/filepath"
	"testing"

	"github.com/calft/calft/internal/testbackend"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// newFixtureWith is newFixture for a tiny model generated with options o, loaded by
// calft with lo.
func newFixtureWith(t *testing.T, o tiny.Options, lo llava.LoadOptions) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, o); err != nil {
		t.Fatal(err)
	}
	be := testbackend.New(t, 0)
	m, err := llava.LoadWith(filepath.Join(dir, tiny.BaseFile), be, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	lm, err := llama.LoadModel(filepath.Join(dir, tiny.BaseFile), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	return &fixture{dir: dir, be: be, m: m, lm: lm}
}

// randomAdapter makes a rank-4 adapter with non-zero A and B, saves it and loads it
// into libllama.
func (f *fixture) randomAdapter(t *testing.T) (*lora.Adapter, *lora.HostAdapter, *llama.Adapter) {
	t.Helper()
	ad, err := lora.New(f.be, &f.m.W, lora.Config{Rank: 4, Alpha: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ad.Close)
	ad.InitRandom(3, 0.05)
	path := filepath.Join(f.dir, "adapter.gguf")
	host := ad.ToHost(f.m.HP.Arch)
	if err := host.Save(path, gguf.F32); err != nil {
		t.Fatal(err)
	}
	lad, err := llama.LoadAdapter(f.lm, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lad.Close() })
	return ad, host, lad
}

// mergedModel merges host into the fixture's base (export's merge, types kept) and loads
// the result into libllama, closed when the test ends.
func (f *fixture) mergedModel(t *testing.T, host *lora.HostAdapter) *llama.Model {
	t.Helper()
	path := f.mergedPath()
	if err := lora.Merge(filepath.Join(f.dir, tiny.BaseFile), host, path, lora.MergeOptions{KeepType: true}); err != nil {
		t.Fatal(err)
	}
	merged, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { merged.Close() })
	return merged
}

// mergedPath is where mergedModel writes the merged model.
func (f *fixture) mergedPath() string { return filepath.Join(f.dir, "merged.gguf") }

// parityCheck returns a check of calft's logits against libllama's: the relative error
// logged, and an error above tol.
func parityCheck(t *testing.T, tol float64) func(what string, got, want []float32) {
	return func(what string, got, want []float32) {
		t.Helper()
		e := relErr(t, got, want)
		t.Logf("%s: max |Δlogit| / max |logit| = %.2e", what, e)
		if e > tol {
			t.Errorf("%s: relative error %.2e > %.0e", what, e, tol)
		}
	}
}

// TestVariantLogitsMatchLibllama repeats TestLogitsMatchLibllama's checks on other
// architectures, output layouts and weight types.
// quantTol is the parity tolerance of Q8_0 bases: the CPU's, or on a device, whose
// products quantize the activations their own way (CUDA: to q8_1, where libllama's CPU
// takes q8_0 blocks), 3e-2 (measured on an H200: 1.8e-2 at most on the tiny model, whose
// logits are small).
var quantTol = map[bool]float64{true: parityTol, false: 3e-2}[testbackend.Name() == "cpu"]

func TestVariantLogitsMatchLibllama(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tiny.Options
		tol  float64
	}{
		{"qwen2", tiny.Options{Seed: 7, Arch: tiny.ArchQwen2}, parityTol},
		{"tied", tiny.Options{Seed: 7, TiedOutput: true}, parityTol},
		{"q8_0", tiny.Options{Seed: 7, WeightType: gguf.Q8_0}, quantTol},
		// An F16 product rounds its input activations to F16 first, so a 1e-7 difference
		// in an F32 sum upstream (here: the adapter's F32 products) can flip a rounding
		// and grow to about one F16 step (1e-3 relative).
		{"f16", tiny.Options{Seed: 7, WeightType: gguf.F16}, max(1e-3, parityTol)},
		{"qwen2-tied-q8_0", tiny.Options{Seed: 7, Arch: tiny.ArchQwen2, TiedOutput: true, WeightType: gguf.Q8_0}, quantTol},
		// Llama 3.x: rope_freqs.weight, with every optional llama bias (q/k/v, attention
		// output, feed-forward); and the RoPE scalings libllama applies.
		{"llama3-biases", tiny.Options{Seed: 7, RopeFreqs: true, Biases: true}, parityTol},
		{"linear-scaling", tiny.Options{Seed: 7, RopeScaling: "linear"}, parityTol},
		{"yarn", tiny.Options{Seed: 7, RopeScaling: "yarn", RopeFreqs: true}, parityTol},
		{"qwen2-output-bias", tiny.Options{Seed: 7, Arch: tiny.ArchQwen2, Biases: true}, parityTol},
		// Pixtral's and Mistral-Small 3.1's layout: heads wider than n_embd/n_head
		// (attention.key_length), so q is wider than the residual stream.
		{"head-width", tiny.Options{Seed: 7, HeadDim: 32, RopeFreqs: true}, parityTol},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixtureWith(t, c.o, llava.LoadOptions{})
			if f.m.HP.Tied != c.o.TiedOutput || (c.o.Arch != "" && f.m.HP.Arch != c.o.Arch) {
				t.Fatalf("calft read %+v", f.m.HP)
			}
			if c.o.RopeFreqs == f.m.W.RopeFreqs.Nil() || c.o.Biases == f.m.W.Layers[0].Bo.Nil() && c.o.Arch != tiny.ArchQwen2 ||
				(c.o.RopeScaling == "yarn") != (f.m.HP.Rope.ExtFactor == 1) || (c.o.RopeScaling != "") != (f.m.HP.Rope.FreqScale != 1) {
				t.Fatalf("calft read %+v; rope_freqs %v, attn_output.bias %v", f.m.HP, !f.m.W.RopeFreqs.Nil(), !f.m.W.Layers[0].Bo.Nil())
			}
			if got, want := gguf.DType(f.m.W.Layers[0].Wq.Type()), c.o.WeightType; got != want {
				t.Fatalf("attn_q loaded as %s, file has %s", got, want)
			}
			text, withImage := f.pieces(t)
			ad, host, lad := f.randomAdapter(t)
			var merged *llama.Model
			if c.o.WeightType == gguf.F32 {
				// Merging re-rounds quantized and F16 weights, so only F32 merges exactly.
				merged = f.mergedModel(t, host)
			}
			check := parityCheck(t, c.tol)
			for _, p := range []struct {
				name   string
				pieces []piece
			}{{"text", text}, {"image", withImage}} {
				base := f.calftLogits(t, nil, p.pieces)
				check(p.name+", no adapter", base, llamaLogits(t, f.lm, nil, p.pieces))
				withAd := f.calftLogits(t, ad, p.pieces)
				if relErr(t, withAd, base) < 1e-3 {
					t.Fatalf("%s: the random adapter barely changes the logits", p.name)
				}
				check(p.name+", with adapter", withAd, llamaLogits(t, f.lm, lad, p.pieces))
				if merged != nil {
					check(p.name+", merged vs base+adapter", withAd, llamaLogits(t, merged, nil, p.pieces))
				}
			}
		})
	}
}

// TestTrainableLoadConvertsHalfPrecision checks that LoadOptions.Trainable turns F16
// weights into F32 (token_embd only when tied) and leaves quantized ones alone, and how
// far the converted model's logits are from libllama's on the F16 file, where the CPU
// rounds activations to F16 for each product.
func TestTrainableLoadConvertsHalfPrecision(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tiny.Options
	}{
		{"f16", tiny.Options{Seed: 7, WeightType: gguf.F16}},
		{"f16-tied", tiny.Options{Seed: 7, WeightType: gguf.F16, TiedOutput: true}},
		{"bf16", tiny.Options{Seed: 7, WeightType: gguf.BF16}},
		{"q8_0", tiny.Options{Seed: 7, WeightType: gguf.Q8_0}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixtureWith(t, c.o, llava.LoadOptions{Trainable: true})
			w := f.m.W
			half := c.o.WeightType == gguf.F16 || c.o.WeightType == gguf.BF16
			want := ggml.Type(c.o.WeightType)
			if half {
				want = ggml.TypeF32
			}
			for _, x := range []ggml.Tensor{w.Output, w.Layers[0].Wq, w.Layers[1].Down} {
				if x.Type() != want {
					t.Errorf("%s loaded as %s, want %s", x.Name(), x.Type(), want)
				}
			}
			wantEmb := want
			if half && !c.o.TiedOutput {
				wantEmb = ggml.Type(c.o.WeightType)
			}
			if w.TokEmbd.Type() != wantEmb || w.OutNorm.Type() != ggml.TypeF32 {
				t.Errorf("token_embd %s, output_norm %s", w.TokEmbd.Type(), w.OutNorm.Type())
			}
			text, withImage := f.pieces(t)
			for _, p := range []struct {
				name   string
				pieces []piece
			}{{"text", text}, {"image", withImage}} {
				e := relErr(t, f.calftLogits(t, nil, p.pieces), llamaLogits(t, f.lm, nil, p.pieces))
				t.Logf("%s: converted weights vs libllama on the file: %.2e", p.name, e)
				tol := parityTol
				if half {
					tol = 1e-2 // libllama multiplies in half precision, calft in F32
				}
				if e > tol {
					t.Errorf("%s: relative error %.2e > %.0e", p.name, e, tol)
				}
			}
		})
	}
}

// TestBatchOfTwoMatchesEachAlone packs two sequences of different lengths (one with
// image rows) into one batch: each must get the logits it gets alone.
func TestBatchOfTwoMatchesEachAlone(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tiny.Options
	}{
		{"llama", tiny.Options{Seed: 7}},
		{"qwen2", tiny.Options{Seed: 7, Arch: tiny.ArchQwen2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixtureWith(t, c.o, llava.LoadOptions{})
			text, withImage := f.pieces(t)
			ad, _, _ := f.randomAdapter(t)
			d := &llava.Decoder{HP: f.m.HP, W: &f.m.W, Adapter: ad}
			seqs := []llava.Sequence{sequence(withImage), sequence(text)}
			if seqs[0].Len() == seqs[1].Len() {
				t.Fatal("the sequences have the same length")
			}
			V := f.m.HP.NVocab
			for _, order := range [][]int{{0, 1}, {1, 0}} {
				b := &llava.Batch{Seqs: []llava.Sequence{seqs[order[0]], seqs[order[1]]}}
				packed, err := llava.ComputeLogits(f.be, d, b, false)
				if err != nil {
					t.Fatal(err)
				}
				if len(packed) != b.Rows()*V {
					t.Fatalf("%d logits for %d rows", len(packed), b.Rows())
				}
				for i := range b.Seqs {
					alone, err := llava.ComputeLogits(f.be, d, &llava.Batch{Seqs: b.Seqs[i : i+1]}, false)
					if err != nil {
						t.Fatal(err)
					}
					off := b.Offset(i) * V
					e := relErr(t, packed[off:off+len(alone)], alone)
					t.Logf("order %v, sequence %d (%d rows): packed vs alone %.2e", order, i, b.Seqs[i].Len(), e)
					if e > 1e-5 {
						t.Errorf("order %v, sequence %d: relative error %.2e > 1e-5", order, i, e)
					}
				}
			}
		})
	}
}

// TestEveryTensorHasAField checks that the decoder has a field for every tensor of every
// architecture's description, so that none is read and then ignored.
func TestEveryTensorHasAField(t *testing.T) {
	for _, name := range arch.Names() {
		a, _ := arch.Lookup(name)
		hp := arch.HParams{Arch: name, NEmbd: 8, NLayer: 2, NHead: 2, NHeadKV: 1, HeadDim: 4, NFF: 16, NVocab: 10,
			Rope: arch.NoScaling(a.Rope, 4, 10000, 64)}
		w := &llava.Weights{Arch: a, Layers: make([]llava.Layer, hp.NLayer)}
		if err := llava.CheckFields(w, &hp); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
