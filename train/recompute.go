package train

import (
	"fmt"
	"sort"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
)

// recompute is the step of one shape with activation recomputation. A single graph
// keeps every block's activations alive from the forward pass until the backward pass
// reads them; here the forward pass keeps only each block's input (a checkpoint), and
// the backward pass rebuilds one block at a time from its checkpoint and differentiates
// it alone, seeded with the gradient of the block's output that the block above passed
// down. Memory holds the checkpoints and one block's working set; the forward pass runs
// twice.
//
// The graphs of a micro-batch, in order:
//   - forward: the whole forward pass without gradients (CAL's image-absent pass
//     included), the checkpoints, the loss and its gradient of the final hidden states;
//   - top: the output norm from the last checkpoint, differentiated: the gradient of
//     the last block's output;
//   - one per block, from the last to the first: the block from its checkpoint,
//     differentiated, adding its LoRA gradients and passing its input's gradient down.
//
// With keep > 0 the top keep blocks are not recomputed: the forward graph stops below
// them, and in place of top one differentiated graph runs them from their checkpoint
// with the loss, as the single graph would (their activations alive together). The
// extra forward then covers the lower blocks only: faster, for the memory of keep
// blocks' activations.
//
// With products > 0 the lowest products blocks also keep the frozen products W·x that
// their rebuilt graph reads (the forward graph stores them; the block's graph copies
// them back in place of the product, see ggml.Graph.ReadStored): most of a block's
// second forward pass is those products, and their outputs are a fraction of its
// activations.
type recompute struct {
	Shape Shape
	Loss  cal.Loss

	hp    arch.HParams
	be    *ggml.Backend
	alloc *Allocator
	// state holds what lives across the graphs: the inputs, the checkpoints and the
	// gradients passed between blocks.
	state    *ggml.Context
	stateBuf *ggml.Buffer
	in       *llava.Inputs
	pair     *llava.PairInputs
	li       *cal.LossInputs
	keep     int // top blocks not recomputed
	products int // the lowest blocks whose frozen products are stored
	stored   map[productKey]ggml.Tensor
	ck       []ggml.Tensor    // block inputs [n_embd, T] of blocks 0 … NLayer−keep (the last: an output)
	ckHidden ggml.Tensor      // with keep > 0 and the CAL pair: the image-absent rows at block NLayer−keep
	zNoImg   ggml.Tensor      // with keep > 0 and CAL's two full passes: the image-absent target logits
	dy       [2]ggml.Tensor   // gradients passed down, used in turn
	det      *cal.Detacher    // the loss's read-back values and its gradient of H
	parts    []*recomputePart // forward, top, then blocks NLayer−1 … 0
	dropSeed uint64
}

// retention is what a recomputing step keeps beyond each block's input: the top Whole
// blocks' activations entire (those blocks are not recomputed), and the frozen products
// of the lowest Products of the recomputed blocks.
type retention struct{ Whole, Products int }

// productKey names a frozen product of the full pass: block il's product through w.
type productKey struct {
	il int
	w  string
}

// recomputePart is one graph of a recomputing step.
type recomputePart struct {
	name  string // forward, top, kept blocks, block N (for profiles)
	ctx   *ggml.Context
	g     *ggml.Graph
	drops []ggml.Tensor
	seed  ggml.Tensor // the scalar autodiff starts from (zero Tensor: no backward)
}

func (p *recomputePart) close() { p.ctx.Close() }

// differentiate adds the backward pass from the part's seed, its LoRA gradients added
// into accs (nil: none), the seed's gradient set from the host before each compute.
func (p *recomputePart) differentiate(accs map[ggml.Tensor]ggml.Tensor) {
	p.g.BuildBackwardInto(p.ctx, accs)
	avoidInplaceRMSNormBack(p.g)
	p.g.GradAcc(p.seed).SetInput()
}

// rewriteFrozen sends the part's products through frozen weights to calft's kernels and
// copies (see StepGraph.rewrite); none may be left to out_prod.
func (p *recomputePart) rewriteFrozen(dec *llava.Decoder, cpu bool) error {
	fp := frozenProducts(dec)
	p.g.RewriteOutProds(p.ctx, fp, cpu)
	if left := FrozenOutProds(p.g, fp); left > 0 {
		return fmt.Errorf("%d backward products through frozen weights were left to out_prod", left)
	}
	return nil
}

// newRecompute builds the graphs of a shape (which must have Backward).
func newRecompute(be *ggml.Backend, dec *llava.Decoder, opt *Optimizer, sh Shape, co cal.Options, al *Allocator, rt retention) (*recompute, error) {
	return buildRecompute(be, dec, opt, sh, co, al, rt, false)
}

// newRecomputeMeasured builds the graphs without allocating what lives across them:
// enough to measure their compute buffers.
func newRecomputeMeasured(be *ggml.Backend, dec *llava.Decoder, opt *Optimizer, sh Shape, co cal.Options, al *Allocator, rt retention) (*recompute, error) {
	return buildRecompute(be, dec, opt, sh, co, al, rt, true)
}

func buildRecompute(be *ggml.Backend, dec *llava.Decoder, opt *Optimizer, sh Shape, co cal.Options, al *Allocator, rt retention, measure bool) (*recompute, error) {
	if sh.Rows <= 0 || sh.Scored <= 0 || !sh.Backward || opt == nil {
		return nil, fmt.Errorf("a recomputing step needs rows, scored rows and the optimizer (got %d, %d)", sh.Rows, sh.Scored)
	}
	keep := rt.Whole
	if keep < 0 || keep >= dec.HP.NLayer || rt.Products < 0 {
		return nil, fmt.Errorf("a recomputing step keeps 0 to %d of its %d blocks whole and stores the products of 0 or more, not %d and %d", dec.HP.NLayer-1, dec.HP.NLayer, keep, rt.Products)
	}
	r := &recompute{Shape: sh, hp: dec.HP, be: be, alloc: al, keep: keep, products: min(rt.Products, dec.HP.NLayer-keep),
		stored: map[productKey]ggml.Tensor{}, det: cal.NewDetacher(16)}
	if err := r.build(dec, opt, co, measure); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// build declares the state, builds the graphs and, unless measure, allocates the state.
// The blocks' graphs are built first: the frozen products they read back decide what
// the forward graph stores.
func (r *recompute) build(dec *llava.Decoder, opt *Optimizer, co cal.Options, measure bool) error {
	r.buildState(dec, co)
	train := *dec
	train.Train = true
	var blocks []*recomputePart
	for il := r.top() - 1; il >= 0; il-- {
		p, err := r.buildBlock(&train, opt, il)
		if p != nil {
			blocks = append(blocks, p)
		}
		if err != nil {
			r.parts = blocks
			return err
		}
	}
	err := r.buildForward(&train)
	train.Checkpoint, train.Product = nil, nil
	if err == nil && r.keep == 0 {
		r.parts = append(r.parts, r.buildTop(&train))
	} else if err == nil {
		var p *recomputePart
		p, err = r.buildUpper(&train, opt)
		if p != nil {
			r.parts = append(r.parts, p)
		}
	}
	r.parts = append(r.parts, blocks...)
	if err != nil {
		return err
	}
	if measure {
		// The graphs are measured without the state, which has memory of its own.
		r.stateBuf, err = r.be.MarkTensors(r.state)
		return err
	}
	if r.stateBuf, err = r.be.AllocTensors(r.state); err != nil {
		return fmt.Errorf("the checkpoints of a step of %d rows: %w", r.Shape.Rows, err)
	}
	return r.det.Alloc(r.be)
}

// buildState declares the tensors that live across the graphs (build allocates them).
func (r *recompute) buildState(dec *llava.Decoder, co cal.Options) {
	sh, hp := r.Shape, dec.HP
	r.state = ggml.NewContext((9*hp.NLayer+32)*ggml.TensorOverhead(), true)
	calPass := sh.Obj == cal.CAL
	r.in = llava.NewInputs(r.state, hp, sh.Rows, sh.Scored, calPass && sh.Hidden == 0)
	if calPass && sh.Hidden > 0 {
		r.pair = llava.NewPairInputs(r.state, r.in, sh.Hidden, sh.Kept)
	}
	r.li = cal.NewLossInputs(r.state, sh.Scored, hp.NVocab, sh.LossBlock, co)
	for il := 0; il <= r.top(); il++ {
		r.ck = append(r.ck, r.state.NewTensor(ggml.TypeF32, hp.NEmbd, sh.Rows).SetName(fmt.Sprintf("checkpoint %d", il)))
	}
	switch {
	case r.keep > 0 && r.pair != nil:
		r.ckHidden = r.state.NewTensor(ggml.TypeF32, hp.NEmbd, sh.Hidden).SetName("checkpoint image-absent rows")
	case r.keep > 0 && calPass:
		r.zNoImg = r.state.NewTensor(ggml.TypeF32, 1, sh.Scored).SetName("image-absent target logits")
	}
	r.dy[0] = r.state.NewTensor(ggml.TypeF32, hp.NEmbd, sh.Rows).SetName("block output gradient a")
	r.dy[1] = r.state.NewTensor(ggml.TypeF32, hp.NEmbd, sh.Rows).SetName("block output gradient b")
}

// storedBytes is the memory of the stored frozen products.
func (r *recompute) storedBytes() int64 {
	var n int64
	for _, t := range r.stored {
		n += int64(t.NBytes())
	}
	return n
}

// newPart makes an empty graph, with gradients or not.
func (r *recompute) newPart(name string, size int, grads bool) *recomputePart {
	ctx := ggml.NewContext(4*size*ggml.TensorOverhead()+ggml.GraphOverhead(size, grads), true)
	return &recomputePart{name: name, ctx: ctx, g: ctx.NewGraph(size, grads)}
}

// top is the first block not recomputed (NLayer without keep).
func (r *recompute) top() int { return r.hp.NLayer - r.keep }

// buildForward is the forward graph: the passes, the checkpoints and the loss — or,
// with keep > 0, the passes up to the kept blocks.
func (r *recompute) buildForward(dec *llava.Decoder) error {
	sh := r.Shape
	size := 2*llava.GraphSize(dec.HP.NLayer) + 64*(sh.Scored/r.li.Block+1)
	p := r.newPart("forward", size, false)
	r.parts = append(r.parts, p)
	ctx := p.ctx
	dec.Checkpoint = func(c *ggml.Context, il int, x ggml.Tensor) { p.g.Expand(c.Cpy(x, r.ck[il])) }
	dec.Product = func(c *ggml.Context, il int, w, y ggml.Tensor) {
		if t, ok := r.stored[productKey{il, w.Name()}]; ok {
			p.g.Expand(c.Cpy(y, t))
		}
	}
	if r.keep > 0 {
		r.buildLower(dec, p)
	} else {
		var pass cal.Passes
		switch {
		case r.pair != nil:
			pass.H, pass.ZImg, pass.ZNoImg = dec.ForwardPair(ctx, r.in, r.pair, r.li.Targets)
		case sh.Obj == cal.CAL:
			hNo := dec.Forward(ctx, r.in, true) // the image-absent stream keeps no checkpoints
			pass.H = dec.Forward(ctx, r.in, false)
			pass.ZImg, pass.ZNoImg = dec.TargetLogits(ctx, pass.H, r.li.Targets), dec.TargetLogits(ctx, hNo, r.li.Targets)
		default:
			pass.H = dec.Forward(ctx, r.in, false)
		}
		expandPasses(p.g, pass)
		p.drops = takeDrops(dec)
		r.Loss = cal.Build(ctx, p.g, r.det, sh.Obj, dec.Head(), pass, r.li, true)
	}
	// Forward only, but the forward rewrites (LoRA's small-rank kernel, BF16 products)
	// still apply.
	p.g.RewriteOutProds(ctx, ggml.FrozenProducts{Forward: forwardBF16(dec)}, r.be.IsCPU())
	return nil
}

// expandPasses adds the passes' results to g, CAL's target logits first.
func expandPasses(g *ggml.Graph, pass cal.Passes) {
	if !pass.ZNoImg.Nil() {
		g.Expand(pass.ZNoImg)
		g.Expand(pass.ZImg)
	}
	g.Expand(pass.H)
}

// buildLower adds to p the passes below the kept blocks: the checkpoints, and what the
// kept blocks' graph needs of CAL's image-absent pass.
func (r *recompute) buildLower(dec *llava.Decoder, p *recomputePart) {
	ctx := p.ctx
	switch {
	case r.pair != nil:
		_, xh := dec.Lower(ctx, r.in, r.pair, r.top())
		p.g.Expand(ctx.Cpy(xh, r.ckHidden))
	case r.Shape.Obj == cal.CAL:
		hNo := dec.Forward(ctx, r.in, true)
		z := dec.TargetLogits(ctx, hNo, r.li.Targets)
		p.g.Expand(ctx.Cpy(ctx.Reshape(ctx.Cont(z), 1, r.Shape.Scored), r.zNoImg))
		dec.Lower(ctx, r.in, nil, r.top())
	default:
		dec.Lower(ctx, r.in, nil, r.top())
	}
	p.drops = takeDrops(dec)
}

// buildUpper is the kept blocks from their checkpoint with the loss, differentiated as
// the single graph is: it adds their LoRA gradients and writes the gradient of the
// input of the block below them.
func (r *recompute) buildUpper(dec *llava.Decoder, opt *Optimizer) (*recomputePart, error) {
	sh := r.Shape
	p := r.newPart("kept blocks", 2*llava.GraphSize(r.keep)+64*(sh.Scored/r.li.Block+1)+2048, true)
	ctx := p.ctx
	x := r.ck[r.top()].SetParam()
	var pass cal.Passes
	switch {
	case r.pair != nil:
		pass.H, pass.ZImg, pass.ZNoImg = dec.Upper(ctx, r.in, r.pair, r.top(), x, r.ckHidden, r.li.Targets)
	case sh.Obj == cal.CAL:
		pass.H, _, _ = dec.Upper(ctx, r.in, nil, r.top(), x, ggml.Tensor{}, r.li.Targets)
		pass.ZImg, pass.ZNoImg = dec.TargetLogits(ctx, pass.H, r.li.Targets), r.zNoImg
	default:
		pass.H, _, _ = dec.Upper(ctx, r.in, nil, r.top(), x, ggml.Tensor{}, r.li.Targets)
	}
	expandPasses(p.g, pass)
	p.drops = takeDrops(dec)
	r.Loss = cal.Build(ctx, p.g, r.det, sh.Obj, dec.Head(), pass, r.li, true)
	p.seed = r.Loss.Seed
	p.differentiate(opt.Accs)
	p.g.Expand(ctx.Cpy(p.g.Grad(x), r.dy[0]))
	if err := p.rewriteFrozen(dec, r.be.IsCPU()); err != nil {
		return nil, fmt.Errorf("the kept blocks: %w", err)
	}
	return p, nil
}

// buildTop is the output norm from the last checkpoint, seeded with the loss's gradient
// of the final hidden states: its backward pass gives the last block's output gradient.
func (r *recompute) buildTop(dec *llava.Decoder) *recomputePart {
	p := r.newPart("top", 1024, true)
	x := r.ck[dec.HP.NLayer].SetParam()
	h := dec.Final(p.ctx, x, r.in)
	p.seed = p.ctx.Sum(p.ctx.Mul(h, r.Loss.DH)).SetLoss()
	p.g.Expand(p.seed)
	p.differentiate(nil)
	p.g.Expand(p.ctx.Cpy(p.g.Grad(x), r.dy[0]))
	return p
}

// buildBlock is block il rebuilt from its checkpoint, seeded with its output's gradient;
// its backward pass adds the block's LoRA gradients and writes its input's gradient for
// the block below.
func (r *recompute) buildBlock(dec *llava.Decoder, opt *Optimizer, il int) (*recomputePart, error) {
	p := r.newPart(fmt.Sprintf("block %d", il), llava.GraphSize(1)+2048, true)
	x := r.ck[il]
	if il > 0 {
		x.SetParam()
	}
	k := r.top() - 1 - il // blocks done before this one
	products := map[string]ggml.Tensor{}
	if il < r.products {
		dec.Product = func(_ *ggml.Context, _ int, w, y ggml.Tensor) { products[w.Name()] = y }
	}
	y := dec.Layer(p.ctx, il, x, r.in)
	dec.Product = nil
	p.drops = takeDrops(dec)
	p.seed = p.ctx.Sum(p.ctx.Mul(y, r.dy[k%2])).SetLoss()
	p.g.Expand(p.seed)
	forward := p.g.Nodes()
	p.differentiate(opt.Accs)
	if il > 0 {
		p.g.Expand(p.ctx.Cpy(p.g.Grad(x), r.dy[(k+1)%2]))
	}
	// The block's output, the seed and the last products before them (the frozen part
	// of the down projection, for one) are values no gradient reads: the second forward
	// pass skips them.
	p.g.DropUnread(forward)
	if err := r.readStored(p, il, products); err != nil {
		return p, err
	}
	if err := p.rewriteFrozen(dec, r.be.IsCPU()); err != nil {
		return p, fmt.Errorf("block %d: %w", il, err)
	}
	return p, nil
}

// readStored declares a stored tensor for each of the block's frozen products that its
// graph still computes and makes the graph read it back.
func (r *recompute) readStored(p *recomputePart, il int, products map[string]ggml.Tensor) error {
	if len(products) == 0 {
		return nil
	}
	in := map[ggml.Tensor]bool{}
	for _, n := range p.g.Nodes() {
		in[n] = true
	}
	names := make([]string, 0, len(products))
	for w := range products {
		names = append(names, w)
	}
	sort.Strings(names) // the state's layout does not depend on map order
	for _, w := range names {
		y := products[w]
		if !in[y] {
			continue // dropped: nothing reads it
		}
		ne := y.Ne()
		t := r.state.NewTensor(y.Type(), ne[0], ne[1], ne[2], ne[3]).SetName("stored " + y.Name())
		r.stored[productKey{il, w}] = t
		if err := p.g.ReadStored(y, t); err != nil {
			return fmt.Errorf("block %d: %w", il, err)
		}
	}
	return nil
}

// takeDrops collects the dropout inputs of the graph just built.
func takeDrops(dec *llava.Decoder) []ggml.Tensor {
	if ad, ok := dec.Adapter.(interface{ TakeDropoutInputs() []ggml.Tensor }); ok {
		return ad.TakeDropoutInputs()
	}
	return nil
}

// run computes one micro-batch: every graph in turn, the gradients added into the
// accumulators. It returns the loss.
func (r *recompute) run(b *llava.Batch, outRows []int32, targets []cal.Target) (float64, error) {
	return r.runWith(b, outRows, targets, func(p *recomputePart) error { return r.be.Compute(p.g) })
}

// runWith is run with each graph computed by compute.
func (r *recompute) runWith(b *llava.Batch, outRows []int32, targets []cal.Target, compute func(p *recomputePart) error) (float64, error) {
	if len(outRows) != len(targets) || len(targets) > r.Shape.Scored {
		return 0, fmt.Errorf("%d scored rows and %d targets for a graph of %d scored rows", len(outRows), len(targets), r.Shape.Scored)
	}
	rows := make([]int32, r.Shape.Scored)
	copy(rows, outRows)
	if err := r.in.Set(r.hp, b, rows); err != nil {
		return 0, err
	}
	if r.pair != nil {
		if err := r.pair.Set(b, rows); err != nil {
			return 0, err
		}
	}
	if err := r.li.Set(r.hp.NVocab, targets); err != nil {
		return 0, err
	}
	for _, p := range r.parts {
		if err := r.alloc.place(p.g); err != nil {
			return 0, fmt.Errorf("the step of %d rows: %w", r.Shape.Rows, err)
		}
		lora.SetDropoutRows(p.drops, r.dropSeed)
		if !p.seed.Nil() {
			p.g.GradAcc(p.seed).SetF32([]float32{1})
		}
		if err := compute(p); err != nil {
			return 0, err
		}
	}
	return float64(r.Loss.Value.F32()[0]), nil
}

func (r *recompute) close() {
	for _, p := range r.parts {
		if r.alloc.current == p.g {
			r.alloc.current = nil
		}
		p.close()
	}
	r.det.Close()
	r.stateBuf.Close()
	if r.state != nil {
		r.state.Close()
	}
}
