package llava

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
)

// NewRandom builds a model of the given shape with random F32 weights directly on the
// backend, for benchmarks that need a real model's sizes but no file. It holds the
// architecture's required tensors (and the output layer unless tied).
func NewRandom(be *ggml.Backend, hp arch.HParams, seed uint64) (*Model, error) {
	if err := hp.Validate(); err != nil {
		return nil, err
	}
	a, err := arch.Lookup(hp.Arch)
	if err != nil {
		return nil, err
	}
	m := &Model{Path: "(random)", HP: hp}
	m.W = Weights{Arch: a, Layers: make([]Layer, hp.NLayer)}
	specs := a.Specs(&hp)
	m.ctx = ggml.NewContext((len(specs)+8)*ggml.TensorOverhead(), true)
	type init struct {
		t   ggml.Tensor
		std float64 // 0: ones (norm weights)
	}
	var inits []init
	for _, s := range specs {
		if s.Optional && !(s.Name == "output.weight" && !hp.Tied) {
			continue
		}
		p, err := m.W.slot(s)
		if err != nil {
			m.ctx.Close()
			return nil, err
		}
		*p = m.ctx.NewTensor(ggml.TypeF32, s.Shape...).SetName(s.Name)
		std := 1 / math.Sqrt(float64(s.Shape[0])) // linear maps: 1/√fan_in
		switch s.Fill {
		case arch.FillEmbedding:
			std = 0.02
		case arch.FillNorm:
			std = 0
		}
		inits = append(inits, init{*p, std})
	}
	if hp.Tied {
		m.W.Output = m.W.TokEmbd
	}
	if m.buf, err = be.AllocTensors(m.ctx); err != nil {
		m.ctx.Close()
		return nil, fmt.Errorf("the benchmark model's weights: %w", err)
	}
	// Filled a chunk at a time: a model-sized host copy would count in the peak memory
	// that benchmarks report.
	rng := rand.New(rand.NewPCG(seed, 0xbe7c))
	chunk := make([]float32, 1<<16)
	for _, it := range inits {
		n := it.t.NElements()
		for off := 0; off < n; off += len(chunk) {
			v := chunk[:min(len(chunk), n-off)]
			for i := range v {
				if it.std == 0 {
					v[i] = 1
				} else {
					v[i] = float32(rng.NormFloat64() * it.std)
				}
			}
			it.t.SetF32At(v, off)
		}
	}
	return m, nil
}
