// Package bench measures a training step the same way every time: model shapes from a
// preset with random weights (no files), one fixed sequence, timed steps after a
// warm-up, against ggml's own F32 matrix-product rate measured in the same run.
package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
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
	Preset    string // a key of Presets
	Objective string // ce | cal
	Steps     int    // timed steps
	Warmup    int    // untimed steps first
	Threads   int
	Backend   string // cpu (""), cuda, vulkan, metal, blas or auto: see ggml.NewBackend
	Rank      int
	ImageRows int // -1: the preset's
	Rows      int // 0: the preset's; else the sequence's length (text after the image fills it)
	BaseType  string
	Profile   bool
	// BackwardWeights, ForwardWeights, NoImageWeights and Recompute choose as for training
	// (train.Setup); "" is auto. MaxMemory is the budget auto choices fit ("": Laptop,
	// "0": the memory available; never more than is available).
	BackwardWeights string
	ForwardWeights  string
	NoImageWeights  string
	Recompute       string
	MaxMemory       string
	// Ratio also times ce steps in turn with cal ones, for cal's cost over ce.
	Ratio bool
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
	// A 1B llama (Llama 3.2 1B's blocks with a 32k vocabulary): 704 rows of text.
	"llama1b": {HP: arch.HParams{Arch: "llama", NEmbd: 2048, NLayer: 16, NHead: 32, NHeadKV: 8, HeadDim: 64, NFF: 8192,
		NVocab: 32000, NCtxTrain: 4096, RMSEps: 1e-5, Rope: arch.NoScaling(arch.RopeNormal, 64, 500000, 4096)},
		Prefix: 8, ImageRows: 0, Text: 696},
	// LLaVA-1.5-7B's text model (Vicuna 7B): a prompt, 576 image rows, 123 answer rows.
	"llava7b": {HP: arch.HParams{Arch: "llama", NEmbd: 4096, NLayer: 32, NHead: 32, NHeadKV: 32, HeadDim: 128, NFF: 11008,
		NVocab: 32000, NCtxTrain: 4096, RMSEps: 1e-5, Rope: arch.NoScaling(arch.RopeNormal, 128, 10000, 4096)},
		Prefix: 5, ImageRows: 576, Text: 123},
	// Gemma 3's decoder at make-tiny's widths with a real Gemma 3 vocabulary (262 144
	// tokens) and 700 rows, 256 of them an image's: the loss's memory against the rest.
	// gemma3tiny is the same with the tiny vocabulary.
	"gemma3tiny262k": {HP: tinyGemma3(262144), Prefix: 8, ImageRows: 256, Text: 436},
	"gemma3tiny":     {HP: tinyGemma3(0), Prefix: 8, ImageRows: 256, Text: 436},
}

// tinyGemma3 is make-tiny --family gemma3's text model, with a vocabulary of vocab
// tokens (0: the tiny one's) and room for 4096 rows.
func tinyGemma3(vocab int) arch.HParams {
	hp, err := tiny.Options{Arch: tiny.ArchGemma3}.HParams()
	if err != nil {
		panic(err)
	}
	if vocab > 0 {
		hp.NVocab = vocab
	}
	hp.NCtxTrain = 4096
	hp.Rope.NCtxOrig, hp.RopeSWA.NCtxOrig = 4096, 4096
	return hp
}

// BaseTypes are the stored types --base-type takes; q4_k_m is llama.cpp's mix of Q4_K
// with Q6_K for the output layer and half of the value and down projections.
var BaseTypes = []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q4_k_m"}

// typeOf is the stored type of a matrix of a model of n layers in a base type.
func typeOf(base string, n int) (func(arch.Spec) ggml.Type, error) {
	simple := map[string]ggml.Type{"f32": ggml.TypeF32, "f16": ggml.TypeF16, "bf16": ggml.TypeBF16, "q8_0": ggml.TypeQ8_0,
		"q4_0": ggml.TypeQ4_0, "q4_k": ggml.TypeQ4_K}
	if t, ok := simple[base]; ok {
		return func(arch.Spec) ggml.Type { return t }, nil
	}
	if base != "q4_k_m" {
		return nil, fmt.Errorf("unknown --base-type %q; use %v", base, BaseTypes)
	}
	// llama.cpp's use_more_bits: the first and last eighth of the layers and every third
	// one between.
	more := func(i int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }
	return func(s arch.Spec) ggml.Type {
		switch {
		case s.Name == "output.weight":
			return ggml.TypeQ6_K
		case (s.Target == "attn_v" || s.Target == "ffn_down") && more(s.Layer):
			return ggml.TypeQ6_K
		}
		return ggml.TypeQ4_K
	}, nil
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
	Preset     string `json:"preset"`
	Objective  string `json:"objective"`
	Rows       int    `json:"rows"`
	ImageRows  int    `json:"image_rows"`
	Supervised int    `json:"supervised_tokens"`
	Threads    int    `json:"threads"`
	// Backend is where the steps ran; NodesOn, beside a device, the nodes each backend
	// ran over the whole benchmark (the CPU's are the ops the device lacks).
	Backend      string         `json:"backend"`
	NodesOn      map[string]int `json:"nodes_on,omitempty"`
	Rank         int            `json:"rank"`
	BackwardW    string         `json:"backward_weights"`
	NoImageW     string         `json:"no_image_weights,omitempty"`
	SecPerStep   float64        `json:"s_per_step"`
	TokensPerSec float64        `json:"tokens_per_s"`
	StepGFLOP    float64        `json:"step_gflop"`
	GFLOPS       float64        `json:"gflop_per_s"`
	MatMulGFLOPS float64        `json:"f32_mul_mat_gflop_per_s"`
	OfMatMul     float64        `json:"ratio_to_mul_mat"`
	// BF16MatMulGFLOPS is the same product with a BF16 first operand, as the backward
	// pass's transposed copies have: context for ratio_to_mul_mat, which the F32 rate sets.
	BF16MatMulGFLOPS float64 `json:"bf16_mul_mat_gflop_per_s"`
	PeakRSSMB        float64 `json:"peak_rss_mb"`
	// PredictedMB is the trainer's prediction of the peak (train.MemoryPlan), with the
	// choices it made.
	PredictedMB float64 `json:"predicted_mb"`
	Recompute   bool    `json:"recompute"`
	KeptBlocks  int     `json:"kept_blocks,omitempty"` // with recompute: the top blocks not recomputed
	// StoredBlocks, with recompute: the recomputed blocks that store their frozen products.
	StoredBlocks int `json:"stored_product_blocks,omitempty"`
	// Plan is the prediction by part (train.MemoryPlan's String).
	Plan     string `json:"plan"`
	Forward  string `json:"forward_weights"`
	BaseType string `json:"base_type"`
	// The backward pass's product through the largest frozen matrix (Wᵀ·dy, copies or
	// tiles as the step uses) beside the forward product W·x, same matrix and rows.
	Matrix         string             `json:"product_matrix"`
	ForwardGFLOPS  float64            `json:"forward_product_gflop_per_s"`
	BackwardGFLOPS float64            `json:"backward_product_gflop_per_s"`
	CEsPerStep     float64            `json:"ce_s_per_step,omitempty"`
	CALOverCE      float64            `json:"cal_over_ce,omitempty"`
	Profile        map[string]float64 `json:"profile_ms,omitempty"`
}

// Run measures the preset's training step.
func Run(o Options) (*Result, error) {
	p, obj, err := o.resolve()
	if err != nil {
		return nil, err
	}
	be, err := ggml.NewBackend(o.Backend, o.Threads)
	if err != nil {
		return nil, err
	}
	defer be.Close()
	r := &Result{Preset: o.Preset, Objective: o.Objective, ImageRows: p.ImageRows, Threads: o.Threads, Rank: o.Rank,
		Backend: be.Describe()}
	defer func() {
		if placed := be.Placed(); len(placed) > 0 {
			r.NodesOn = placed
		}
	}()
	if r.MatMulGFLOPS, err = matMulRate(be, ggml.TypeF32); err != nil {
		return nil, err
	}
	if r.BF16MatMulGFLOPS, err = matMulRate(be, ggml.TypeBF16); err != nil {
		return nil, err
	}
	typ, err := typeOf(o.BaseType, p.HP.NLayer)
	if err != nil {
		return nil, err
	}
	m, err := llava.NewRandom(be, p.HP, 1, typ)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	r.BaseType = o.BaseType
	b := sequence(p)
	r.Rows, r.Supervised = b.Seqs.Rows(), len(b.Targets)
	tr, err := newTrainer(be, m, o, obj, b)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	r.describeCopies(tr, obj)
	if err := r.productRates(be, m, tr); err != nil {
		return nil, err
	}
	if err := r.measure(o, tr, b, obj); err != nil {
		return nil, err
	}
	if obj == cal.CAL && o.Ratio {
		if err := r.ratioToCE(o, tr, b); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// newTrainer is the trainer of the benchmark: its memory planned for the batch within
// the budget, as a training run plans it.
func newTrainer(be *ggml.Backend, m *llava.Model, o Options, obj cal.Objective, b *train.Batch) (*train.Trainer, error) {
	budget, name, err := Budget(o.MaxMemory)
	if err != nil {
		return nil, err
	}
	s := train.Setup{Objective: obj, CAL: cal.Defaults(), Seed: 1, LoRA: lora.Config{Rank: o.Rank, Alpha: float32(2 * o.Rank)},
		BackwardWeights: o.BackwardWeights, ForwardWeights: o.ForwardWeights, NoImageWeights: o.NoImageWeights, Recompute: o.Recompute, ExactShapes: true,
		Budget: budget, BudgetName: name, Other: 64 << 20}
	s.Largest = (&train.Trainer{Setup: s}).Shape(b, obj, true) // the batch's exact shape, as the bench runs it
	return train.NewTrainer(be, m, s)
}

// Laptop is the benchmark's default memory budget: what a 16 GB laptop leaves a
// training run beside its system and a browser. A fixed budget, not the memory this
// machine happens to have free, makes a preset's plan, and so its figures, the same on
// every machine that has that much available.
const Laptop = "8GB"

// Budget is the memory a benchmark plans within: maxMemory ("": Laptop; "0": what is
// available), and never more than is available.
func Budget(maxMemory string) (int64, string, error) {
	if maxMemory == "" {
		maxMemory = Laptop
	}
	budget, name, err := train.MemoryBudget(maxMemory)
	if err != nil {
		return 0, "", err
	}
	if avail, availName, _ := train.MemoryBudget("0"); avail > 0 && avail < budget {
		return avail, availName, nil
	}
	return budget, name, nil
}

// resolve checks the options and picks the preset's shape.
func (o *Options) resolve() (Preset, cal.Objective, error) {
	p, ok := Presets[o.Preset]
	if !ok {
		return p, "", fmt.Errorf("unknown preset %q; use tiny, smol135, llama1b or llava7b", o.Preset)
	}
	obj, err := cal.ParseObjective(o.Objective)
	if err != nil {
		return p, "", err
	}
	if o.Steps < 1 || o.Warmup < 0 || o.Rank < 1 {
		return p, "", fmt.Errorf("--steps and --rank must be at least 1 and --warmup not negative (got %d, %d, %d)", o.Steps, o.Rank, o.Warmup)
	}
	total := p.Prefix + p.ImageRows + p.Text // kept when --image-rows changes, so runs compare
	if o.Rows > 0 {
		total = o.Rows
	}
	if o.ImageRows >= 0 {
		p.ImageRows = o.ImageRows
	}
	if o.Preset != "tiny" || o.Rows > 0 {
		p.Text = total - p.Prefix - p.ImageRows
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
	r.BackwardW = tr.Plan.Backward
	r.Recompute, r.KeptBlocks, r.Forward = tr.Plan.Recompute, tr.Plan.Kept, tr.Plan.Forward
	r.PredictedMB = float64(tr.Plan.Total()) / (1 << 20)
	r.StoredBlocks, r.Plan = tr.Plan.Products, tr.Plan.String()
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
	tr.ZeroGrad()
	if _, err := tr.AccumulateAs(b, obj, 0); err != nil {
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
	for _, g := range tr.Graphs(tr.Shape(b, obj, true)) {
		for i := 0; i < g.NNodes(); i++ {
			r.StepGFLOP += g.Node(i).MatMulFLOPs() / 1e9
		}
	}
	r.GFLOPS = r.StepGFLOP / r.SecPerStep
	r.OfMatMul = r.GFLOPS / r.MatMulGFLOPS
	if !o.Profile {
		return nil
	}
	if tr.Plan.Recompute {
		var err error
		r.Profile, err = profileRecomputed(tr, b, obj)
		return err
	}
	sg, err := tr.Graph(tr.Shape(b, obj, true))
	if err != nil {
		return err
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
	var p nodeProfile
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
		p.add(phase, nt)
	}
	return p.finish(tr)
}

// profileRecomputed times a recomputing step node by node, by its graphs: the forward
// pass, the top (or the kept blocks with the loss), and the recomputed blocks.
func profileRecomputed(tr *train.Trainer, b *train.Batch, obj cal.Objective) (map[string]float64, error) {
	var p nodeProfile
	parts, err := tr.ProfileRecomputed(b, obj)
	if err != nil {
		return nil, err
	}
	for _, pt := range parts {
		phase := pt.Part
		if strings.HasPrefix(phase, "block ") {
			phase = "recomputed blocks"
		}
		for _, nt := range pt.Times {
			p.add(phase, nt)
		}
	}
	return p.finish(tr)
}

// nodeProfile sums node times by phase and by phase and op, and keeps the slowest nodes.
type nodeProfile struct {
	out map[string]float64
	top []phaseNode
}

type phaseNode struct {
	phase string
	ggml.NodeTime
}

func (p *nodeProfile) add(phase string, nt ggml.NodeTime) {
	if p.out == nil {
		p.out = map[string]float64{}
	}
	p.out["phase "+phase] += nt.Dur.Seconds() * 1e3
	p.out[phase+" "+nt.Node.Op()] += nt.Dur.Seconds() * 1e3
	p.top = append(p.top, phaseNode{phase, nt})
}

// finish adds the slowest nodes and the optimizer's time (one update, timed).
func (p *nodeProfile) finish(tr *train.Trainer) (map[string]float64, error) {
	sort.Slice(p.top, func(i, j int) bool { return p.top[i].Dur > p.top[j].Dur })
	for _, nt := range p.top[:min(12, len(p.top))] {
		ne := nt.Node.Ne()
		k := fmt.Sprintf("node %s %s %s [%d %d %d %d]", nt.phase, nt.Node.Op(), nt.Node.Name(), ne[0], ne[1], ne[2], ne[3])
		p.out[k] += nt.Dur.Seconds() * 1e3
	}
	t0 := time.Now()
	if _, err := tr.Update(train.DefaultAdamW(), 1, 1); err != nil {
		return nil, err
	}
	p.out["optimizer (norm + AdamW)"] = time.Since(t0).Seconds() * 1e3
	return p.out, nil
}

// productRates times, on the model's largest frozen block matrix, the forward product
// W·x and the backward pass's Wᵀ·dy as the trainer computes it (a transposed copy or
// tiles), over as many rows as the benchmark's sequence.
func (r *Result) productRates(be *ggml.Backend, m *llava.Model, tr *train.Trainer) error {
	var w ggml.Tensor
	for _, mat := range m.W.Matrices() {
		if mat.Target != "" && (w.Nil() || mat.T.NElements() > w.NElements()) {
			w = *mat.T
		}
	}
	ne := w.Ne()
	ctx := ggml.NewContext(256*ggml.TensorOverhead()+2*ggml.GraphOverhead(256, false), true)
	defer ctx.Close()
	x := ctx.NewTensor(ggml.TypeF32, ne[0], r.Rows)
	dy := ctx.NewTensor(ggml.TypeF32, ne[1], r.Rows)
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		return err
	}
	defer buf.Close()
	buf.Clear(0)
	fwd := ctx.NewGraph(256, false)
	if tr.Plan.Forward == "bf16" && be.IsCPU() && w.Type() != ggml.TypeF32 && w.Type() != ggml.TypeBF16 {
		fwd.Expand(ctx.MulMat(ctx.Dequantize(w, ggml.TypeBF16, false), x)) // as the rewrite does
	} else {
		fwd.Expand(ctx.MulMat(w, x))
	}
	bwd := ctx.NewGraph(256, false)
	if tr.Fast.Transposed != nil {
		bwd.Expand(ctx.MulMat(tr.Fast.Transposed.Of[w], dy))
	} else {
		bwd.Expand(ctx.TiledTransposedProduct(w, dy, tr.Fast.TileType, be.IsCPU()))
	}
	flop := 2 * float64(ne[0]) * float64(ne[1]) * float64(r.Rows)
	r.Matrix = fmt.Sprintf("%s %s [%d, %d]", w.Name(), w.Type(), ne[0], ne[1])
	for _, c := range []struct {
		g    *ggml.Graph
		rate *float64
	}{{fwd, &r.ForwardGFLOPS}, {bwd, &r.BackwardGFLOPS}} {
		al := be.NewAllocator()
		if err := al.Alloc(c.g); err != nil {
			al.Close()
			return err
		}
		best := 0.0
		for range 3 {
			t0 := time.Now()
			if err := be.Compute(c.g); err != nil {
				al.Close()
				return err
			}
			best = max(best, flop/time.Since(t0).Seconds()/1e9)
		}
		*c.rate = best
		al.Close()
	}
	return nil
}
