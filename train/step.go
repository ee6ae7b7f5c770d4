package train

import (
	"fmt"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
)

// Shape is what a step graph is built for: rows in the packed batch, scored rows, the
// objective, and whether it has a backward pass.
type Shape struct {
	Rows     int
	Scored   int
	Obj      cal.Objective
	Backward bool
	// Hidden is the number of rows (padded) CAL's image-absent pass recomputes: the text
	// rows after an image. 0 runs that pass over every row instead (simpler, slower).
	Hidden int
	// Kept is the number of rows (padded) of the full pass whose keys and values that
	// pass reads (see llava.Batch.KeptRows); 0 reads all rows.
	Kept int
}

// HiddenFor is the Hidden size of a batch: its text rows after an image, rounded up so
// that similar batches share a graph (0 when it has no image).
func HiddenFor(b *llava.Batch) int {
	n := len(b.HiddenRows())
	if n == 0 {
		return 0
	}
	return roundUp(n, scoredBucket)
}

// KeptFor is the Kept size of a batch, padded like HiddenFor (0 when it has no image).
func KeptFor(b *llava.Batch) int {
	if len(b.HiddenRows()) == 0 {
		return 0
	}
	return roundUp(max(len(b.KeptRows()), 1), scoredBucket)
}

// StepGraph is one built graph: forward pass(es), the loss and, for training, the
// backward pass that adds LoRA gradients into the optimiser's accumulators.
type StepGraph struct {
	Shape Shape
	Loss  cal.Loss
	// Rewritten is how many nodes ggml.Graph.RewriteOutProds replaced.
	Rewritten int
	// Phases are node-index boundaries: [0, Phases[0]) the decoder's forward pass(es),
	// [Phases[0], Phases[1]) the loss, [Phases[1], NNodes) the backward pass.
	Phases [2]int

	hp    arch.HParams
	be    *ggml.Backend
	ctx   *ggml.Context
	g     *ggml.Graph
	in    *llava.Inputs
	pair  *llava.PairInputs // CAL's shared image-absent pass, when Shape.Hidden > 0
	li    *cal.LossInputs
	det   *cal.Detacher
	alloc *ggml.Allocator
	drops []ggml.Tensor // LoRA dropout row choices, set per step

	logits, noImg ggml.Tensor // the passes' outputs (noImg: zero Tensor for ce)
}

// NewStepGraph builds and allocates the graph of a shape. opt is needed for Backward.
func NewStepGraph(be *ggml.Backend, dec *llava.Decoder, opt *Optimizer, sh Shape, co cal.Options) (*StepGraph, error) {
	if sh.Rows <= 0 || sh.Scored <= 0 {
		return nil, fmt.Errorf("a step needs rows and scored rows, got %d and %d", sh.Rows, sh.Scored)
	}
	size := 2 * llava.GraphSize(dec.HP.NLayer)
	s := &StepGraph{Shape: sh, hp: dec.HP, be: be}
	s.ctx = ggml.NewContext(3*size*ggml.TensorOverhead()+ggml.GraphOverhead(size, sh.Backward), true)
	s.g = s.ctx.NewGraph(size, sh.Backward)
	s.det = cal.NewDetacher(16)
	cleanup := func() {
		s.det.Close()
		s.ctx.Close()
	}
	calPass := sh.Obj == cal.CAL
	train := *dec
	train.Train = sh.Backward
	dec = &train
	s.in = llava.NewInputs(s.ctx, dec.HP, sh.Rows, sh.Scored, calPass && sh.Hidden == 0)
	s.li = cal.NewLossInputs(s.ctx, sh.Scored, co)
	var logits, noImg, imgTarget ggml.Tensor
	switch {
	case calPass && sh.Hidden > 0:
		s.pair = llava.NewPairInputs(s.ctx, s.in, sh.Hidden, sh.Kept)
		logits, imgTarget, noImg = dec.ForwardPair(s.ctx, s.in, s.pair)
	case calPass:
		// The image-absent pass goes first so that its detached Δ is ready for the loss.
		noImg = dec.Forward(s.ctx, s.in, true)
		logits = dec.Forward(s.ctx, s.in, false)
	default:
		logits = dec.Forward(s.ctx, s.in, false)
	}
	s.logits, s.noImg = logits, noImg
	if calPass {
		s.g.Expand(noImg)
	}
	s.g.Expand(logits)
	s.Phases[0] = s.g.NNodes()
	if ad, ok := dec.Adapter.(interface{ TakeDropoutInputs() []ggml.Tensor }); ok {
		s.drops = ad.TakeDropoutInputs()
	}
	s.Loss = cal.Build(s.ctx, s.g, s.det, sh.Obj, logits, noImg, imgTarget, s.li)
	s.Phases[1] = s.g.NNodes()
	if sh.Backward {
		if opt == nil {
			cleanup()
			return nil, fmt.Errorf("a backward step graph needs the optimizer's accumulators")
		}
		s.g.BuildBackwardInto(s.ctx, opt.Accs)
		avoidInplaceRMSNormBack(s.g)
		// The loss's seed gradient is set from the host before each compute: as an input it
		// gets memory of its own, which no earlier node of the graph can overwrite.
		s.g.GradAcc(s.Loss.Value).SetInput()
	}
	if err := s.rewrite(be, dec); err != nil {
		cleanup()
		return nil, err
	}
	if err := s.det.Alloc(be); err != nil {
		cleanup()
		return nil, err
	}
	s.alloc = be.NewAllocator()
	if err := s.alloc.Alloc(s.g); err != nil {
		s.alloc.Close()
		cleanup()
		return nil, fmt.Errorf("the training step of %d rows: %w", sh.Rows, err)
	}
	return s, nil
}

// rewrite runs ggml.Graph.RewriteOutProds over the built graph, keeping each node's
// phase (an inserted node takes its reader's), and checks that no backward product
// through a frozen weight with a transposed copy was left to out_prod.
func (s *StepGraph) rewrite(be *ggml.Backend, dec *llava.Decoder) error {
	var transposed map[ggml.Tensor]ggml.Tensor
	if dec.Transposed != nil {
		transposed = dec.Transposed.Of
	}
	phase := map[ggml.Tensor]int{}
	for i := 0; i < s.g.NNodes(); i++ {
		phase[s.g.Node(i)] = 0
		if i >= s.Phases[1] {
			phase[s.g.Node(i)] = 2
		} else if i >= s.Phases[0] {
			phase[s.g.Node(i)] = 1
		}
	}
	s.Rewritten = s.g.RewriteOutProds(s.ctx, transposed, be.IsCPU())
	if left := FrozenOutProds(s.g, transposed); s.Shape.Backward && left > 0 {
		return fmt.Errorf("%d backward products through frozen weights were left to out_prod although transposed copies exist (a rewrite that no longer matches ggml's autodiff)", left)
	}
	n := s.g.NNodes()
	s.Phases = [2]int{n, n}
	cur := 2
	for i := n - 1; i >= 0; i-- {
		if p, ok := phase[s.g.Node(i)]; ok {
			cur = p
		}
		if cur >= 1 {
			s.Phases[0] = i
		}
		if cur >= 2 {
			s.Phases[1] = i
		}
	}
	return nil
}

// FrozenOutProds counts the OUT_PROD nodes of g that read a frozen weight which has a
// transposed copy: after the rewrite there must be none.
func FrozenOutProds(g *ggml.Graph, transposed map[ggml.Tensor]ggml.Tensor) int {
	n := 0
	for i := 0; i < g.NNodes(); i++ {
		node := g.Node(i)
		if node.Op() != "OUT_PROD" {
			continue
		}
		for j := 0; j < 2; j++ {
			if _, ok := transposed[node.Src(j)]; ok {
				n++
				break
			}
		}
	}
	return n
}

// ImageAbsentNodes are the nodes of CAL's image-absent pass: those its output depends
// on that the full pass's logits do not (for profiling; empty for ce).
func (s *StepGraph) ImageAbsentNodes() map[ggml.Tensor]bool {
	out := map[ggml.Tensor]bool{}
	if s.noImg.Nil() {
		return out
	}
	full := map[ggml.Tensor]bool{}
	var walk func(t ggml.Tensor, set map[ggml.Tensor]bool)
	walk = func(t ggml.Tensor, set map[ggml.Tensor]bool) {
		if t.Nil() || set[t] || full[t] {
			return
		}
		set[t] = true
		for i := 0; i < ggml.MaxSrc; i++ {
			walk(t.Src(i), set)
		}
	}
	walk(s.logits, full)
	walk(s.noImg, out)
	return out
}

// Graph is the built graph (for profiling).
func (s *StepGraph) Graph() *ggml.Graph { return s.g }

// Close frees the graph.
func (s *StepGraph) Close() {
	s.alloc.Close()
	s.det.Close()
	s.ctx.Close()
}

// Run sets the inputs and computes the graph: the loss and, for a backward graph, the
// gradients added into the accumulators. outRows are the packed rows whose logits are
// scored and targets their target tokens (at most Shape.Scored; the rest is padding).
func (s *StepGraph) Run(b *llava.Batch, outRows []int32, targets []cal.Target) (float64, error) {
	if err := s.SetInputs(b, outRows, targets); err != nil {
		return 0, err
	}
	if err := s.be.Compute(s.g); err != nil {
		return 0, err
	}
	return float64(s.Loss.Value.F32()[0]), nil
}

// SetDropoutSeed draws the LoRA dropout masks of the next compute from seed.
func (s *StepGraph) SetDropoutSeed(seed uint64) { lora.SetDropoutRows(s.drops, seed) }

// SetInputs sets the graph's inputs for a batch without computing (Run does both).
func (s *StepGraph) SetInputs(b *llava.Batch, outRows []int32, targets []cal.Target) error {
	if len(outRows) != len(targets) || len(targets) > s.Shape.Scored {
		return fmt.Errorf("%d scored rows and %d targets for a graph of %d scored rows", len(outRows), len(targets), s.Shape.Scored)
	}
	rows := make([]int32, s.Shape.Scored)
	copy(rows, outRows)
	if err := s.in.Set(s.hp, b, rows); err != nil {
		return err
	}
	if s.pair != nil {
		toks := make([]int32, len(targets))
		for i, t := range targets {
			toks[i] = t.Token
		}
		if err := s.pair.Set(b, rows, toks); err != nil {
			return err
		}
	}
	if err := s.li.Set(s.hp.NVocab, targets); err != nil {
		return err
	}
	if s.Shape.Backward {
		// Only the loss's seed gradient is set; the LoRA accumulators keep adding up
		// over micro-batches until the optimiser zeroes them.
		s.g.GradAcc(s.Loss.Value).SetF32([]float32{1})
	}
	return nil
}

// avoidInplaceRMSNormBack works around a ggml CPU bug: the graph allocator may run
// RMS_NORM_BACK in place over one of its inputs, but the kernel writes dx (starting with
// a copy of x) before it has read the incoming gradient, so the result is wrong and every
// LoRA gradient below that norm with it. Marking both inputs as outputs keeps their memory
// from being reused in place; it costs two [n_embd, T] tensors per norm.
func avoidInplaceRMSNormBack(g *ggml.Graph) {
	for i := 0; i < g.NNodes(); i++ {
		if n := g.Node(i); n.Op() == "RMS_NORM_BACK" {
			n.Src(0).SetOutput()
			n.Src(1).SetOutput()
		}
	}
}
