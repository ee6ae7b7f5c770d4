// Package train composes the decoder, the adapter and the objective into training
// steps: graphs built once per batch shape, gradients accumulated over micro-batches,
// and AdamW applied on the compute backend.
package train

import (
	"fmt"
	"math"

	"github.com/calft/calft/bindings/ggml"
)

// AdamW are the optimiser's settings.
type AdamW struct {
	LR          float64
	Beta1       float64
	Beta2       float64
	Eps         float64
	WeightDecay float64
}

// DefaultAdamW are common LoRA settings.
func DefaultAdamW() AdamW {
	return AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0}
}

// Optimizer holds, for every trainable tensor, its gradient accumulator and AdamW
// moments in backend memory, plus a small graph that applies one update.
type Optimizer struct {
	Params []ggml.Tensor
	Accs   map[ggml.Tensor]ggml.Tensor // gradient accumulator per param

	be        *ggml.Backend
	ctx       *ggml.Context
	buf       *ggml.Buffer
	m, v      []ggml.Tensor
	hparams   ggml.Tensor // F32[7] AdamW parameters of the current step
	scale     ggml.Tensor // F32[1] factor applied to the gradients before the update
	graph     *ggml.Graph
	gctx      *ggml.Context
	alloc     *ggml.Allocator
	normAlloc *ggml.Allocator
	normGraph *ggml.Graph
	sumSq     ggml.Tensor // Σ g² over every accumulator, for clipping and NaN checks
	Step      int         // updates applied so far
}

// NewOptimizer allocates accumulators and moments for params on be.
func NewOptimizer(be *ggml.Backend, params []ggml.Tensor) (*Optimizer, error) {
	o := &Optimizer{Params: params, Accs: map[ggml.Tensor]ggml.Tensor{}, be: be}
	o.ctx = ggml.NewContext((3*len(params)+4)*ggml.TensorOverhead(), true)
	for _, p := range params {
		ne := p.Ne()
		o.Accs[p] = o.ctx.NewTensor(ggml.TypeF32, ne[0], ne[1], ne[2], ne[3]).SetName("grad_acc " + p.Name())
		o.m = append(o.m, o.ctx.NewTensor(ggml.TypeF32, ne[0], ne[1], ne[2], ne[3]).SetName("adam_m "+p.Name()))
		o.v = append(o.v, o.ctx.NewTensor(ggml.TypeF32, ne[0], ne[1], ne[2], ne[3]).SetName("adam_v "+p.Name()))
	}
	o.hparams = o.ctx.NewTensor(ggml.TypeF32, 7).SetName("adamw_params")
	o.scale = o.ctx.NewTensor(ggml.TypeF32, 1).SetName("grad_scale")
	var err error
	if o.buf, err = be.AllocTensors(o.ctx); err != nil {
		o.ctx.Close()
		return nil, fmt.Errorf("the LoRA gradients and AdamW moments: %w", err)
	}
	o.buf.Clear(0)

	// The update graph: scale the accumulated gradients (1/n_micro and clipping), report
	// their squared norm, and step every param.
	size := 16 + 8*len(params)
	o.gctx = ggml.NewContext(4*size*ggml.TensorOverhead()+2*ggml.GraphOverhead(size, false), true)
	o.graph = o.gctx.NewGraph(size, false)
	for i, p := range params {
		g := o.gctx.Mul(o.Accs[p], o.scale)
		o.graph.Expand(o.gctx.AdamWStep(p, g, o.m[i], o.v[i], o.hparams))
	}
	o.normGraph = o.gctx.NewGraph(size, false)
	for _, p := range params {
		sq := o.gctx.Sum(o.gctx.Sqr(o.Accs[p]))
		if o.sumSq.Nil() {
			o.sumSq = sq
		} else {
			o.sumSq = o.gctx.Add(o.sumSq, sq)
		}
	}
	o.sumSq.SetOutput()
	o.normGraph.Expand(o.sumSq)
	// Two allocators: the update and the norm graphs are computed one after the other,
	// and each keeps its placement across steps.
	o.alloc = be.NewAllocator()
	o.normAlloc = be.NewAllocator()
	if err := o.alloc.Alloc(o.graph); err != nil {
		o.Close()
		return nil, err
	}
	if err := o.normAlloc.Alloc(o.normGraph); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// gradSumSq computes Σ g² over every accumulator on the backend and reads back one float.
func (o *Optimizer) gradSumSq() (float64, error) {
	if err := o.be.Compute(o.normGraph); err != nil {
		return 0, err
	}
	return float64(o.sumSq.F32()[0]), nil
}

// ZeroGrad clears the accumulators before a new optimiser step's micro-batches.
func (o *Optimizer) ZeroGrad() {
	for _, p := range o.Params {
		o.Accs[p].Zero()
	}
}

// Grad returns the accumulated gradient of a param.
func (o *Optimizer) Grad(p ggml.Tensor) []float32 { return o.Accs[p].F32() }

// Update applies one AdamW step to every param with the accumulated gradients divided
// by nMicro, after clipping their global norm to clip (≤ 0: no clipping). It returns the
// gradient norm before clipping, and an error without updating when it is not finite.
func (o *Optimizer) Update(h AdamW, nMicro int, clip float64) (float64, error) {
	ss, err := o.gradSumSq()
	if err != nil {
		return 0, err
	}
	norm := math.Sqrt(ss) / float64(nMicro)
	if math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, fmt.Errorf("gradient norm is %v; the update was not applied", norm)
	}
	scale := 1 / float64(nMicro)
	if clip > 0 && norm > clip {
		scale *= clip / norm
	}
	o.scale.SetF32([]float32{float32(scale)})
	t := float64(o.Step + 1)
	o.hparams.SetF32([]float32{
		float32(h.LR), float32(h.Beta1), float32(h.Beta2), float32(h.Eps), float32(h.WeightDecay),
		float32(1 / (1 - math.Pow(h.Beta1, t))), float32(1 / (1 - math.Pow(h.Beta2, t))),
	})
	if err := o.be.Compute(o.graph); err != nil {
		return norm, err
	}
	o.Step++
	return norm, nil
}

// Moments returns copies of the AdamW moments (for checkpoints).
func (o *Optimizer) Moments() (m, v [][]float32) {
	for i := range o.Params {
		m = append(m, o.m[i].F32())
		v = append(v, o.v[i].F32())
	}
	return m, v
}

// SetMoments restores AdamW moments saved by Moments.
func (o *Optimizer) SetMoments(m, v [][]float32) error {
	if len(m) != len(o.Params) || len(v) != len(o.Params) {
		return fmt.Errorf("optimizer state has %d/%d tensors, the adapter %d", len(m), len(v), len(o.Params))
	}
	for i := range o.Params {
		if len(m[i]) != o.m[i].NElements() || len(v[i]) != o.v[i].NElements() {
			return fmt.Errorf("optimizer state of %s has the wrong size", o.Params[i].Name())
		}
		o.m[i].SetF32(m[i])
		o.v[i].SetF32(v[i])
	}
	return nil
}

// Close frees the optimiser's memory.
func (o *Optimizer) Close() {
	o.alloc.Close()
	o.normAlloc.Close()
	o.gctx.Close()
	o.buf.Close()
	o.ctx.Close()
}
