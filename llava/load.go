package llava

import (
	"fmt"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/gguf"
)

// family describes what differs between supported architectures; each lives in its own
// small file (llama.go, qwen2.go) and registers itself here.
type family struct {
	ropeMode int
	biases   bool // q/k/v carry biases
}

var families = map[string]family{}

// Supported lists the architectures the decoder graph implements.
func Supported() []string {
	out := make([]string, 0, len(families))
	for a := range families {
		out = append(out, a)
	}
	return out
}

// ReadHParams reads the decoder's hyper-parameters from an open GGUF.
func ReadHParams(f *gguf.File) (HParams, error) {
	var hp HParams
	arch, err := f.String("general.architecture")
	if err != nil {
		return hp, err
	}
	fam, ok := families[arch]
	if !ok {
		return hp, fmt.Errorf("%s: architecture %q is not supported by calft's decoder yet (supported: %v)", f.Path, arch, Supported())
	}
	hp.Arch = arch
	hp.RopeMode = fam.ropeMode
	geti := func(key string, dst *int, def int) error {
		k := arch + "." + key
		if !f.Has(k) && def >= 0 {
			*dst = def
			return nil
		}
		v, err := f.Integer(k)
		*dst = int(v)
		return err
	}
	getf := func(key string, dst *float32, def float32) error {
		k := arch + "." + key
		if !f.Has(k) {
			*dst = def
			return nil
		}
		v, err := f.Float32(k)
		*dst = v
		return err
	}
	for _, e := range []error{
		geti("embedding_length", &hp.NEmbd, -1),
		geti("block_count", &hp.NLayer, -1),
		geti("feed_forward_length", &hp.NFF, -1),
		geti("attention.head_count", &hp.NHead, -1),
		geti("context_length", &hp.NCtxTrain, -1),
		getf("attention.layer_norm_rms_epsilon", &hp.RMSEps, 1e-5),
		getf("rope.freq_base", &hp.RopeBase, 10000),
	} {
		if e != nil {
			return hp, e
		}
	}
	if err := geti("attention.head_count_kv", &hp.NHeadKV, hp.NHead); err != nil {
		return hp, err
	}
	hp.HeadDim = hp.NEmbd / max(hp.NHead, 1)
	if err := geti("rope.dimension_count", &hp.RopeDims, hp.HeadDim); err != nil {
		return hp, err
	}
	hp.RopeScale = 1
	if f.Has(arch + ".rope.scaling.factor") {
		var factor float32
		if err := getf("rope.scaling.factor", &factor, 1); err != nil {
			return hp, err
		}
		if factor > 0 {
			hp.RopeScale = 1 / factor
		}
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return hp, fmt.Errorf("%s: no token_embd.weight tensor; this is not a text model", f.Path)
	}
	hp.NVocab = int(emb.Dim(1))
	_, hasOut := f.Tensor("output.weight")
	hp.Tied = !hasOut
	if err := hp.Validate(); err != nil {
		return hp, fmt.Errorf("%s: %w", f.Path, err)
	}
	return hp, nil
}

// Model is a text decoder's frozen weights resident on a backend.
type Model struct {
	Path string
	HP   HParams
	W    Weights

	ctx *ggml.Context
	buf *ggml.Buffer
}

// Close frees the weights.
func (m *Model) Close() {
	m.buf.Close()
	m.ctx.Close()
}

// LoadOptions control how Load places the weights.
type LoadOptions struct {
	// Trainable prepares the weights for a backward pass. The backward of a product with
	// a frozen weight W is ggml's out_prod(W, dY), and what out_prod accepts sets what a
	// training graph can run on:
	//   - F32: always (every backend).
	//   - quantized types (Q8_0, Q4_0, K-quants, …): on the CPU backend, which dequantizes
	//     rows inside out_prod; GPU backends' out_prod takes F32 only.
	//   - F16 and BF16: never (the CPU kernel aborts), so Trainable converts them to F32 on
	//     load, at twice the memory. token_embd is converted only when it is also the
	//     output layer (tied): otherwise it feeds get_rows alone, which needs no out_prod.
	// Without Trainable every tensor keeps its file type, which is right for inference.
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

// LoadWith reads a GGUF text model onto backend be as opt says.
func LoadWith(path string, be *ggml.Backend, opt LoadOptions) (*Model, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hp, err := ReadHParams(f)
	if err != nil {
		return nil, err
	}
	fam := families[hp.Arch]
	m := &Model{Path: path, HP: hp}
	m.ctx = ggml.NewContext((len(f.Tensors)+8)*ggml.TensorOverhead(), true)

	var names []string
	convert := map[string]bool{}
	declare := func(name string, optional bool, want ...int) (ggml.Tensor, error) {
		ti, ok := f.Tensor(name)
		if !ok {
			if optional {
				return ggml.Tensor{}, nil
			}
			return ggml.Tensor{}, fmt.Errorf("%s: tensor %s is missing; the file is not a complete %s model", path, name, hp.Arch)
		}
		ne := make([]int, len(ti.Shape))
		for i, d := range ti.Shape {
			ne[i] = int(d)
		}
		if !sameShape(ne, want) {
			return ggml.Tensor{}, fmt.Errorf("%s: tensor %s has shape %v, the hyper-parameters need %v", path, name, ne, want)
		}
		names = append(names, name)
		typ := ggml.Type(ti.Type)
		if opt.toF32(name, ti.Type, hp.Tied) {
			convert[name] = true
			typ = ggml.TypeF32
		}
		return m.ctx.NewTensor(typ, ne...).SetName(name), nil
	}
	nKV := hp.NHeadKV * hp.HeadDim
	must := func(t ggml.Tensor, e error) ggml.Tensor {
		if err == nil {
			err = e
		}
		return t
	}
	m.W.TokEmbd = must(declare("token_embd.weight", false, hp.NEmbd, hp.NVocab))
	m.W.OutNorm = must(declare("output_norm.weight", false, hp.NEmbd))
	if hp.Tied {
		m.W.Output = m.W.TokEmbd
	} else {
		m.W.Output = must(declare("output.weight", false, hp.NEmbd, hp.NVocab))
	}
	for il := 0; il < hp.NLayer; il++ {
		n := func(s string) string { return fmt.Sprintf("blk.%d.%s", il, s) }
		var l Layer
		l.AttnNorm = must(declare(n("attn_norm.weight"), false, hp.NEmbd))
		l.Wq = must(declare(n("attn_q.weight"), false, hp.NEmbd, hp.NEmbd))
		l.Wk = must(declare(n("attn_k.weight"), false, hp.NEmbd, nKV))
		l.Wv = must(declare(n("attn_v.weight"), false, hp.NEmbd, nKV))
		l.Wo = must(declare(n("attn_output.weight"), false, hp.NEmbd, hp.NEmbd))
		l.Bq = must(declare(n("attn_q.bias"), !fam.biases, hp.NEmbd))
		l.Bk = must(declare(n("attn_k.bias"), !fam.biases, nKV))
		l.Bv = must(declare(n("attn_v.bias"), !fam.biases, nKV))
		l.Bo = must(declare(n("attn_output.bias"), true, hp.NEmbd))
		l.FFNNorm = must(declare(n("ffn_norm.weight"), false, hp.NEmbd))
		l.Gate = must(declare(n("ffn_gate.weight"), false, hp.NEmbd, hp.NFF))
		l.Up = must(declare(n("ffn_up.weight"), false, hp.NEmbd, hp.NFF))
		l.Down = must(declare(n("ffn_down.weight"), false, hp.NFF, hp.NEmbd))
		m.W.Layers = append(m.W.Layers, l)
	}
	if err != nil {
		m.ctx.Close()
		return nil, err
	}
	if m.buf, err = be.AllocTensors(m.ctx); err != nil {
		m.ctx.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range names {
		if convert[name] {
			v, err := f.TensorF32(name)
			if err != nil {
				m.Close()
				return nil, err
			}
			m.tensor(name).SetF32(v)
			continue
		}
		data, err := f.TensorData(name)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.tensor(name).SetBytes(data, 0)
	}
	return m, nil
}

// tensor finds a weight by GGUF name.
func (m *Model) tensor(name string) ggml.Tensor {
	for _, t := range m.W.all() {
		if !t.Nil() && t.Name() == name {
			return t
		}
	}
	panic("llava: no weight " + name)
}

// all lists every weight tensor (some may be the zero Tensor).
func (w *Weights) all() []ggml.Tensor {
	out := []ggml.Tensor{w.TokEmbd, w.OutNorm, w.Output}
	for _, l := range w.Layers {
		out = append(out, l.AttnNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.Bq, l.Bk, l.Bv, l.Bo, l.FFNNorm, l.Gate, l.Up, l.Down)
	}
	return out
}

func sameShape(ne, want []int) bool {
	if len(ne) != len(want) {
		return false
	}
	for i := range ne {
		if ne[i] != want[i] {
			return false
		}
	}
	return true
}
