package llava

import (
	"fmt"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/gguf"
)

// Model is a text decoder's frozen weights resident on a backend.
type Model struct {
	Path string
	HP   arch.HParams
	W    Weights

	ctx *ggml.Context
	buf *ggml.Buffer
}

// Bytes is the weights' memory.
func (m *Model) Bytes() int { return m.buf.Size() }

// Close frees the weights.
func (m *Model) Close() {
	m.buf.Close()
	m.ctx.Close()
}

// LoadOptions control how Load places the weights.
type LoadOptions struct {
	// Trainable prepares the weights for ggml's own backward products (training with
	// backward weights "autodiff"): its out_prod accepts F32 and, on the CPU, quantized
	// weights, but aborts on F16 and BF16, so Trainable converts those to F32 on load, at
	// twice the memory (token_embd only when it is also the output layer). Training
	// otherwise multiplies the backward pass with transposed copies or tiles of the
	// weights as stored, and every tensor keeps its file type.
	Trainable bool
}

// Load reads a GGUF text model onto backend be, keeping every tensor's type.
func Load(path string, be *ggml.Backend) (*Model, error) {
	return LoadWith(path, be, LoadOptions{})
}

// toF32 reports whether LoadWith converts a tensor of type t to F32 (see LoadOptions).
func (o LoadOptions) toF32(name string, t gguf.DType, tied bool) bool {
	if !o.Trainable || (t != gguf.F16 && t != gguf.BF16) {
		return false
	}
	return name != "token_embd.weight" || tied
}

// LoadWith reads a GGUF text model onto backend be as opt says. The file is read through
// its architecture's description (package arch): the hyper-parameters libllama reads,
// every tensor checked for presence, shape and type, nothing the decoder does not
// implement.
func LoadWith(path string, be *ggml.Backend, opt LoadOptions) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hp, err := arch.ReadHParams(f)
	if err != nil {
		return nil, err
	}
	a, err := arch.Lookup(hp.Arch)
	if err != nil {
		return nil, err
	}
	if err := a.CheckTensors(f, hp); err != nil {
		return nil, err
	}
	m := &Model{Path: path, HP: *hp}
	m.W = Weights{Arch: a, Layers: make([]Layer, hp.NLayer)}
	m.ctx = ggml.NewContext((len(f.Tensors)+8)*ggml.TensorOverhead(), true)
	byName := map[string]ggml.Tensor{}
	convert := map[string]bool{}
	for _, s := range a.Specs(hp) {
		ti, ok := f.Tensor(s.Name)
		if !ok {
			continue // optional: CheckTensors refused missing required ones
		}
		p, err := m.W.slot(s)
		if err != nil {
			m.ctx.Close()
			return nil, err
		}
		typ := ggml.Type(ti.Type)
		if opt.toF32(s.Name, ti.Type, hp.Tied) {
			convert[s.Name] = true
			typ = ggml.TypeF32
		}
		*p = m.ctx.NewTensor(typ, s.Shape...).SetName(s.Name)
		byName[s.Name] = *p
	}
	if hp.Tied {
		m.W.Output = m.W.TokEmbd
	}
	if m.buf, err = be.AllocTensors(m.ctx); err != nil {
		m.ctx.Close()
		return nil, fmt.Errorf("%s: the model's weights: %w", path, err)
	}
	for name, t := range byName {
		if err := fill(f, name, t, convert[name]); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// fill copies a tensor's bytes from the file, widened to F32 when convert says so.
func fill(f *gguf.File, name string, t ggml.Tensor, convert bool) error {
	if convert {
		v, err := f.TensorF32(name)
		if err != nil {
			return err
		}
		t.SetF32(v)
		return nil
	}
	data, err := f.TensorData(name)
	if err != nil {
		return err
	}
	t.SetBytes(data, 0)
	return nil
}
