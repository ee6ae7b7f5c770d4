package lora

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/calft/calft/bindings/ggml"
)

// Dropout on the LoRA input, as PEFT applies it (x → dropout(x) → A → B), without a
// random-number op on the backend: a pool of precomputed keep/drop rows (scaled by
// 1/(1−p)) lives on the backend, and each step picks a random pool row for every row of
// every adapted input through get_rows, an input of a few integers per row.
const dropoutPoolRows = 1024

type dropout struct {
	p      float32
	ctx    *ggml.Context
	buf    *ggml.Buffer
	pools  map[int]ggml.Tensor // by input width
	inputs []ggml.Tensor       // I32 [T] row choices of the graph being built
}

// EnableDropout turns dropout with probability p on for training graphs built from now.
func (ad *Adapter) EnableDropout(be *ggml.Backend, p float32, seed uint64) error {
	if p <= 0 {
		return nil
	}
	widths := map[int]bool{}
	for _, pr := range ad.Pairs {
		widths[pr.NIn] = true
	}
	d := &dropout{p: p, pools: map[int]ggml.Tensor{}}
	d.ctx = ggml.NewContext((len(widths)+1)*ggml.TensorOverhead(), true)
	for w := range widths {
		d.pools[w] = d.ctx.NewTensor(ggml.TypeF32, w, dropoutPoolRows)
	}
	var err error
	if d.buf, err = be.AllocTensors(d.ctx); err != nil {
		d.ctx.Close()
		return fmt.Errorf("the LoRA dropout masks: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 0xd40f))
	keep := 1 / (1 - p)
	for _, w := range slices.Sorted(maps.Keys(widths)) {
		v := make([]float32, w*dropoutPoolRows)
		for i := range v {
			if rng.Float32() >= p {
				v[i] = keep
			}
		}
		d.pools[w].SetF32(v)
	}
	ad.drop = d
	return nil
}

// Drop implements llava.Dropper: x [n_in, T] times a mask drawn per step.
func (ad *Adapter) Drop(ctx *ggml.Context, x ggml.Tensor, weight string) ggml.Tensor {
	if ad.drop == nil {
		return x
	}
	ne := x.Ne()
	pool, ok := ad.drop.pools[ne[0]]
	if !ok {
		return x
	}
	idx := ctx.NewTensor(ggml.TypeI32, ne[1]).SetName(weight).SetInput()
	ad.drop.inputs = append(ad.drop.inputs, idx)
	return ctx.Mul(x, ctx.GetRows(pool, idx))
}

// TakeDropoutInputs returns the row-choice inputs of the graph just built and forgets
// them; the caller fills them before each compute with SetDropoutRows.
func (ad *Adapter) TakeDropoutInputs() []ggml.Tensor {
	if ad.drop == nil {
		return nil
	}
	in := ad.drop.inputs
	ad.drop.inputs = nil
	return in
}

// SetDropoutRows draws fresh masks for a graph's dropout inputs from seed, so a step's
// masks depend on the step alone (resumed runs see the same ones), and each weight's
// from its name, so every graph that computes that weight's product (a layer recomputed
// for its backward pass) draws the same.
func SetDropoutRows(inputs []ggml.Tensor, seed uint64) {
	for _, in := range inputs {
		h := fnv.New64a()
		h.Write([]byte(in.Name()))
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		v := make([]int32, in.NElements())
		for i := range v {
			v[i] = int32(rng.IntN(dropoutPoolRows))
		}
		in.SetI32(v)
	}
}
