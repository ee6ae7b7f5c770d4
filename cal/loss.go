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

// LossInputs are the host-set inputs of the loss for N scored rows.
type LossInputs struct {
	N       int
	FlatIdx ggml.Tensor // I32 [N]: i·n_vocab + target, to gather the target logits
	Weight  ggml.Tensor // F32 [N]: 1 for real rows, 0 for padding (the ce weights)
	Coef    ggml.Tensor // F32 [N×K]: smoothing coefficient of row i's neighbour at offset k−h
	opt     Options
}

// half is the smoothing half-width (0 when smoothing is off).
func (o Options) half() int {
	if !o.Smooth || o.Window <= 1 {
		return 0
	}
	return o.Window / 2
}

// NewLossInputs declares the inputs for n scored rows.
func NewLossInputs(ctx *ggml.Context, n int, opt Options) *LossInputs {
	k := 2*opt.half() + 1
	return &LossInputs{
		N:       n,
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
	if int64(li.N)*int64(nVocab) > math.MaxInt32 {
		return fmt.Errorf("%d scored rows × a vocabulary of %d exceed ggml's int32 row index; use smaller batches", li.N, nVocab)
	}
	h := li.opt.half()
	k := 2*h + 1
	idx := make([]int32, li.N)
	w := make([]float32, li.N)
	coef := make([]float32, li.N*k)
	for i, t := range targets {
		if t.Token < 0 || int(t.Token) >= nVocab {
			return fmt.Errorf("target token %d outside the vocabulary of %d", t.Token, nVocab)
		}
		idx[i] = int32(i*nVocab) + t.Token
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
	li.FlatIdx.SetI32(idx)
	// The ce loss reads the row weights, the cal loss the smoothing coefficients.
	if li.Weight.HasBuffer() {
		li.Weight.SetF32(w)
	}
	if li.Coef.HasBuffer() {
		li.Coef.SetF32(coef)
	}
	return nil
}

// Loss is the built loss and the per-row values worth reading back.
type Loss struct {
	Value ggml.Tensor // scalar Σ w·CE / Σ w, marked as the loss
	// The per-row values below are copies in leaves of their own, readable after a compute.
	CE     ggml.Tensor // [1, N] per-row cross-entropy
	Delta  ggml.Tensor // [N] Δ (cal only)
	Weight ggml.Tensor // [1, N] the weights used
	ZImg   ggml.Tensor // [1, N] target logits with the image
	ZNoImg ggml.Tensor // [1, N] target logits with the image hidden (cal only)
}

// pick gathers each row's target logit: [n_vocab, N] → [1, N], with a gradient.
func pick(ctx *ggml.Context, logits, flatIdx ggml.Tensor) ggml.Tensor {
	ne := logits.Ne()
	return ctx.GetRows(ctx.Reshape(logits, 1, ne[0]*ne[1]), flatIdx)
}

// rowCE is log Σ exp(z) − z[y] per row. The row maximum is subtracted for stability and
// detached: the result does not depend on it, so neither does the gradient.
func rowCE(ctx *ggml.Context, g *ggml.Graph, d *Detacher, logits, zy ggml.Tensor) ggml.Tensor {
	ne := logits.Ne()
	am := ctx.Reshape(ctx.ArgMax(logits), 1, ne[1])
	mx := ctx.Reshape(ctx.GetRows(ctx.Reshape(logits, 1, ne[0], ne[1]), am), 1, ne[1])
	m, _ := d.Detach(ctx, g, mx, 0)
	lse := ctx.Add(ctx.Log(ctx.SumRows(ctx.Exp(ctx.Sub(logits, m)))), m)
	return ctx.Sub(ctx.Reshape(lse, 1, ne[1]), zy)
}

// Build adds the loss over logits [n_vocab, N] to g. For CAL, logitsNoImg are the same
// rows' logits with the image hidden — [n_vocab, N], or just each row's target logit
// [1, N], and then imgTarget is the image pass's target logit [1, N] computed the same
// way (for Δ only). Δ, the weights and Σ w are constants to autodiff.
// The nodes that must run before the loss are expanded into g here.
func Build(ctx *ggml.Context, g *ggml.Graph, d *Detacher, obj Objective, logits, logitsNoImg, imgTarget ggml.Tensor, in *LossInputs) Loss {
	zy := pick(ctx, logits, in.FlatIdx)
	var l Loss
	l.ZImg = zy
	l.CE = rowCE(ctx, g, d, logits, zy)
	n := in.N
	switch obj {
	case CAL:
		zNo, zImg := logitsNoImg, imgTarget
		if logitsNoImg.Ne()[0] != 1 {
			zNo, zImg = pick(ctx, logitsNoImg, in.FlatIdx), zy
		}
		l.ZImg, l.ZNoImg = zImg, zNo // the pair Δ is made of
		h := in.opt.half()
		pad, delta := d.Detach(ctx, g, ctx.Sub(zImg, zNo), h)
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
		l.Weight = ctx.Reshape(w, 1, n)
	default:
		l.Weight = ctx.Reshape(in.Weight, 1, n)
	}
	// The weights are constants of the gradient, and they are read back after the
	// compute: a leaf of their own gives both (flagging a node as an output did not keep
	// the backward pass from reusing its memory).
	l.Weight, _ = d.Detach(ctx, g, l.Weight, 0)
	num := ctx.Sum(ctx.Mul(l.CE, l.Weight))
	// Σ w is 0 only when nothing is supervised; the clamp keeps 0/0 from becoming NaN.
	den := ctx.Clamp(ctx.Sum(l.Weight), 1e-20, 3e38)
	l.Value = ctx.Div(num, den).SetName("loss").SetLoss()
	g.Expand(l.Value)
	// Copies for reading back, made before the backward pass can touch the originals.
	l.CE, _ = d.Detach(ctx, g, l.CE, 0)
	l.ZImg, _ = d.Detach(ctx, g, l.ZImg, 0)
	if !l.ZNoImg.Nil() {
		l.ZNoImg, _ = d.Detach(ctx, g, l.ZNoImg, 0)
	}
	return l
}
