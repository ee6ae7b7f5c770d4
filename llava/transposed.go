package llava

import (
	"fmt"

	"github.com/calft/calft/bindings/ggml"
)

// Transposed holds transposed copies of the decoder's frozen matrices. The backward pass
// needs dx = Wᵀ·dy through every frozen W; ggml's autodiff computes it with out_prod,
// which its CPU kernels run at a third to a half of mul_mat's rate. With Wᵀ at hand it
// is one mul_mat (see ggml.Graph.RewriteOutProds), at the price of the copies'
// memory: as much as the F32 weights in F32, half of it in BF16.
type Transposed struct {
	Type ggml.Type
	// Of maps each frozen matrix to its transposed copy.
	Of map[ggml.Tensor]ggml.Tensor

	ctx *ggml.Context
	buf *ggml.Buffer
}

// BackwardTypes are the types transposed copies can have. BF16 rounds W and dy to 8
// significant bits (about 0.2% relative error in dx, as in bfloat16 mixed-precision
// training) and keeps F32's exponent range, so small gradients do not underflow; F32 is
// exact. F16 and the quantized types are left out on purpose: gradients of activations
// are often below F16's (and Q8_0's F16 block scale's) normal range.
var BackwardTypes = map[string]ggml.Type{"bf16": ggml.TypeBF16, "f32": ggml.TypeF32}

// NewTransposed makes the transposed copies of w's matrices (every block's projections
// and the output layer: Weights.Matrices) in type typ on the backend. Quantized weights are
// dequantized first.
func NewTransposed(be *ggml.Backend, w *Weights, typ ggml.Type) (*Transposed, error) {
	if typ != ggml.TypeBF16 && typ != ggml.TypeF32 {
		return nil, fmt.Errorf("llava: transposed weights must be bf16 or f32, not %s", typ)
	}
	var mats []ggml.Tensor
	for _, m := range w.Matrices() {
		mats = append(mats, *m.T)
	}
	tr := &Transposed{Type: typ, Of: map[ggml.Tensor]ggml.Tensor{}}
	tr.ctx = ggml.NewContext(len(mats)*ggml.TensorOverhead(), true)
	maxRows := 0
	for _, m := range mats {
		ne := m.Ne()
		if ne[2] != 1 || ne[3] != 1 {
			tr.ctx.Close()
			return nil, fmt.Errorf("llava: %s is not a matrix", m.Name())
		}
		tr.Of[m] = tr.ctx.NewTensor(typ, ne[1], ne[0]).SetName(m.Name() + ".T")
		maxRows = max(maxRows, ne[1])
	}
	var err error
	if tr.buf, err = be.AllocTensors(tr.ctx); err != nil {
		tr.ctx.Close()
		return nil, fmt.Errorf("llava: no memory for the transposed weights: %w", err)
	}
	if err := tr.fill(be, mats, maxRows); err != nil {
		tr.Close()
		return nil, err
	}
	return tr, nil
}

// fill computes the copies in one graph, a band of columns at a time; the allocator
// reuses the temporaries' memory, so the extra memory at any moment is about one band in
// F32 (4M elements), plus one widened matrix for a quantized base.
func (tr *Transposed) fill(be *ggml.Backend, mats []ggml.Tensor, maxRows int) error {
	size := 0
	for _, m := range mats {
		K, N := m.Ne()[0], m.Ne()[1]
		size += 8 * (K/bandRows(K, N) + 1)
	}
	ctx := ggml.NewContext(size*ggml.TensorOverhead()+ggml.GraphOverhead(size, false), true)
	defer ctx.Close()
	g := ctx.NewGraph(size, false)
	ids := ctx.NewTensor(ggml.TypeI32, maxRows).SetInput()
	widen := false
	for _, m := range mats {
		src := m
		if m.Type() != ggml.TypeF32 {
			// get_rows dequantizes (or widens F16/BF16) every row.
			widen = true
			src = ctx.GetRows(m, ctx.View1D(ids, m.Ne()[1], 0))
		}
		// A band of k columns of W is a band of rows of Wᵀ; bands keep the F32
		// temporaries small (the output layer alone is 113 MB in F32 for SmolLM2).
		K, N := src.Ne()[0], src.Ne()[1]
		dst := tr.Of[m]
		band := bandRows(K, N)
		for k0 := 0; k0 < K; k0 += band {
			kc := min(band, K-k0)
			part := ctx.View2D(src, kc, N, src.Nb()[1], 4*k0)
			rows := ctx.View2D(dst, N, kc, dst.Nb()[1], k0*dst.Nb()[1])
			g.Expand(ctx.Cpy(ctx.Cont(ctx.Transpose(part)), rows))
		}
	}
	al := be.NewAllocator()
	defer al.Close()
	if err := al.Alloc(g); err != nil {
		return err
	}
	if widen {
		rows := make([]int32, maxRows)
		for i := range rows {
			rows[i] = int32(i)
		}
		ids.SetI32(rows)
	}
	return be.Compute(g)
}

// Bytes is the copies' memory.
func (tr *Transposed) Bytes() int {
	n := 0
	for _, t := range tr.Of {
		n += t.NBytes()
	}
	return n
}

// Close frees the copies.
func (tr *Transposed) Close() {
	if tr == nil {
		return
	}
	tr.buf.Close()
	tr.ctx.Close()
}

// bandRows is how many of W's K columns one transposition step takes: 4M elements.
func bandRows(K, N int) int { return max(1, min(K, (4<<20)/N)) }
