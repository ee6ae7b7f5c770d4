package llava

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
)

// NewRandom builds a model of the given shape with random weights directly on the
// backend, for benchmarks that need a real model's sizes but no file. It holds the
// architecture's required tensors (and the output layer unless tied). typeOf gives each
// matrix's stored type (nil: F32); vectors are F32.
//
// F32 weights are random throughout. A matrix of another type repeats a quantized band
// of random rows, so that a 7B model is made in seconds: the values do not change the
// speed or memory a benchmark measures. Either way no host buffer larger than a chunk is
// made, as a model-sized one would count in the peak memory benchmarks report.
func NewRandom(be *ggml.Backend, hp arch.HParams, seed uint64, typeOf func(s arch.Spec) ggml.Type) (*Model, error) {
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
	var made []arch.Spec
	for _, s := range specs {
		if s.Optional && !(s.Name == "output.weight" && !hp.Tied) {
			continue
		}
		p, err := m.W.slot(s)
		if err != nil {
			m.ctx.Close()
			return nil, err
		}
		typ := ggml.TypeF32
		if typeOf != nil && len(s.Shape) == 2 {
			typ = typeOf(s)
		}
		if s.Shape[0]%typ.BlockSize() != 0 {
			m.ctx.Close()
			return nil, fmt.Errorf("%s: rows of %d do not split into %s blocks of %d", s.Name, s.Shape[0], typ, typ.BlockSize())
		}
		*p = m.ctx.NewTensor(typ, s.Shape...).SetName(s.Name)
		made = append(made, s)
	}
	if hp.Tied {
		m.W.Output = m.W.TokEmbd
	}
	if m.buf, err = be.AllocTensors(m.ctx); err != nil {
		m.ctx.Close()
		return nil, fmt.Errorf("the benchmark model's weights: %w", err)
	}
	rng := rand.New(rand.NewPCG(seed, 0xbe7c))
	for _, s := range made {
		p, _ := m.W.slot(s)
		if err := fillRandom(*p, s, rng); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// fillRandom fills one tensor: norms with ones, the embedding with N(0, 0.02²), linear
// maps with N(0, 1/fan_in).
func fillRandom(t ggml.Tensor, s arch.Spec, rng *rand.Rand) error {
	std := 1 / math.Sqrt(float64(s.Shape[0]))
	switch s.Fill {
	case arch.FillEmbedding:
		std = 0.02
	case arch.FillNorm:
		std = 0
	}
	draw := func(v []float32) {
		for i := range v {
			if std == 0 {
				v[i] = 1
			} else {
				v[i] = float32(rng.NormFloat64() * std)
			}
		}
	}
	n := t.NElements()
	if t.Type() == ggml.TypeF32 {
		chunk := make([]float32, 1<<16)
		for off := 0; off < n; off += len(chunk) {
			v := chunk[:min(len(chunk), n-off)]
			draw(v)
			t.SetF32At(v, off)
		}
		return nil
	}
	rowLen, rows := s.Shape[0], n/s.Shape[0]
	band := make([]float32, rowLen*min(rows, 64))
	draw(band)
	q, err := ggml.Quantize(t.Type(), band, rowLen)
	if err != nil {
		return err
	}
	rowBytes := len(q) / (len(band) / rowLen)
	for r := 0; r < rows; r += len(band) / rowLen {
		k := min(len(band)/rowLen, rows-r)
		t.SetBytes(q[:k*rowBytes], r*rowBytes)
	}
	return nil
}
