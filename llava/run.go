package llava

import (
	"github.com/calft/calft/bindings/ggml"
)

// GraphSize is the node capacity of a decoder graph of nLayer blocks: generous for the
// forward, backward and optimizer nodes of models with up to a few hundred layers.
func GraphSize(nLayer int) int { return 4096 + 1024*nLayer }

// ComputeLogits runs a one-off forward graph over a batch and returns the logits of
// every row, n_vocab floats per row in packed row order. With hideImages the text rows
// do not see the image rows (the image-absent pass).
func ComputeLogits(be *ggml.Backend, d *Decoder, b *Batch, hideImages bool) ([]float32, error) {
	size := GraphSize(d.HP.NLayer)
	ctx := ggml.NewContext(size*ggml.TensorOverhead()+ggml.GraphOverhead(size, false), true)
	defer ctx.Close()
	in := NewInputs(ctx, d.HP, b.Rows(), 0, hideImages)
	logits := d.Head().Logits(ctx, d.Forward(ctx, in, hideImages)).SetOutput()
	g := ctx.NewGraph(size, false)
	g.Expand(logits)
	if be.IsCPU() {
		g.UseTableGeGLU()
	}
	al := be.NewAllocator()
	defer al.Close()
	if err := al.Alloc(g); err != nil {
		return nil, err
	}
	if err := in.Set(d.HP, b, nil); err != nil {
		return nil, err
	}
	if err := be.Compute(g); err != nil {
		return nil, err
	}
	return logits.F32(), nil
}
