package cal

import (
	"fmt"

	"github.com/calft/calft/bindings/ggml"
)

// Detacher cuts gradient paths. ggml has no detach op, so a value is copied into a leaf
// tensor of its own: autodiff sees the leaf as a constant. The copy node is expanded into
// the graph before any reader of the leaf, so it runs first; the leaves live in their own
// buffer, outside the graph allocator, so their memory is never reused in between.
type Detacher struct {
	ctx *ggml.Context
	buf *ggml.Buffer
}

// NewDetacher makes room for up to n detached leaves.
func NewDetacher(n int) *Detacher {
	return &Detacher{ctx: ggml.NewContext(n*ggml.TensorOverhead(), true)}
}

// Detach returns a constant copy of x (contiguous, of x's type; F32 when padded) with
// pad zeros on each side of dim 0 for 1-D x. It adds the copy to g; call Alloc before
// computing g.
func (d *Detacher) Detach(ctx *ggml.Context, g *ggml.Graph, x ggml.Tensor, pad int) (leaf, inner ggml.Tensor) {
	ne := x.Ne()
	if pad > 0 {
		leaf = d.ctx.NewTensor(ggml.TypeF32, x.NElements()+2*pad)
		inner = ctx.View1D(leaf, x.NElements(), 4*pad)
		g.Expand(ctx.Cpy(ctx.Reshape(ctx.Cont(x), x.NElements()), inner))
		return leaf, inner
	}
	leaf = d.ctx.NewTensor(x.Type(), ne[0], ne[1], ne[2], ne[3])
	g.Expand(ctx.Cpy(ctx.Cont(x), leaf))
	return leaf, leaf
}

// Leaf is a zeroed leaf [ne0, ne1] that the graph writes into (with Cpy into views of
// it) and reads after those writes: a value built in parts, constant to autodiff.
func (d *Detacher) Leaf(ne0, ne1 int) ggml.Tensor { return d.ctx.NewTensor(ggml.TypeF32, ne0, ne1) }

// LeafI32 is Leaf for integers (token ids).
func (d *Detacher) LeafI32(ne0, ne1 int) ggml.Tensor { return d.ctx.NewTensor(ggml.TypeI32, ne0, ne1) }

// Alloc places the leaves in backend memory, zeroed (the padding must read as zero).
func (d *Detacher) Alloc(be *ggml.Backend) error {
	buf, err := be.AllocTensors(d.ctx)
	if err != nil {
		return fmt.Errorf("the loss's read-back values: %w", err)
	}
	buf.Clear(0)
	d.buf = buf
	return nil
}

// Close frees the leaves.
func (d *Detacher) Close() {
	d.buf.Close()
	d.ctx.Close()
}
