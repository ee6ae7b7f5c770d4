// Package bench measures a training step the same way every time: model shapes from a
// preset with random weights (no files), one fixed sequence, timed steps after a
// warm-up, against ggml's own F32 matrix-product rate measured in the same run.
package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"syscall"
	"time"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
	"github.com/calft/calft/train"
)

// Options choose what to measure.
type Options struct {
	Preset    string // tiny | smol135
	Objective string // ce | cal
	Steps     int    // timed steps
	Warmup    int    // untimed steps first
	Threads   int
	Rank      int
	ImageRows int // -1: the preset's
	Profile   bool
	// BackwardWeights and NoImageWeights choose the frozen weights' copies as for
	// training (train.NewFastWeights); "" is auto.
	BackwardWeights string
	NoImageWeights  string
}

// Preset is a model shape and its benchmark sequence.
type Preset struct {
	HP        arch.HParams
	Prefix    int // text rows before the image
	ImageRows int
	Text      int // text rows after the image, all supervised
}

// Presets are the shapes calft is benchmarked on.
var Presets = map[string]Preset{
	"tiny": {HP: mustTinyHParams(), Prefix: 4, ImageRows: tiny.TokensPerImage, Text: 24},
	// SmolLM2-135M's text model (SmolVLM-256M's decoder is the same shape): 192 rows.
	"smol135": {HP: arch.HParams{Arch: "llama", NEmbd: 576, NLayer: 30, NHead: 9, NHeadKV: 3, HeadDim: 64, NFF: 1536,
		NVocab: 49152, NCtxTrain: 8192, RMSEps: 1e-5, Rope: arch.NoScaling(arch.RopeNormal, 64, 100000, 8192), Tied: true},
		Prefix: 8, ImageRows: 64, Text: 120},
}

// mustTinyHParams is make-tiny's text model shape.
func mustTinyHParams() arch.HParams {
	hp, err := tiny.Options{}.HParams()
	if err != nil {
		panic(err)
	}
	return hp
}

// Result is one benchmark line.
type Result struct {
	Preset       string  `json:"preset"`
	Objective    string  `json:"objective"`
	Rows         int     `json:"rows"`
	ImageRows    int     `json:"image_rows"`
	Supervised   int     `json:"supervised_tokens"`
	Threads      int     `json:"threads"`
	Rank         int     `json:"rank"`
	BackwardW    string  `json:"backward_weights"`
	NoImageW     string  `json:"no_image_weights,omitempty"`
	SecPerStep   float64 `json:"s_per_step"`
	TokensPerSec float64 `json:"tokens_per_s"`
	StepGFLOP    float64 `json:"step_gflop"`
	GFLOPS       float64 `json:"gflop_per_s"`
	MatMulGFLOPS float64 `json:"f32_mul_mat_gflop_per_s"`
	OfMatMul     float64 `json:"ratio_to_mul_mat"`
	// BF16MatMulGFLOPS is the same product with a BF16 first operand, as the backward
	// pass's transposed copies have: context for ratio_to_mul_mat, which the F32 rate sets.
	BF16MatMulGFLOPS float64            `json:"bf16_mul_mat_gflop_per_s"`
	PeakRSSMB        float64            `json:"peak_rss_mb"`
	CEsPerStep       float64            `json:"ce_s_per_step,omitempty"`
	CALOverCE        float64            `json:"cal_over_ce,omitempty"`
	Profile          map[string]float64 `json:"profile_ms,omitempty"`
}

// Run measures the preset's training step.
func Run(o Options) (*Result, error) {
	p, obj, err := o.resolve()
	if err != nil {
		return nil, err
	}
	be, err := ggml.NewBackend("cpu", o.Threads)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	r := &Result{Preset: o.Preset, Objective: o.Objective, ImageRows: p.ImageRows, Threads: o.Threads, Rank: o.Rank}
	if r.MatMulGFLOPS, err = matMulRate(be, ggml.TypeF32); err != nil {
		return nil, err
	}
	if r.BF16MatMulGFLOPS, err = matMulRate(be, ggml.TypeBF16); err != nil {
		return nil, err
	}
	m, err := llava.NewRandom(be, p.HP, 1)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	tr, err := train.NewTrainer(be, m, train.Setup{Objective: obj, CAL: cal.Defaults(), Seed: 1,
		LoRA:            lora.Config{Rank: o.Rank, Alpha: float32(2 * o.Rank)},
		BackwardWeights: o.BackwardWeights, NoImageWeights: o.NoImageWeights, ExactShapes: true})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	r.describeCopies(tr, obj)
	b := sequence(p)
	r.Rows, r.Supervised = b.Seqs.Rows(), len(b.Targets)
	if err := r.measure(o, tr, b, obj); err != nil {
		return nil, err
	}
	if obj == cal.CAL {
		if err := r.ratioToCE(o, tr, b); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// resolve checks the options and picks the preset's shape.
func (o *Options) resolve() (Preset, cal.Objective, error) {
	p, ok := Presets[o.Preset]
	if !ok {
		return p, "", fmt.Errorf("unknown preset %q; use tiny or smol135", o.Preset)
	}
	obj, err := cal.ParseObjective(o.Objective)
	if err != nil {
		return p, "", err
	}
	if o.Steps < 1 || o.Warmup < 0 || o.Rank < 1 {
		return p, "", fmt.Errorf("--steps and --rank must be at least 1 and --warmup not negative (got %d, %d, %d)", o.Steps, o.Rank, o.Warmup)
	}
	if o.ImageRows >= 0 && o.Preset == "smol135" {
		p.ImageRows = o.ImageRows
		p.Text = benchRows - p.Prefix - p.ImageRows
	} else if o.ImageRows >= 0 {
		p.ImageRows = o.ImageRows
	}
	if p.Text <= 0 {
		return p, "", fmt.Errorf("%d image rows leave no text in the benchmark sequence", p.ImageRows)
	}
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	return p, obj, nil
}

// describeCopies records which frozen-weight copies the trainer made.
func (r *Result) describeCopies(tr *train.Trainer, obj cal.Objective) {
	r.BackwardW = "autodiff"
	if tr.Fast.Transposed != nil {
		r.BackwardW = tr.Fast.Transposed.Type.String()
	}
	if obj == cal.CAL {
		r.NoImageW = "f32"
		if tr.Fast.NoImage != nil {
			r.NoImageW = "q8_0"
		}
	}
}

// step times one training step of a batch with the objective's graph: forward, loss,
// backward and AdamW.
func step(tr *train.Trainer, b *train.Batch, obj cal.Objective) (float64, error) {
	t0 := time.Now()
	g, err := tr.Graph(tr.Shape(b, obj, true))
	if err != nil {
		return 0, err
	}
	tr.ZeroGrad()
	if _, err := g.Run(b.Seqs, b.Rows, b.Targets); err != nil {
		return 0, err
	}
	if _, err := tr.Update(train.DefaultAdamW(), 1, 1); err != nil {
		return 0, err
	}
	return time.Since(t0).Seconds(), nil
}

// measure times the objective's steps after a warm-up, counts the step's matrix-product
// work, reads the peak memory and, with --profile, times one step node by node.
func (r *Result) measure(o Options, tr *train.Trainer, b *train.Batch, obj cal.Objective) error {
	var times []float64
	for i := 0; i < o.Warmup+o.Steps; i++ {
		dt, err := step(tr, b, obj)
		if err != nil {
			return err
		}
		if i >= o.Warmup {
			times = append(times, dt)
		}
	}
	// The peak so far is this objective's step; the ce step measured for the ratio
	// builds a graph of its own, which must not count.
	r.PeakRSSMB = peakRSSMB()
	r.SecPerStep = median(times)
	r.TokensPerSec = float64(r.Rows) / r.SecPerStep
	sg, err := tr.Graph(tr.Shape(b, obj, true))
	if err != nil {
		return err
	}
	for i := 0; i < sg.Graph().NNodes(); i++ {
		r.StepGFLOP += sg.Graph().Node(i).MatMulFLOPs() / 1e9
	}
	r.GFLOPS = r.StepGFLOP / r.SecPerStep
	r.OfMatMul = r.GFLOPS / r.MatMulGFLOPS
	if !o.Profile {
		return nil
	}
	if err := sg.SetInputs(b.Seqs, b.Rows, b.Targets); err != nil {
		return err
	}
	r.Profile, err = profile(tr, sg)
	return err
}

// ratioToCE times cal and ce steps taken in turn, so that a change in the machine's
// speed during the run (these are shared machines) touches both alike.
func (r *Result) ratioToCE(o Options, tr *train.Trainer, b *train.Batch) error {
	var ce, ratios []float64
	for i := 0; i < o.Warmup+o.Steps; i++ {
		tc, err := step(tr, b, cal.CAL)
		if err != nil {
			return err
		}
		te, err := step(tr, b, cal.CE)
		if err != nil {
			return err
		}
		if i >= o.Warmup {
			ce = append(ce, te)
			ratios = append(ratios, tc/te)
		}
	}
	r.CEsPerStep, r.CALOverCE = median(ce), median(ratios)
	return nil
}

// median of a non-empty sample.
func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

// benchRows is smol135's row count, kept when --image-rows changes so that runs with
// and without image rows compare.
const benchRows = 192

// sequence is the preset's benchmark sample: a text prefix, image rows (random
// embeddings), then text, every token after the image supervised.
func sequence(p Preset) *train.Batch {
	rng := rand.New(rand.NewPCG(7, 7))
	var s llava.Sequence
	tok := func() int32 { return int32(3 + rng.IntN(p.HP.NVocab-3)) }
	for range p.Prefix {
		s.Tokens = append(s.Tokens, tok())
	}
	for range p.ImageRows {
		s.Tokens = append(s.Tokens, llava.ImageRow)
		for range p.HP.NEmbd {
			s.Embd = append(s.Embd, float32(rng.NormFloat64()*0.5))
		}
	}
	start := len(s.Tokens)
	for range p.Text {
		s.Tokens = append(s.Tokens, tok())
	}
	var rows []int32
	var targets []cal.Target
	for i := start; i < len(s.Tokens); i++ {
		rows = append(rows, int32(i-1))
		targets = append(targets, cal.Target{Token: s.Tokens[i]})
	}
	return &train.Batch{Seqs: &llava.Batch{Seqs: []llava.Sequence{s}}, Rows: rows, Targets: targets, Real: len(s.Tokens)}
}

// matMulRate is ggml's matrix-product rate on this backend with a first operand of type
// typ (the second is F32): the best of a few 2048×2048×2048 products.
func matMulRate(be *ggml.Backend, typ ggml.Type) (float64, error) {
	const n = 2048
	ctx := ggml.NewContext(8*ggml.TensorOverhead()+ggml.GraphOverhead(8, false), true)
	defer ctx.Close()
	a := ctx.NewTensor(typ, n, n)
	b := ctx.NewTensor(ggml.TypeF32, n, n)
	c := ctx.MulMat(a, b)
	g := ctx.NewGraph(8, false)
	g.Expand(c)
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		return 0, err
	}
	defer buf.Close()
	v := make([]float32, n*n)
	for i := range v {
		v[i] = float32(i%7) * 0.1
	}
	if typ == ggml.TypeF32 {
		a.SetF32(v)
	} else {
		buf.Clear(0) // the rate does not depend on the values (zeros are not denormal)
	}
	b.SetF32(v)
	best := 0.0
	for range 4 {
		t0 := time.Now()
		if err := be.Compute(g); err != nil {
			return 0, err
		}
		best = max(best, 2*n*n*n/time.Since(t0).Seconds()/1e9)
	}
	return best, nil
}

// peakRSSMB is the process's peak resident memory.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	kb := float64(ru.Maxrss)
	if runtime.GOOS == "darwin" {
		kb /= 1024 // bytes there
	}
	return kb / 1024
}

// profile runs one step node by node and sums the time per op and phase.
func profile(tr *train.Trainer, sg *train.StepGraph) (map[string]float64, error) {
	out := map[string]float64{}
	type nodeTime struct {
		phase string
		ggml.NodeTime
	}
	var top []nodeTime
	// The inputs were just set; compute node by node.
	times, err := tr.Backend.ComputeProfiled(sg.Graph())
	if err != nil {
		return nil, err
	}
	noImg := sg.ImageAbsentNodes()
	for i, nt := range times {
		phase := "forward"
		switch {
		case i >= sg.Phases[1]:
			phase = "backward"
		case i >= sg.Phases[0]:
			phase = "loss"
		case noImg[nt.Node]:
			phase = "no-image"
		}
		out["phase "+phase] += nt.Dur.Seconds() * 1e3
		out[phase+" "+nt.Node.Op()] += nt.Dur.Seconds() * 1e3
		top = append(top, nodeTime{phase, nt})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].Dur > top[j].Dur })
	for _, nt := range top[:min(12, len(top))] {
		ne := nt.Node.Ne()
		k := fmt.Sprintf("node %s %s %s [%d %d %d %d]", nt.phase, nt.Node.Op(), nt.Node.Name(), ne[0], ne[1], ne[2], ne[3])
		out[k] += nt.Dur.Seconds() * 1e3
	}
	t0 := time.Now()
	if _, err := tr.Update(train.DefaultAdamW(), 1, 1); err != nil {
		return nil, err
	}
	out["optimizer (norm + AdamW)"] = time.Since(t0).Seconds() * 1e3
	return out, nil
}
