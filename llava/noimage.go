package llava

import (
	"fmt"

	"github.com/calft/calft/bindings/ggml"
)

// NoImageWeights are the frozen weights CAL's image-absent pass multiplies with: the
// model's own, except that F32 block matrices are replaced by Q8_0 copies. That pass
// only measures Δ (no gradient flows through it), Δ is clamped to [lo, hi] and smoothed
// before it weighs a token, and Q8_0 moves a logit by a few hundredths where F32
// products cost twice the time; the pass is CAL's whole extra cost. The copies cost a
// quarter of the F32 matrices' memory. Norms, biases, the embeddings and the output
// rows (the target logit) stay the model's own.
type NoImageWeights struct {
	W Weights

	ctx *ggml.Context
	buf *ggml.Buffer
}

// NewNoImageWeights quantizes w's F32 block matrices whose rows are a whole number of
// Q8_0 blocks; the others are shared with w.
func NewNoImageWeights(be *ggml.Backend, w *Weights) (*NoImageWeights, error) {
	nw := &NoImageWeights{W: *w}
	nw.W.Layers = append([]Layer(nil), w.Layers...)
	var pairs [][2]ggml.Tensor
	mats := nw.W.Matrices()
	nw.ctx = ggml.NewContext(len(mats)*ggml.TensorOverhead(), true)
	for _, mat := range mats {
		m := mat.T
		ne := m.Ne()
		if mat.Target == "" || m.Type() != ggml.TypeF32 || ne[0]%ggml.TypeQ8_0.BlockSize() != 0 {
			continue // the output layer's target rows stay exact; see above
		}
		// Same name: the adapter finds its LoRA pair by the weight's name.
		q := nw.ctx.NewTensor(ggml.TypeQ8_0, ne[0], ne[1]).SetName(m.Name())
		pairs = append(pairs, [2]ggml.Tensor{*m, q})
		*m = q
	}
	if len(pairs) == 0 {
		nw.ctx.Close()
		nw.ctx = nil
		return nw, nil
	}
	var err error
	if nw.buf, err = be.AllocTensors(nw.ctx); err != nil {
		nw.ctx.Close()
		return nil, fmt.Errorf("llava: no memory for the image-absent pass's Q8_0 weights: %w", err)
	}
	size := 2 * len(pairs)
	ctx := ggml.NewContext(size*ggml.TensorOverhead()+ggml.GraphOverhead(size, false), true)
	defer ctx.Close()
	g := ctx.NewGraph(size, false)
	for _, p := range pairs {
		g.Expand(ctx.Cpy(p[0], p[1]))
	}
	if err := be.Compute(g); err != nil {
		nw.Close()
		return nil, err
	}
	return nw, nil
}

// Bytes is the copies' memory.
func (nw *NoImageWeights) Bytes() int {
	if nw.buf == nil {
		return 0
	}
	return nw.buf.Size()
}

// Close frees the copies.
func (nw *NoImageWeights) Close() {
	if nw == nil || nw.ctx == nil {
		return
	}
	nw.buf.Close()
	nw.ctx.Close()
}
