package train

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/internal/testbackend"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// sample is one tokenized training example: the packed batch, the rows whose logits are
// scored and the tokens they must predict.
type sample struct {
	batch   *llava.Batch
	rows    []int32
	targets []cal.Target
}

// tinySampleWith builds "<prompt with image> answer" on a tiny model generated with o and
// loaded with lo, supervising the answer tokens.
func tinySampleWith(t testing.TB, o tiny.Options, lo llava.LoadOptions) (*llava.Model, *ggml.Backend, sample) {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, o); err != nil {
		t.Fatal(err)
	}
	return tinySampleIn(t, dir, tiny.BaseFile, lo)
}

// tinySampleIn is tinySampleWith on an already generated directory, with the text model
// read from dir/base.
func tinySampleIn(t testing.TB, dir, base string, lo llava.LoadOptions) (*llava.Model, *ggml.Backend, sample) {
	t.Helper()
	return tinySampleOn(t, testbackend.New(t, 0), dir, base, lo)
}

// tinySampleOn is tinySampleIn with the model loaded on be.
func tinySampleOn(t testing.TB, be *ggml.Backend, dir, base string, lo llava.LoadOptions) (*llava.Model, *ggml.Backend, sample) {
	t.Helper()
	m, err := llava.LoadWith(filepath.Join(dir, base), be, lo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	lm, err := llama.LoadModel(filepath.Join(dir, base), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	mc, err := mtmd.Init(filepath.Join(dir, "mmproj.gguf"), lm, mtmd.Params{NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	img, err := imageio.Load(filepath.Join(dir, "images", "001.png"))
	if err != nil {
		t.Fatal(err)
	}
	emb, err := mc.Encode(img.Pix, img.W, img.H)
	if err != nil && strings.Contains(err.Error(), "several chunks") {
		return m, be, builtSample(t, m, lm, mc, dir) // tiles or slices: built as calft does
	}
	if err != nil {
		t.Fatal(err)
	}
	prefix, _ := lm.Tokenize("<|im_start|>user\n", true, true)
	question, _ := lm.Tokenize("what is in the image?<|im_end|>\n<|im_start|>assistant\n", false, true)
	answer, _ := lm.Tokenize("a green triangle on the right.<|im_end|>", false, true)
	var seq llava.Sequence
	seq.Tokens = append(seq.Tokens, prefix...)
	for range emb.NRows {
		seq.Tokens = append(seq.Tokens, llava.ImageRow)
	}
	seq.Embd = emb.Data
	seq.Tokens = append(seq.Tokens, question...)
	start := len(seq.Tokens)
	seq.Tokens = append(seq.Tokens, answer...)
	if emb.MRoPE { // Qwen2-VL: the image's rows on mtmd's grid
		if seq.Pos, seq.PosHW, err = llava.GridPositions(seq.Tokens, []llava.Grid{{NX: emb.NX, NY: emb.NY}}); err != nil {
			t.Fatal(err)
		}
	}
	s := sample{batch: &llava.Batch{Seqs: []llava.Sequence{seq}}}
	for i := start; i < len(seq.Tokens); i++ {
		s.rows = append(s.rows, int32(i-1)) // the row before a token predicts it
		s.targets = append(s.targets, cal.Target{Token: seq.Tokens[i], Run: 0})
	}
	return m, be, s
}

// builtSample is the tiny data's second record built the way calft builds it (the
// model's chat template, every tile or slice of mtmd's chunks with the marker text
// between them), supervising its answer.
func builtSample(t testing.TB, m *llava.Model, lm *llama.Model, mc *mtmd.Context, dir string) sample {
	t.Helper()
	b := &data.Builder{Vocab: lm, Mtmd: mc, Template: lm.ChatTemplate(), ImageDir: dir}
	recs, err := data.Load(filepath.Join(dir, tiny.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Build(&recs[1])
	if err != nil {
		t.Fatal(err)
	}
	cache, err := data.NewEmbedCache(mc, filepath.Join(dir, tiny.MmprojFile), "")
	if err != nil {
		t.Fatal(err)
	}
	seq, err := cache.Sequence(s, m.HP.NEmbdInp())
	if err != nil {
		t.Fatal(err)
	}
	rows, targets, _ := s.Scored(0, 0)
	return sample{batch: &llava.Batch{Seqs: []llava.Sequence{seq}}, rows: rows, targets: targets}
}

// gradTol is the largest relative error checkLoRAGradients accepts.
const gradTol = 0.02

// gradRig is a trainer with a random rank-4 adapter on a model, whose backward step
// graph has filled the gradient accumulators once, and a forward-only graph of the same
// shape.
type gradRig struct {
	tr          *Trainer
	params      []ggml.Tensor
	opt         *Optimizer
	train, eval *StepGraph
	loss        float64 // of the backward graph's run
}

// newGradRig builds the rig and runs the backward graph once. The trainer makes no
// weight copies unless an option asks for them (see withCopies).
func newGradRig(t *testing.T, m *llava.Model, be *ggml.Backend, s sample, obj cal.Objective, opts ...func(*Setup)) *gradRig {
	t.Helper()
	st := Setup{Objective: obj, CAL: cal.Defaults(), LoRA: lora.Config{Rank: 4, Alpha: 4},
		BackwardWeights: "autodiff", NoImageWeights: "f32", ExactGELU: true}
	for _, o := range opts {
		o(&st)
	}
	tr, err := NewTrainer(be, m, st)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	tr.Adapter.InitRandom(5, 0.1)
	b := s.trainBatch()
	r := &gradRig{tr: tr, params: tr.Adapter.Params(), opt: tr.Opt}
	// The shared image-absent pass training uses, for CAL.
	if r.train, err = tr.Graph(tr.Shape(b, obj, true)); err != nil {
		t.Fatal(err)
	}
	if r.eval, err = tr.Graph(tr.Shape(b, obj, false)); err != nil {
		t.Fatal(err)
	}
	tr.ZeroGrad()
	if r.loss, err = r.train.Run(b.Seqs, b.Rows, b.Targets); err != nil {
		t.Fatal(err)
	}
	return r
}

// withCopies makes the trainer keep weight copies: backward is the transposed copies'
// type (bf16, f32), noImage the image-absent pass's (q8_0); "" leaves either as is.
func withCopies(backward, noImage string) func(*Setup) {
	return func(s *Setup) {
		if backward != "" {
			s.BackwardWeights = backward
		}
		if noImage != "" {
			s.NoImageWeights = noImage
		}
	}
}

// trainBatch is the sample as a trainer's micro-batch.
func (s sample) trainBatch() *Batch {
	return &Batch{Seqs: s.batch, Rows: s.rows, Targets: s.targets, Real: s.batch.Rows()}
}

// gradDifferences is, for each LoRA tensor in ref's order, the relative L2 difference of
// got's gradient from ref's (the rigs' adapters are built alike, so tensors pair up).
func gradDifferences(ref, got *gradRig) []float64 {
	out := make([]float64, len(ref.params))
	for i, p := range ref.params {
		g0, g1 := ref.opt.Grad(p), got.opt.Grad(got.params[i])
		var num, den float64
		for j := range g0 {
			d := float64(g1[j] - g0[j])
			num += d * d
			den += float64(g0[j]) * float64(g0[j])
		}
		out[i] = math.Sqrt(num / den)
	}
	return out
}

// checkLoRAGradients compares, for every LoRA tensor of a random adapter on m, the
// directional derivative of the loss along the tensor's own gradient (from a backward
// step graph) with a central finite difference of the loss computed by a forward-only
// graph. It reports failures through t and returns the worst relative error.
func checkLoRAGradients(t *testing.T, m *llava.Model, be *ggml.Backend, s sample, obj cal.Objective, opts ...func(*Setup)) float64 {
	t.Helper()
	if n := testbackend.Name(); n == "cuda" || n == "metal" {
		// Their F32 products round through TF32 or F16: a central difference of the loss
		// is then mostly rounding. TestBackendsMatchCPU compares their gradients with
		// the CPU's instead.
		t.Skipf("finite differences need F32 products; %s's gradients are checked against the CPU's by TestBackendsMatchCPU", n)
	}
	r := newGradRig(t, m, be, s, obj, opts...)
	params, opt, train, eval, l0 := r.params, r.opt, r.train, r.eval, r.loss
	le, _ := eval.Run(s.batch, s.rows, s.targets)
	if math.Abs(l0-le) > 1e-6*math.Abs(l0) {
		t.Fatalf("training and evaluation graphs disagree on the loss: %v vs %v", l0, le)
	}
	// CAL's weights are constants of the gradient: the finite difference must hold
	// them fixed too. Evaluate the CE-weighted loss with the weights of θ.
	weights := train.Loss.Weight.F32()
	lossAt := func() float64 {
		if _, err := eval.Run(s.batch, s.rows, s.targets); err != nil {
			t.Fatal(err)
		}
		ce := eval.Loss.CE.F32()
		var num, den float64
		for i := range ce {
			num += float64(weights[i]) * float64(ce[i])
			den += float64(weights[i])
		}
		return num / den
	}
	worst := 0.0
	for _, p := range params {
		g := opt.Grad(p)
		theta := p.F32()
		var norm float64
		for _, v := range g {
			norm += float64(v) * float64(v)
		}
		norm = math.Sqrt(norm)
		if norm == 0 {
			t.Fatalf("%s: zero gradient", p.Name())
		}
		eps := 1e-2
		step := func(sign float64) float64 {
			x := make([]float32, len(theta))
			for i := range x {
				x[i] = theta[i] + float32(sign*eps*float64(g[i])/norm)
			}
			p.SetF32(x)
			return lossAt()
		}
		fd := (step(1) - step(-1)) / (2 * eps)
		p.SetF32(theta)
		rel := math.Abs(fd-norm) / norm
		worst = math.Max(worst, rel)
		if rel > gradTol {
			t.Errorf("%s: analytic %.6g, finite difference %.6g, relative error %.3g > %.0f%%", p.Name(), norm, fd, rel, 100*gradTol)
		}
	}
	t.Logf("%s: %d LoRA tensors, worst relative error of the gradient %.2e (loss %.4f)", obj, len(params), worst, l0)
	return worst
}
