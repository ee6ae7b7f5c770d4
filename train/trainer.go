package train

import (
	"errors"
	"fmt"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
)

// Setup says what a Trainer trains: the adapter, the objective, and the frozen weights'
// copies that make a step faster.
type Setup struct {
	Objective cal.Objective
	CAL       cal.Options
	LoRA      lora.Config
	Dropout   float64
	Seed      uint64 // the adapter's initial values and the dropout masks
	// Init, when set, is the adapter's starting point (same rank, alpha and targets);
	// nil initialises as PEFT does (A random, B zero).
	Init *lora.HostAdapter
	// BackwardWeights and NoImageWeights choose the copies (see NewFastWeights); ""
	// is "auto".
	BackwardWeights, NoImageWeights string
	// ForwardWeights ("auto", "native", "bf16"; "" is "auto") chooses how the forward
	// products with frozen quantized or F16 matrices run on the CPU (see
	// llava.Decoder.ForwardBF16).
	ForwardWeights string
	// ExactShapes builds each graph for its batch's exact number of scored rows (a
	// benchmark's one fixed batch); otherwise that number is rounded up, so that batches
	// of similar size share a graph.
	ExactShapes bool
	// LossBlock is how many scored rows the loss takes at a time (0: automatic; tests
	// set it to check the blocks).
	LossBlock int
	// Recompute ("on", "off", "auto"; "" is off) keeps only each block's input through
	// the forward pass and rebuilds one block at a time for its backward pass (see
	// recompute): the memory of one block's activations instead of all of them, for a
	// second forward pass. Where the budget allows, blocks also keep their frozen
	// products (MemoryPlan.Products), which their second pass then skips.
	Recompute string
	// Largest, when Rows is set, is the largest micro-batch the run takes: the trainer
	// then predicts its memory (Trainer.Plan) and chooses the "auto" settings that fit
	// Budget (0: no limit), or refuses. BudgetName names the budget in messages; Other
	// is the memory the process holds besides the trainer's (the vision projector).
	Largest    Shape
	Budget     int64
	BudgetName string
	Other      int64
	// PlanOnly stops after the plan (a dry run): no weight copies, no graphs.
	PlanOnly bool
	// ExactGELU gives Gemma 3's feed-forward the exact GELU formula's values instead of
	// those of llama.cpp's F16 table (llava.Decoder.ExactGELU): finite differences of
	// the loss need them smooth.
	ExactGELU bool
}

// errInitAdapter marks an initial adapter (Setup.Init) that does not fit the run.
var errInitAdapter = errors.New("the initial adapter does not fit this run's rank, alpha and targets")

// Trainer is everything a training run computes with, on one backend: the frozen model,
// the LoRA adapter with its gradient accumulators and AdamW state, the weight copies,
// and the built step graphs. A step is ZeroGrad, Accumulate for each micro-batch, then
// Update.
type Trainer struct {
	Backend *ggml.Backend
	Model   *llava.Model
	Adapter *lora.Adapter
	Opt     *Optimizer
	Fast    *FastWeights
	Setup   Setup
	// Plan is the predicted memory and the choices made for it (without
	// Setup.Largest: the choices, with no prediction).
	Plan MemoryPlan

	graphs *graphCache
}

// NewTrainer builds a trainer for model m on backend be.
func NewTrainer(be *ggml.Backend, m *llava.Model, s Setup) (*Trainer, error) {
	t := &Trainer{Backend: be, Model: m, Setup: s}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	var err error
	if t.Adapter, err = lora.New(be, &m.W, s.LoRA); err != nil {
		return nil, err
	}
	t.Adapter.InitStandard(s.Seed)
	if s.Init != nil {
		if err := t.Adapter.FromHost(s.Init); err != nil {
			return nil, fmt.Errorf("%w: %v", errInitAdapter, err)
		}
	}
	if err := t.Adapter.EnableDropout(be, float32(s.Dropout), s.Seed); err != nil {
		return nil, err
	}
	params := t.Adapter.Params()
	for _, p := range params {
		p.SetParam()
	}
	if t.Opt, err = NewOptimizer(be, params); err != nil {
		return nil, err
	}
	if err := t.choose(); err != nil {
		return nil, err
	}
	if s.PlanOnly {
		ok = true
		return t, nil
	}
	if t.Fast, err = NewFastWeights(be, m, t.Plan.Backward, orAuto(s.NoImageWeights), s.Objective == cal.CAL); err != nil {
		return nil, err
	}
	dec := &llava.Decoder{HP: m.HP, W: &m.W, Adapter: t.Adapter, CPU: be.IsCPU(), ForwardBF16: t.Plan.Forward == "bf16", ExactGELU: s.ExactGELU}
	t.Fast.Apply(dec)
	t.graphs = newGraphCache(be, dec, t.Opt, s.CAL)
	t.graphs.retain = retention{Whole: t.Plan.Kept, Products: t.Plan.Products}
	ok = true
	return t, nil
}

// choose settles recomputation and the backward products: by the memory plan when the
// largest step is known, else by the options alone (auto: copies for an F32 base,
// tiles otherwise; no recomputation).
func (t *Trainer) choose() error {
	s := t.Setup
	forward := forwardChoice(s.ForwardWeights, t.Backend, t.Model.W.Layers[0].Wq.Type())
	defer func() { t.Plan.Forward = forward }()
	if s.Largest.Rows > 0 {
		var err error
		t.Plan, err = t.plan(s.Largest, s.Budget, s.BudgetName, s.Other, forward)
		return err
	}
	t.Plan = MemoryPlan{Recompute: s.Recompute == "on", Backward: orAuto(s.BackwardWeights)}
	if t.Plan.Backward == "auto" {
		t.Plan.Backward = "tiled"
		if t.Model.W.Layers[0].Wq.Type() == ggml.TypeF32 {
			t.Plan.Backward = "bf16"
		}
	}
	return nil
}

func orAuto(s string) string {
	if s == "" {
		return "auto"
	}
	return s
}

// Close frees everything the trainer made (not the model).
func (t *Trainer) Close() {
	if t.graphs != nil {
		t.graphs.close()
	}
	if t.Fast != nil {
		t.Fast.Close()
	}
	if t.Opt != nil {
		t.Opt.Close()
	}
	if t.Adapter != nil {
		t.Adapter.Close()
	}
}

// Batch is one packed micro-batch: its sequences, the rows whose logits are scored and
// the tokens they predict, and how many rows are real (not padding).
type Batch struct {
	Seqs    *llava.Batch
	Rows    []int32
	Targets []cal.Target
	Real    int
}

// Micro is what one micro-batch's forward pass measured.
type Micro struct {
	Loss    float64
	Weights []float32 // the CAL weight of every scored row (1 for ce)
}

// Shape is the graph shape of a batch: rows and scored rows rounded up so that similar
// batches share a graph, and for CAL the rows of the shared image-absent pass.
func (t *Trainer) Shape(b *Batch, obj cal.Objective, backward bool) Shape {
	sh := Shape{Rows: b.Seqs.Rows(), Scored: roundUp(max(len(b.Rows), 1), scoredBucket), Obj: obj, Backward: backward}
	if t.Setup.ExactShapes {
		sh.Scored = max(len(b.Rows), 1)
	}
	sh.LossBlock = t.Setup.LossBlock
	if obj == cal.CAL && !(backward && t.Setup.Dropout > 0) {
		// The shared image-absent pass reuses the training pass's unchanged rows, which
		// carry its dropout masks; with dropout, the separate dropout-free pass is used.
		sh.Hidden, sh.Kept = HiddenFor(b.Seqs), KeptFor(b.Seqs)
	}
	return sh
}

// Graph returns the built step graph of a shape (built on first use).
func (t *Trainer) Graph(sh Shape) (*StepGraph, error) { return t.graphs.get(sh) }

// ZeroGrad clears the gradient accumulators before a step's micro-batches.
func (t *Trainer) ZeroGrad() { t.Opt.ZeroGrad() }

// Accumulate runs forward and backward over one micro-batch, adding its LoRA gradients
// into the accumulators. dropSeed draws the micro-batch's LoRA dropout masks.
func (t *Trainer) Accumulate(b *Batch, dropSeed uint64) (Micro, error) {
	return t.AccumulateAs(b, t.Setup.Objective, dropSeed)
}

// Graphs are the graphs of a training step of a shape: one, or with recomputation the
// forward, top and block graphs (for counting their work).
func (t *Trainer) Graphs(sh Shape) []*ggml.Graph {
	if t.Plan.Recompute {
		r, err := t.graphs.getRecompute(sh)
		if err != nil {
			return nil
		}
		var out []*ggml.Graph
		for _, p := range r.parts {
			out = append(out, p.g)
		}
		return out
	}
	g, err := t.Graph(sh)
	if err != nil {
		return nil
	}
	return []*ggml.Graph{g.g}
}

// AccumulateAs is Accumulate with another objective than the trainer's (a benchmark
// timing ce beside cal).
func (t *Trainer) AccumulateAs(b *Batch, obj cal.Objective, dropSeed uint64) (Micro, error) {
	sh := t.Shape(b, obj, true)
	if t.Plan.Recompute {
		r, err := t.graphs.getRecompute(sh)
		if err != nil {
			return Micro{}, err
		}
		r.dropSeed = dropSeed
		l, err := r.run(b.Seqs, b.Rows, b.Targets)
		if err != nil {
			return Micro{}, err
		}
		return Micro{Loss: l, Weights: r.Loss.Weight.F32()[:len(b.Targets)]}, nil
	}
	g, err := t.Graph(sh)
	if err != nil {
		return Micro{}, err
	}
	g.SetDropoutSeed(dropSeed)
	l, err := g.Run(b.Seqs, b.Rows, b.Targets)
	if err != nil {
		return Micro{}, err
	}
	return Micro{Loss: l, Weights: g.Loss.Weight.F32()[:len(b.Targets)]}, nil
}

// PartTimes are the node times of one graph of a profiled recomputing step.
type PartTimes struct {
	Part  string // forward, top, kept blocks, block N
	Times []ggml.NodeTime
}

// ProfileRecomputed runs one recomputing step of b node by node, its gradients added as
// Accumulate's are, and returns each graph's node times.
func (t *Trainer) ProfileRecomputed(b *Batch, obj cal.Objective) ([]PartTimes, error) {
	if !t.Plan.Recompute {
		return nil, fmt.Errorf("the trainer does not recompute")
	}
	r, err := t.graphs.getRecompute(t.Shape(b, obj, true))
	if err != nil {
		return nil, err
	}
	var out []PartTimes
	_, err = r.runWith(b.Seqs, b.Rows, b.Targets, func(p *recomputePart) error {
		times, err := t.Backend.ComputeProfiled(p.g)
		out = append(out, PartTimes{p.name, times})
		return err
	})
	return out, err
}

// Update applies one AdamW step with the accumulated gradients of nMicro micro-batches,
// their global norm clipped to clip (≤ 0: no clipping). It returns the norm before
// clipping, and an error without updating when it is not finite.
func (t *Trainer) Update(h AdamW, nMicro int, clip float64) (float64, error) {
	return t.Opt.Update(h, nMicro, clip)
}

// CrossEntropy is the cross-entropy of each scored row of a batch, with the adapter as
// it is and no gradient: the validation measure, the same for either objective.
func (t *Trainer) CrossEntropy(b *Batch) ([]float32, error) {
	if len(b.Rows) == 0 {
		return nil, nil
	}
	g, err := t.Graph(t.Shape(b, cal.CE, false))
	if err != nil {
		return nil, err
	}
	if _, err := g.Run(b.Seqs, b.Rows, b.Targets); err != nil {
		return nil, err
	}
	return g.Loss.CE.F32()[:len(b.Targets)], nil
}

// String says which weight copies the trainer keeps and their memory, and whether it
// recomputes.
func (t *Trainer) String() string {
	rc := ""
	if t.Plan.Recompute {
		rc = "; blocks recomputed for the backward pass"
		if t.Plan.Kept > 0 {
			rc = fmt.Sprintf("; blocks recomputed for the backward pass but the top %d", t.Plan.Kept)
		}
		if t.Plan.Products > 0 {
			rc += fmt.Sprintf(", %d of them from their stored frozen products", t.Plan.Products)
		}
	}
	return fmt.Sprintf("%s; LoRA rank %d on %d matrices (%d parameters)%s", t.Fast, t.Adapter.Rank, len(t.Adapter.Pairs), t.Adapter.NumParams(), rc)
}
