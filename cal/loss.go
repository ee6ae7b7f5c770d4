package cal

import (
	"fmt"
	"math"

	"github.com/calft/calft/bindings/ggml"
)

// Objective selects the training loss.
type Objective string

// The objectives: plain mean cross-entropy (the baseline) and Contrastive ALignment.
const (
	CE  Objective = "ce"
	CAL Objective = "cal"
)

// ParseObjective accepts "ce" or "cal".
func ParseObjective(s string) (Objective, error) {
	switch Objective(s) {
	case CE, CAL:
		return Objective(s), nil
	}
	return "", fmt.Errorf("unknown objective %q; use ce or cal", s)
}

// Target is one scored row: the logits computed at some row predict token Token. Run
// numbers group consecutive supervised tokens; smoothing never crosses runs.
type Target struct {
	Token int32
	Run   int
}

// BlockElements bounds the logits computed at once: the loss takes as many scored rows
// at a time as keep [n_vocab × rows] F32 within it (64 MB), so that a vocabulary of
// 262k tokens never holds every row's logits alive together.
const BlockElements = 1 << 24

// BlockRows is how many scored rows one loss block takes for a vocabulary.
func BlockRows(nVocab, n int) int { return max(1, min(n, BlockElements/max(nVocab, 1))) }

// LossInputs are the host-set inputs of the loss for N scored rows, in blocks of Block.
type LossInputs struct {
	N, Block int
	Targets  ggml.Tensor // I32 [N]: each row's target token
	FlatIdx  ggml.Tensor // I32 [N]: (i − its block's first row)·n_vocab + target, to gather target logits
	Weight   ggml.Tensor // F32 [N]: 1 for real rows, 0 for padding (the ce weights)
	Coef     ggml.Tensor // F32 [N×K]: smoothing coefficient of row i's neighbour at offset k−h
	// Probs adds Loss's probability read-backs (LSE, Max, ArgMax, LSENoImg) for calft
	// audit; training graphs leave it off.
	Probs bool
	opt   Options
}

// half is the smoothing half-width (0 when smoothing is off).
func (o Options) half() int {
	if !o.Smooth || o.Window <= 1 {
		return 0
	}
	return o.Window / 2
}

// NewLossInputs declares the inputs for n scored rows, taken block rows at a time (≤ 0:
// as BlockRows says for nVocab).
func NewLossInputs(ctx *ggml.Context, n, nVocab, block int, opt Options) *LossInputs {
	if block <= 0 {
		block = BlockRows(nVocab, n)
	}
	k := 2*opt.half() + 1
	return &LossInputs{
		N:       n,
		Block:   min(block, n),
		Targets: ctx.NewTensor(ggml.TypeI32, n).SetName("loss_targets").SetInput(),
		FlatIdx: ctx.NewTensor(ggml.TypeI32, n).SetName("loss_flat_idx").SetInput(),
		Weight:  ctx.NewTensor(ggml.TypeF32, n).SetName("loss_row_weight").SetInput(),
		Coef:    ctx.NewTensor(ggml.TypeF32, n, k).SetName("loss_smooth_coef").SetInput(),
		opt:     opt,
	}
}

// Set fills the inputs for the given targets; rows past len(targets) are padding.
func (li *LossInputs) Set(nVocab int, targets []Target) error {
	if len(targets) > li.N {
		return fmt.Errorf("%d targets for a loss built for %d rows", len(targets), li.N)
	}
	if int64(li.Block)*int64(nVocab) > math.MaxInt32 {
		return fmt.Errorf("a loss block of %d rows × a vocabulary of %d exceeds ggml's int32 row index", li.Block, nVocab)
	}
	h := li.opt.half()
	k := 2*h + 1
	tok := make([]int32, li.N)
	idx := make([]int32, li.N)
	w := make([]float32, li.N)
	coef := make([]float32, li.N*k)
	for i, t := range targets {
		if t.Token < 0 || int(t.Token) >= nVocab {
			return fmt.Errorf("target token %d outside the vocabulary of %d", t.Token, nVocab)
		}
		tok[i] = t.Token
		idx[i] = int32((i%li.Block)*nVocab) + t.Token
		w[i] = 1
		// Neighbours inside the same run share the average; missing ones are left out.
		var in []int
		for o := -h; o <= h; o++ {
			j := i + o
			if j >= 0 && j < len(targets) && targets[j].Run == t.Run {
				in = append(in, o)
			}
		}
		for _, o := range in {
			coef[(o+h)*li.N+i] = 1 / float32(len(in))
		}
	}
	for i := len(targets); i < li.N; i++ {
		idx[i] = int32((i % li.Block) * nVocab) // padding: any valid index
	}
	for _, in := range []struct {
		t ggml.Tensor
		v any
	}{{li.Targets, tok}, {li.FlatIdx, idx}, {li.Weight, w}, {li.Coef, coef}} {
		if !in.t.HasBuffer() { // a graph may not read every input
			continue
		}
		switch v := in.v.(type) {
		case []int32:
			in.t.SetI32(v)
		case []float32:
			in.t.SetF32(v)
		}
	}
	return nil
}

// Head is the output layer as the loss needs it: the logits of some rows' final hidden
// states, and the gradient of those states from the gradient of their logits (dh = Wᵀ·dz).
type Head interface {
	Logits(ctx *ggml.Context, h ggml.Tensor) ggml.Tensor
	InputGrad(ctx *ggml.Context, dlogits ggml.Tensor) ggml.Tensor
}

// Passes are what the decoder's passes give the loss: the final hidden states (after the
// output norm) of the scored rows with the image [n_embd, N], and for CAL each row's
// target logit with and without the image [1, N], computed alike.
type Passes struct {
	H, ZImg, ZNoImg ggml.Tensor
	// HNoImg, for LossInputs.Probs only, are the image-absent pass's final hidden states
	// of the same rows, when it ran in full: Loss.LSENoImg is computed from them.
	HNoImg ggml.Tensor
}

// Loss is the built loss and the per-row values worth reading back.
type Loss struct {
	// Value is Σ w·CE / Σ w (a copy in a leaf of its own, readable after a compute).
	Value ggml.Tensor
	// Seed is the scalar autodiff differentiates, Σ H ⊙ DH with DH the loss's gradient
	// of H as a constant: its gradient of everything below H is the loss's.
	Seed, DH ggml.Tensor
	// The per-row values below are copies in leaves of their own.
	CE     ggml.Tensor // [1, N] per-row cross-entropy
	Delta  ggml.Tensor // [N] Δ (cal only)
	Weight ggml.Tensor // [1, N] the weights used
	ZImg   ggml.Tensor // [1, N] target logits with the image (cal only)
	ZNoImg ggml.Tensor // [1, N] target logits with the image hidden (cal only)
	// With LossInputs.Probs only: log Σ exp of each row's logits with the image, the
	// row's largest logit and its token (I32 [1, N]), and, when Build was given the
	// image-absent logits in full, their log Σ exp (else the zero Tensor).
	LSE, Max, ArgMax, LSENoImg ggml.Tensor
}

// weights are the objective's per-row weights [1, N], a constant leaf: CAL's smoothed,
// clamped Δ, or the row weights (1 real, 0 padding) for ce.
func weights(ctx *ggml.Context, g *ggml.Graph, d *Detacher, obj Objective, p Passes, in *LossInputs, l *Loss) ggml.Tensor {
	n := in.N
	if obj != CAL {
		w, _ := d.Detach(ctx, g, ctx.Reshape(in.Weight, 1, n), 0)
		return w
	}
	h := in.opt.half()
	pad, delta := d.Detach(ctx, g, ctx.Sub(p.ZImg, p.ZNoImg), h)
	l.Delta = delta
	// ggml's clamp works in place: clamp a copy, so Δ stays readable.
	c := ctx.Clamp(ctx.Cont(pad), float32(in.opt.Lo), float32(in.opt.Hi))
	var w ggml.Tensor
	for k := 0; k <= 2*h; k++ {
		term := ctx.Mul(ctx.View1D(c, n, 4*k), ctx.View1D(in.Coef, n, 4*n*k))
		if w.Nil() {
			w = term
		} else {
			w = ctx.Add(w, term)
		}
	}
	// Padding rows have no neighbours: their coefficients, and so their weights, are 0.
	leaf, _ := d.Detach(ctx, g, ctx.Reshape(w, 1, n), 0)
	return leaf
}

// Build adds the loss to g, a block of scored rows at a time: each block's logits come
// from head, give its rows' cross-entropy and, with backward, the loss's gradient of
// their hidden states, ∂/∂h = Wᵀ·((softmax − onehot)·w/Σw), written by hand rather than
// by autodiff, so that no block's logits need outlive it. The result for autodiff is
// Seed; Δ, the weights and Σ w are constants of the gradient. The nodes are expanded
// into g in order.
func Build(ctx *ggml.Context, g *ggml.Graph, d *Detacher, obj Objective, head Head, p Passes, in *LossInputs, backward bool) Loss {
	var l Loss
	n := in.N
	l.Weight = weights(ctx, g, d, obj, p, in, &l)
	// Σ w is 0 only when nothing is supervised; the clamp keeps 0/0 from becoming NaN.
	wsum := ctx.Clamp(ctx.Sum(l.Weight), 1e-20, 3e38)
	out := blockOut{s: ctx.Div(l.Weight, wsum), ce: d.Leaf(1, n)} // s: each row's share of the loss
	l.CE = out.ce
	if backward {
		out.dh = d.Leaf(p.H.Ne()[0], n)
		l.DH = out.dh
	}
	var outNo blockOut
	if in.Probs {
		out.lse, out.max, out.argmax = d.Leaf(1, n), d.Leaf(1, n), d.LeafI32(1, n)
		l.LSE, l.Max, l.ArgMax = out.lse, out.max, out.argmax
		if !p.HNoImg.Nil() {
			outNo.lse = d.Leaf(1, n)
			l.LSENoImg = outNo.lse
		}
	}
	for r0 := 0; r0 < n; r0 += in.Block {
		nb := min(in.Block, n-r0)
		lossBlock(ctx, g, head, p.H, in, r0, nb, out)
		if !outNo.lse.Nil() {
			lossBlock(ctx, g, head, p.HNoImg, in, r0, nb, outNo)
		}
	}
	l.Value, _ = d.Detach(ctx, g, ctx.Div(ctx.Sum(ctx.Mul(l.CE, l.Weight)), wsum), 0)
	if backward {
		l.Seed = ctx.Sum(ctx.Mul(p.H, out.dh)).SetName("loss_seed").SetLoss()
		g.Expand(l.Seed)
	}
	if obj == CAL {
		l.ZImg, _ = d.Detach(ctx, g, p.ZImg, 0)
		l.ZNoImg, _ = d.Detach(ctx, g, p.ZNoImg, 0)
	}
	return l
}

// blockOut are where lossBlock writes each block's rows: their cross-entropy (ce), the
// loss's gradient of their hidden states (dh, given each row's share s of the loss), and
// for calft audit their log-sum-exp, largest logit and its token. A zero Tensor is not
// computed.
type blockOut struct {
	s, ce, dh, lse, max, argmax ggml.Tensor
}

// rows is the view of rows r0..r0+nb of a [k, N] tensor.
func rows(ctx *ggml.Context, t ggml.Tensor, r0, nb int) ggml.Tensor {
	return ctx.View2D(t, t.Ne()[0], nb, t.Nb()[1], r0*t.Nb()[1])
}

// lossBlock computes rows r0..r0+nb of the hidden states H into out.
func lossBlock(ctx *ggml.Context, g *ggml.Graph, head Head, H ggml.Tensor, in *LossInputs, r0, nb int, out blockOut) {
	logits := head.Logits(ctx, rows(ctx, H, r0, nb)) // [V, nb]
	V := logits.Ne()[0]
	flat := ctx.View1D(in.FlatIdx, nb, 4*r0)
	all := ctx.Reshape(logits, 1, V*nb)
	// Log-sum-exp with the row maximum subtracted for stability.
	am := ctx.Reshape(ctx.ArgMax(logits), 1, nb)
	m := ctx.Reshape(ctx.GetRows(ctx.Reshape(logits, 1, V, nb), am), 1, nb)
	e := ctx.Exp(ctx.Sub(logits, m))
	S := ctx.SumRows(e)
	lse := ctx.Add(ctx.Log(S), m)
	for _, c := range []struct{ v, dst ggml.Tensor }{{lse, out.lse}, {m, out.max}, {am, out.argmax}} {
		if !c.dst.Nil() {
			g.Expand(ctx.Cpy(c.v, rows(ctx, c.dst, r0, nb)))
		}
	}
	if out.ce.Nil() {
		return
	}
	zy := ctx.Reshape(ctx.GetRows(all, flat), 1, nb)
	g.Expand(ctx.Cpy(ctx.Sub(lse, zy), rows(ctx, out.ce, r0, nb)))
	if out.dh.Nil() {
		return
	}
	sb := rows(ctx, out.s, r0, nb)
	p := ctx.Mul(e, ctx.Div(sb, S)) // softmax·s
	onehot := ctx.Reshape(ctx.GetRowsBack(ctx.Reshape(ctx.Cont(sb), 1, nb), flat, all), V, nb)
	g.Expand(ctx.Cpy(head.InputGrad(ctx, ctx.Sub(p, onehot)), rows(ctx, out.dh, r0, nb)))
}
