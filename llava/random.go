package llava

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/calft/calft/bindings/ggml"
)

// NewRandom builds a model of the given shape with random F32 weights directly on the
// backend, for benchmarks that need a real model's sizes but no file.
func NewRandom(be *ggml.Backend, hp HParams, seed uint64) (*Model, error) {
	if err := hp.Validate(); err != nil {
		return nil, err
	}
	m := &Model{Path: "(random)", HP: hp}
	m.ctx = ggml.NewContext((16*hp.NLayer+8)*ggml.TensorOverhead(), true)
	nKV := hp.NHeadKV * hp.HeadDim
	type init struct {
		t   ggml.Tensor
		std float64 // 0: ones (norm weights)
	}
	var inits []init
	mk := func(name string, std float64, ne ...int) ggml.Tensor {
		t := m.ctx.NewTensor(ggml.TypeF32, ne...).SetName(name)
		inits = append(inits, init{t, std})
		return t
	}
	m.W.TokEmbd = mk("token_embd.weight", 0.02, hp.NEmbd, hp.NVocab)
	m.W.OutNorm = mk("output_norm.weight", 0, hp.NEmbd)
	if hp.Tied {
		m.W.Output = m.W.TokEmbd
	} else {
		m.W.Output = mk("output.weight", 1/math.Sqrt(float64(hp.NEmbd)), hp.NEmbd, hp.NVocab)
	}
	in, ff := 1/math.Sqrt(float64(hp.NEmbd)), 1/math.Sqrt(float64(hp.NFF))
	for il := 0; il < hp.NLayer; il++ {
		n := func(s string) string { return fmt.Sprintf("blk.%d.%s", il, s) }
		m.W.Layers = append(m.W.Layers, Layer{
			AttnNorm: mk(n("attn_norm.weight"), 0, hp.NEmbd),
			Wq:       mk(n("attn_q.weight"), in, hp.NEmbd, hp.NEmbd),
			Wk:       mk(n("attn_k.weight"), in, hp.NEmbd, nKV),
			Wv:       mk(n("attn_v.weight"), in, hp.NEmbd, nKV),
			Wo:       mk(n("attn_output.weight"), in, hp.NEmbd, hp.NEmbd),
			FFNNorm:  mk(n("ffn_norm.weight"), 0, hp.NEmbd),
			Gate:     mk(n("ffn_gate.weight"), in, hp.NEmbd, hp.NFF),
			Up:       mk(n("ffn_up.weight"), in, hp.NEmbd, hp.NFF),
			Down:     mk(n("ffn_down.weight"), ff, hp.NFF, hp.NEmbd),
		})
	}
	var err error
	if m.buf, err = be.AllocTensors(m.ctx); err != nil {
		m.ctx.Close()
		return nil, err
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
