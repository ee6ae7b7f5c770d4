package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/cal"
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

// tinySample builds "<prompt with image> answer" on a generated tiny model, supervising
// the answer tokens.
func tinySample(t *testing.T) (*llava.Model, *ggml.Backend, sample) {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.Generate(dir, 11); err != nil {
		t.Fatal(err)
	}
	be, err := ggml.NewBackend("cpu", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	m, err := llava.Load(filepath.Join(dir, "base.gguf"), be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	lm, err := llama.LoadModel(filepath.Join(dir, "base.gguf"), llama.ModelParams{})
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
	s := sample{batch: &llava.Batch{Seqs: []llava.Sequence{seq}}}
	for i := start; i < len(seq.Tokens); i++ {
		s.rows = append(s.rows, int32(i-1)) // the row before a token predicts it
		s.targets = append(s.targets, cal.Target{Token: seq.Tokens[i], Run: 0})
	}
	return m, be, s
}

// TestLoRAGradientsMatchFiniteDifferences compares, for every LoRA tensor, the
// directional derivative of the loss along the tensor's own gradient with a central
// finite difference of the loss computed by a forward-only graph.
func TestLoRAGradientsMatchFiniteDifferences(t *testing.T) {
	for _, obj := range []cal.Objective{cal.CE, cal.CAL} {
		t.Run(string(obj), func(t *testing.T) {
			m, be, s := tinySample(t)
			ad, err := lora.New(be, &m.W, lora.Config{Rank: 4, Alpha: 4})
			if err != nil {
				t.Fatal(err)
			}
			defer ad.Close()
			ad.InitRandom(5, 0.1)
			dec := &llava.Decoder{HP: m.HP, W: &m.W, Adapter: ad}
			params := ad.Params()
			for _, p := range params {
				p.SetParam()
			}
			opt, err := NewOptimizer(be, params)
			if err != nil {
				t.Fatal(err)
			}
			defer opt.Close()
			sh := Shape{Rows: s.batch.Rows(), Scored: len(s.rows), Obj: obj, Backward: true}
			train, err := NewStepGraph(be, dec, opt, sh, cal.Defaults())
			if err != nil {
				t.Fatal(err)
			}
			defer train.Close()
			sh.Backward = false
			eval, err := NewStepGraph(be, dec, nil, sh, cal.Defaults())
			if err != nil {
				t.Fatal(err)
			}
			defer eval.Close()

			opt.ZeroGrad()
			l0, err := train.Run(s.batch, s.rows, s.targets)
			if err != nil {
				t.Fatal(err)
			}
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
				if rel > 0.02 {
					t.Errorf("%s: analytic %.6g, finite difference %.6g, relative error %.3g > 2%%", p.Name(), norm, fd, rel)
				}
			}
			t.Logf("%s: %d LoRA tensors, worst relative error of the gradient %.2e (loss %.4f)", obj, len(params), worst, l0)
		})
	}
}

// TestAdamWDrivesLossDown trains on one sample and expects the loss to fall by ≥ 90%.
func TestAdamWDrivesLossDown(t *testing.T) {
	m, be, s := tinySample(t)
	ad, err := lora.New(be, &m.W, lora.Config{Rank: 8, Alpha: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	ad.InitStandard(1)
	params := ad.Params()
	for _, p := range params {
		p.SetParam()
	}
	dec := &llava.Decoder{HP: m.HP, W: &m.W, Adapter: ad}
	opt, err := NewOptimizer(be, params)
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	sg, err := NewStepGraph(be, dec, opt, Shape{Rows: s.batch.Rows(), Scored: len(s.rows), Obj: cal.CE, Backward: true}, cal.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defer sg.Close()
	h := DefaultAdamW()
	h.LR = 1e-2
	var first, last float64
	for step := 0; step < 80; step++ {
		opt.ZeroGrad()
		l, err := sg.Run(s.batch, s.rows, s.targets)
		if err != nil {
			t.Fatal(err)
		}
		if step == 0 {
			first = l
		}
		last = l
		if _, err := opt.Update(h, 1, 1.0); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loss %.4f → %.4f (%.1f%% lower) after 80 AdamW steps", first, last, 100*(1-last/first))
	if last > 0.1*first {
		t.Errorf("loss fell from %.4f to %.4f, less than 90%%", first, last)
	}
}
