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
	// LossBlock is how many scored rows the loss takes at a time (0: as many as keep
	// one block's logits within cal.BlockElements).
	LossBlock int
	// Probs reads back each scored row's log-sum-exp and argmax, and with Hidden 0 the
	// image-absent pass's log-sum-exp too (cal.LossInputs.Probs; for calft audit).
	Probs bool
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
// backward pass that adds LoRA gradients into the optimiser's accumulators. Its
// intermediate values live in a compute buffer it shares with every other graph of the
// run (see Allocator), so a run's memory is its largest graph's, not the sum.
type StepGraph struct {
	Shape Shape
	Loss  cal.Loss
	// Rewritten is how many nodes ggml.Graph.RewriteOutProds replaced.
	Rewritten int
	// Phases are node-index boundaries: [0, Phases[0]) the decoder's forward pass(es),
	// [Phases[0], Phases[1]) the loss, [Phases[1], NNodes) the backward pass.
	Phases [2]int

	hp       arch.HParams
	be       *ggml.Backend
	ctx      *ggml.Context
	g        *ggml.Graph
	in       *llava.Inputs
	pair     *llava.PairInputs // CAL's shared image-absent pass, when Shape.Hidden > 0
	li       *cal.LossInputs
	det      *cal.Detacher
	alloc    *Allocator
	drops    []ggml.Tensor // LoRA dropout row choices, set per step
	dropSeed uint64

	h, zNoImg ggml.Tensor // the passes' outputs (zNoImg: zero Tensor for ce)
}

// Allocator is the compute buffer every graph of a run shares: each graph is placed in
// it before it computes, and it grows to the largest graph's size once.
type Allocator struct {
	al      *ggml.Allocator
	current *ggml.Graph
}

// NewAllocator makes an empty shared compute buffer on be.
func NewAllocator(be *ggml.Backend) *Allocator { return &Allocator{al: be.NewAllocator()} }

// place allocates g's intermediate values unless g is the graph placed last.
func (a *Allocator) place(g *ggml.Graph) error {
	if a.current == g {
		return nil
	}
	a.current = nil
	if err := a.al.Place(g); err != nil {
		return err
	}
	a.current = g
	return nil
}

// Measure is the compute buffer a graph needs, without allocating it.
func (a *Allocator) Measure(g *ggml.Graph) int { return a.al.Measure(g) }

// Size is the buffer's size now.
func (a *Allocator) Size() int { return a.al.Size() }

// Close frees the buffer.
func (a *Allocator) Close() { a.al.Close() }

// NewStepGraph builds the graph of a shape, placed in al's buffer before each compute.
// opt is needed for Backward.
func NewStepGraph(be *ggml.Backend, dec *llava.Decoder, opt *Optimizer, sh Shape, co cal.Options, al *Allocator) (*StepGraph, error) {
	if sh.Rows <= 0 || sh.Scored <= 0 {
		return nil, fmt.Errorf("a step needs rows and scored rows, got %d and %d", sh.Rows, sh.Scored)
	}
	if sh.Backward && opt == nil {
		return nil, fmt.Errorf("a backward step graph needs the optimizer's accumulators")
	}
	size := 2*llava.GraphSize(dec.HP.NLayer) + 64*(sh.Scored/cal.BlockRows(dec.HP.NVocab, sh.Scored)+1)
	s := &StepGraph{Shape: sh, hp: dec.HP, be: be, alloc: al}
	s.ctx = ggml.NewContext(4*size*ggml.TensorOverhead()+ggml.GraphOverhead(size, sh.Backward), true)
	s.g = s.ctx.NewGraph(size, sh.Backward)
	s.det = cal.NewDetacher(16)
	train := *dec
	train.Train = sh.Backward
	s.build(&train, co)
	if sh.Backward {
		s.g.BuildBackwardInto(s.ctx, opt.Accs)
		avoidInplaceRMSNormBack(s.g)
		// The seed's gradient is set from the host before each compute: as an input it
		// gets memory of its own, which no earlier node of the graph can overwrite.
		s.g.GradAcc(s.Loss.Seed).SetInput()
	}
	if err := s.rewrite(be, &train); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.det.Alloc(be); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// build adds the forward pass(es) and the loss to the graph.
func (s *StepGraph) build(dec *llava.Decoder, co cal.Options) {
	sh := s.Shape
	calPass := sh.Obj == cal.CAL
	s.in = llava.NewInputs(s.ctx, dec.HP, sh.Rows, sh.Scored, calPass && sh.Hidden == 0)
	s.li = cal.NewLossInputs(s.ctx, sh.Scored, dec.HP.NVocab, sh.LossBlock, co)
	s.li.Probs = sh.Probs
	var p cal.Passes
	switch {
	case calPass && sh.Hidden > 0:
		s.pair = llava.NewPairInputs(s.ctx, s.in, sh.Hidden, sh.Kept)
		p.H, p.ZImg, p.ZNoImg = dec.ForwardPair(s.ctx, s.in, s.pair, s.li.Targets)
	case calPass:
		hNo := dec.Forward(s.ctx, s.in, true)
		p.H = dec.Forward(s.ctx, s.in, false)
		p.ZImg, p.ZNoImg = dec.TargetLogits(s.ctx, p.H, s.li.Targets), dec.TargetLogits(s.ctx, hNo, s.li.Targets)
		if sh.Probs {
			p.HNoImg = hNo
		}
	default:
		p.H = dec.Forward(s.ctx, s.in, false)
	}
	s.h, s.zNoImg = p.H, p.ZNoImg
	if calPass {
		s.g.Expand(p.ZNoImg)
		s.g.Expand(p.ZImg)
	}
	s.g.Expand(p.H)
	s.Phases[0] = s.g.NNodes()
	if ad, ok := dec.Adapter.(interface{ TakeDropoutInputs() []ggml.Tensor }); ok {
		s.drops = ad.TakeDropoutInputs()
	}
	s.Loss = cal.Build(s.ctx, s.g, s.det, sh.Obj, dec.Head(), p, s.li, sh.Backward)
	s.Phases[1] = s.g.NNodes()
}

// rewrite runs ggml.Graph.RewriteOutProds over the built graph, keeping each node's
// phase (an inserted node takes its reader's), and checks that no backward product
// through a frozen weight with a transposed copy was left to out_prod.
func (s *StepGraph) rewrite(be *ggml.Backend, dec *llava.Decoder) error {
	fp := frozenProducts(dec)
	phase := map[ggml.Tensor]int{}
	for i := 0; i < s.g.NNodes(); i++ {
		phase[s.g.Node(i)] = 0
		if i >= s.Phases[1] {
			phase[s.g.Node(i)] = 2
		} else if i >= s.Phases[0] {
			phase[s.g.Node(i)] = 1
		}
	}
	s.Rewritten = s.g.RewriteOutProds(s.ctx, fp, be.IsCPU())
	if left := FrozenOutProds(s.g, fp); s.Shape.Backward && left > 0 {
		return fmt.Errorf("%d backward products through frozen weights were left to out_prod (a rewrite that no longer matches ggml's autodiff)", left)
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

// frozenProducts is how the decoder's backward pass multiplies with its frozen
// matrices: those with a transposed copy through it, every other one tiled — unless the
// decoder keeps ggml's autodiff products (TileType 0 and no copies).
func frozenProducts(dec *llava.Decoder) ggml.FrozenProducts {
	fp := ggml.FrozenProducts{Transposed: map[ggml.Tensor]ggml.Tensor{}, Tiled: map[ggml.Tensor]bool{}, TileType: dec.TileType,
		Forward: forwardBF16(dec)}
	if dec.Transposed != nil {
		fp.Transposed = dec.Transposed.Of
	}
	if dec.TileType == 0 {
		return fp
	}
	for _, m := range dec.W.Matrices() {
		if _, ok := fp.Transposed[*m.T]; !ok {
			fp.Tiled[*m.T] = true
		}
	}
	return fp
}

// maxForwardBF16 is the most elements of a frozen matrix the forward products
// dequantize whole (256 MB in BF16): a 7B model's vocabulary, not a 128k one.
const maxForwardBF16 = 1 << 27

// forwardBF16 are the frozen matrices whose forward products run in BF16 on the CPU
// (see llava.Decoder.ForwardBF16): the quantized and F16 ones of at most maxForwardBF16
// elements.
func forwardBF16(dec *llava.Decoder) map[ggml.Tensor]bool {
	if !dec.CPU || !dec.ForwardBF16 {
		return nil
	}
	out := map[ggml.Tensor]bool{}
	for _, m := range dec.W.Matrices() {
		if t := m.T.Type(); t != ggml.TypeF32 && t != ggml.TypeBF16 && m.T.NElements() <= maxForwardBF16 {
			out[*m.T] = true
		}
	}
	return out
}

// FrozenOutProds counts the OUT_PROD nodes of g that read a frozen weight which has a
// transposed copy or is tiled: after the rewrite there must be none.
func FrozenOutProds(g *ggml.Graph, fp ggml.FrozenProducts) int {
	n := 0
	for i := 0; i < g.NNodes(); i++ {
		node := g.Node(i)
		if node.Op() != "OUT_PROD" {
			continue
		}
		for j := 0; j < 2; j++ {
			_, copied := fp.Transposed[node.Src(j)]
			if copied || fp.Tiled[node.Src(j)] {
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
	if s.zNoImg.Nil() {
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
	walk(s.h, full)
	walk(s.zNoImg, out)
	return out
}

// Graph is the built graph (for profiling).
func (s *StepGraph) Graph() *ggml.Graph { return s.g }

// Close frees the graph (not the shared compute buffer).
func (s *StepGraph) Close() {
	if s.alloc != nil && s.alloc.current == s.g {
		s.alloc.current = nil
	}
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

// SetDropoutSeed chooses the seed the LoRA dropout masks of the next compute are drawn
// from.
func (s *StepGraph) SetDropoutSeed(seed uint64) { s.dropSeed = seed }

// SetInputs places the graph in the shared compute buffer and sets its inputs for a
// batch, without computing (Run does both).
func (s *StepGraph) SetInputs(b *llava.Batch, outRows []int32, targets []cal.Target) error {
	if len(outRows) != len(targets) || len(targets) > s.Shape.Scored {
		return fmt.Errorf("%d scored rows and %d targets for a graph of %d scored rows", len(outRows), len(targets), s.Shape.Scored)
	}
	if err := s.alloc.place(s.g); err != nil {
		return fmt.Errorf("the step of %d rows: %w", s.Shape.Rows, err)
	}
	lora.SetDropoutRows(s.drops, s.dropSeed)
	rows := make([]int32, s.Shape.Scored)
	copy(rows, outRows)
	if err := s.in.Set(s.hp, b, rows); err != nil {
		return err
	}
	if s.pair != nil {
		if err := s.pair.Set(b, rows); err != nil {
			return err
		}
	}
	if err := s.li.Set(s.hp.NVocab, targets); err != nil {
		return err
	}
	if s.Shape.Backward {
		// Only the loss's seed gradient is set; the LoRA accumulators keep adding up
		// over micro-batches until the optimiser zeroes them.
		s.g.GradAcc(s.Loss.Seed).SetF32([]float32{1})
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
