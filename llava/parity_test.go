package llava_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/calft/calft/internal/testbackend"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// fixture is a generated tiny VLM loaded both by calft (on the CPU backend) and by
// libllama (F32 KV cache, no flash attention: the reference).
type fixture struct {
	dir string
	be  *ggml.Backend
	m   *llava.Model
	lm  *llama.Model
	// exactGELU gives imageAbsent's decoders gemma3's exact GELU values: on the table's
	// staircase two roundings of one pass can land on different steps.
	exactGELU bool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.Generate(dir, 7); err != nil {
		t.Fatal(err)
	}
	be := testbackend.New(t, 0)
	m, err := llava.Load(filepath.Join(dir, "base.gguf"), be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	lm, err := llama.LoadModel(filepath.Join(dir, "base.gguf"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	return &fixture{dir: dir, be: be, m: m, lm: lm}
}

// piece is a run of rows fed to libllama in one decode: tokens or embedding rows.
type piece struct {
	tokens []int32
	embd   []float32
	nEmbd  int
	// nonCausal embedding rows attend to each other both ways (a Gemma 3 image), as
	// mtmd decodes them: with the context's causal attention off.
	nonCausal bool
}

// llamaLogits decodes the pieces in order through libllama and returns every row's logits.
func llamaLogits(t *testing.T, lm *llama.Model, ad *llama.Adapter, pieces []piece) []float32 {
	t.Helper()
	ctx, err := llama.NewContext(lm, llama.ContextParams{NCtx: 512, KVF32: true, NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if ad != nil {
		if err := ctx.SetAdapter(ad, 1); err != nil {
			t.Fatal(err)
		}
	}
	var out []float32
	pos := 0
	for _, p := range pieces {
		n := len(p.tokens)
		if p.embd != nil {
			n = len(p.embd) / p.nEmbd
			ctx.SetCausalAttn(!p.nonCausal)
			err = ctx.DecodeEmbeddings(p.embd, n, pos, 0, true)
			ctx.SetCausalAttn(true)
		} else {
			err = ctx.DecodeTokens(p.tokens, pos, 0, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		all, err := ctx.LogitsAll()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, all...)
		pos += n
	}
	return out
}

// sequence builds calft's view of the same pieces.
func sequence(pieces []piece) llava.Sequence {
	var s llava.Sequence
	for _, p := range pieces {
		if p.embd != nil {
			for i := 0; i < len(p.embd)/p.nEmbd; i++ {
				s.Tokens = append(s.Tokens, llava.ImageRow)
			}
			s.NonCausal = s.NonCausal || p.nonCausal
			s.Embd = append(s.Embd, p.embd...)
		} else {
			s.Tokens = append(s.Tokens, p.tokens...)
		}
	}
	return s
}

// relErr is max|a−b| / max|b|.
func relErr(t *testing.T, a, b []float32) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("lengths differ: %d vs %d", len(a), len(b))
	}
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / m
}

// parityTol is the largest relative logit error against libllama (which runs on the
// CPU): on a device, whose F32 products may round through TF32 or F16, a looser one.
var parityTol = map[bool]float64{true: 1e-4, false: 3e-3}[testbackend.Name() == "cpu"]

func (f *fixture) tokens(t *testing.T, text string, bos bool) []int32 {
	t.Helper()
	toks, err := f.lm.Tokenize(text, bos, true)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func (f *fixture) imageRows(t *testing.T) []float32 {
	t.Helper()
	mc, err := mtmd.Init(filepath.Join(f.dir, "mmproj.gguf"), f.lm, mtmd.Params{NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	img, err := imageio.Load(filepath.Join(f.dir, "images", "000.png"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := mc.Encode(img.Pix, img.W, img.H)
	if err != nil {
		t.Fatal(err)
	}
	if e.NEmbd != f.m.HP.NEmbd {
		t.Fatalf("image rows are %d wide, model n_embd %d", e.NEmbd, f.m.HP.NEmbd)
	}
	return e.Data
}

func (f *fixture) pieces(t *testing.T) (text, withImage []piece) {
	t.Helper()
	n := f.m.HP.NEmbd
	text = []piece{{tokens: f.tokens(t, "a red circle on the left.", true)}}
	withImage = []piece{
		{tokens: f.tokens(t, "<|im_start|>user\n", true)},
		{embd: f.imageRows(t), nEmbd: n},
		{tokens: f.tokens(t, "what is in the image?<|im_end|>\n<|im_start|>assistant\na blue square", false)},
	}
	return text, withImage
}

func (f *fixture) calftLogits(t *testing.T, ad llava.Adapter, pieces []piece) []float32 {
	t.Helper()
	d := &llava.Decoder{HP: f.m.HP, W: &f.m.W, Adapter: ad}
	logits, err := llava.ComputeLogits(f.be, d, &llava.Batch{Seqs: []llava.Sequence{sequence(pieces)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return logits
}

func TestLogitsMatchLibllama(t *testing.T) {
	f := newFixture(t)
	text, withImage := f.pieces(t)

	// A random adapter with non-zero B, written by calft and read back by libllama.
	ad, err := lora.New(f.be, &f.m.W, lora.Config{Rank: 4, Alpha: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	ad.InitRandom(3, 0.05)
	adPath := filepath.Join(f.dir, "adapter.gguf")
	host := ad.ToHost(f.m.HP.Arch)
	if err := host.Save(adPath, gguf.F32); err != nil {
		t.Fatal(err)
	}
	lad, err := llama.LoadAdapter(f.lm, adPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lad.Close()

	mergedPath := filepath.Join(f.dir, "merged.gguf")
	if err := lora.Merge(filepath.Join(f.dir, "base.gguf"), host, mergedPath, lora.MergeOptions{KeepType: true}); err != nil {
		t.Fatal(err)
	}
	merged, err := llama.LoadModel(mergedPath, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer merged.Close()

	for _, c := range []struct {
		name   string
		pieces []piece
	}{{"text", text}, {"image", withImage}} {
		base := f.calftLogits(t, nil, c.pieces)
		e := relErr(t, base, llamaLogits(t, f.lm, nil, c.pieces))
		t.Logf("%s, no adapter: max |Δlogit| / max |logit| = %.2e", c.name, e)
		if e > parityTol {
			t.Errorf("%s without adapter: relative error %.2e > %.0e", c.name, e, parityTol)
		}
		withAd := f.calftLogits(t, ad, c.pieces)
		if relErr(t, withAd, base) < 1e-3 {
			t.Fatalf("%s: the random adapter barely changes the logits; the check would prove nothing", c.name)
		}
		e = relErr(t, withAd, llamaLogits(t, f.lm, lad, c.pieces))
		t.Logf("%s, with adapter: %.2e", c.name, e)
		if e > parityTol {
			t.Errorf("%s with adapter: relative error %.2e > %.0e", c.name, e, parityTol)
		}
		e = relErr(t, withAd, llamaLogits(t, merged, nil, c.pieces))
		t.Logf("%s, merged model vs base+adapter: %.2e", c.name, e)
		if e > parityTol {
			t.Errorf("%s merged: relative error %.2e > %.0e", c.name, e, parityTol)
		}
	}
}

// TestImageAbsentPass checks the hidden-image pass against an independent computation:
// the same sequence rebuilt without its image rows, text rows keeping their positions.
func TestImageAbsentPass(t *testing.T) {
	f := newFixture(t)
	_, withImage := f.pieces(t)
	seq := sequence(withImage)
	d := &llava.Decoder{HP: f.m.HP, W: &f.m.W}
	e, hidden, textRows := imageAbsent(t, f, seq)
	V := f.m.HP.NVocab
	t.Logf("image-absent pass vs sequence without image rows: %.2e", e)
	if e > parityTol {
		t.Errorf("relative error %.2e > %.0e", e, parityTol)
	}
	full, err := llava.ComputeLogits(f.be, d, &llava.Batch{Seqs: []llava.Sequence{seq}}, false)
	if err != nil {
		t.Fatal(err)
	}
	last := textRows[len(textRows)-1]
	if relErr(t, full[last*V:(last+1)*V], hidden[last*V:(last+1)*V]) < 1e-4 {
		t.Errorf("hiding the image did not change the last row's logits; the mask has no effect")
	}
}

// imageAbsent computes seq's image-absent pass (every image row hidden from the text)
// and, independently, the sequence rebuilt without its image rows, each text row keeping
// its positions (M-RoPE's too). It returns the relative error of the first's logits at
// the text rows against the second's, the first's logits of every row, and the text rows.
func imageAbsent(t *testing.T, f *fixture, seq llava.Sequence) (e float64, hidden []float32, textRows []int) {
	t.Helper()
	d := &llava.Decoder{HP: f.m.HP, W: &f.m.W, ExactGELU: f.exactGELU}
	hidden, err := llava.ComputeLogits(f.be, d, &llava.Batch{Seqs: []llava.Sequence{seq}}, true)
	if err != nil {
		t.Fatal(err)
	}
	var textOnly llava.Sequence
	for i, tok := range seq.Tokens {
		if tok == llava.ImageRow {
			continue
		}
		textOnly.Tokens = append(textOnly.Tokens, tok)
		textOnly.Pos = append(textOnly.Pos, seq.Position(i))
		if seq.PosHW != nil {
			h, w := seq.PositionHW(i)
			textOnly.PosHW = append(textOnly.PosHW, h, w)
		}
		textRows = append(textRows, i)
	}
	ref, err := llava.ComputeLogits(f.be, d, &llava.Batch{Seqs: []llava.Sequence{textOnly}}, false)
	if err != nil {
		t.Fatal(err)
	}
	V := f.m.HP.NVocab
	var got []float32
	for _, r := range textRows {
		got = append(got, hidden[r*V:(r+1)*V]...)
	}
	return relErr(t, got, ref), hidden, textRows
}
