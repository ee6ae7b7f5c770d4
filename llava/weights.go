package llava

import (
	"fmt"
	"reflect"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
)

// Layer holds one decoder block's frozen weights, each field tagged with its GGUF name
// (without "blk.N."). A tensor the file does not have is the zero Tensor, and the
// decoder leaves its op out, as llama.cpp's builder does.
type Layer struct {
	AttnNorm ggml.Tensor `gguf:"attn_norm.weight"`
	Wq       ggml.Tensor `gguf:"attn_q.weight"`
	Wk       ggml.Tensor `gguf:"attn_k.weight"`
	Wv       ggml.Tensor `gguf:"attn_v.weight"`
	Bq       ggml.Tensor `gguf:"attn_q.bias"`
	Bk       ggml.Tensor `gguf:"attn_k.bias"`
	Bv       ggml.Tensor `gguf:"attn_v.bias"`
	Wo       ggml.Tensor `gguf:"attn_output.weight"`
	Bo       ggml.Tensor `gguf:"attn_output.bias"`
	FFNNorm  ggml.Tensor `gguf:"ffn_norm.weight"`
	Gate     ggml.Tensor `gguf:"ffn_gate.weight"`
	Up       ggml.Tensor `gguf:"ffn_up.weight"`
	Down     ggml.Tensor `gguf:"ffn_down.weight"`
	GateB    ggml.Tensor `gguf:"ffn_gate.bias"`
	UpB      ggml.Tensor `gguf:"ffn_up.bias"`
	DownB    ggml.Tensor `gguf:"ffn_down.bias"`
	// gemma3's extra norms.
	PostAttnNorm ggml.Tensor `gguf:"post_attention_norm.weight"`
	QNorm        ggml.Tensor `gguf:"attn_q_norm.weight"`
	KNorm        ggml.Tensor `gguf:"attn_k_norm.weight"`
	PostFFNNorm  ggml.Tensor `gguf:"post_ffw_norm.weight"`
}

// Weights are the decoder's frozen tensors, tagged with their GGUF names.
type Weights struct {
	Arch      *arch.Arch
	TokEmbd   ggml.Tensor `gguf:"token_embd.weight"`
	OutNorm   ggml.Tensor `gguf:"output_norm.weight"`
	Output    ggml.Tensor `gguf:"output.weight"` // TokEmbd when tied
	OutputB   ggml.Tensor `gguf:"output.bias"`
	RopeFreqs ggml.Tensor `gguf:"rope_freqs.weight"`
	Layers    []Layer
}

// slot returns the field of w that holds the tensor a spec describes. Every tensor of
// every architecture's description has one (TestEveryTensorHasAField).
func (w *Weights) slot(s arch.Spec) (*ggml.Tensor, error) {
	v := reflect.ValueOf(w).Elem()
	name := s.Name
	if s.Layer >= 0 {
		if s.Layer >= len(w.Layers) {
			return nil, fmt.Errorf("llava: %s is past the %d layers", s.Name, len(w.Layers))
		}
		v = reflect.ValueOf(&w.Layers[s.Layer]).Elem()
		name = s.Tensor.Name
	}
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("gguf") == name {
			return v.Field(i).Addr().Interface().(*ggml.Tensor), nil
		}
	}
	return nil, fmt.Errorf("llava: the decoder has no field for tensor %s of architecture %s", s.Name, w.Arch.Name)
}

// Matrix is a frozen matrix the decoder multiplies with: a block's projection (which
// may carry a LoRA adapter: Target names its kind) or the output layer.
type Matrix struct {
	Name   string
	Target string // LoRA target kind ("attn_q", …), "" for the output layer
	T      *ggml.Tensor
}

// Matrices lists the block projections, layer by layer in the description's order, then
// the output layer.
func (w *Weights) Matrices() []Matrix {
	var out []Matrix
	for il := range w.Layers {
		for _, t := range w.Arch.Layer {
			if t.Target == "" {
				continue
			}
			s := arch.Spec{Tensor: t, Name: arch.LayerName(il, t.Name), Layer: il}
			p, err := w.slot(s)
			if err != nil {
				panic(err) // the description and Layer disagree: a programming error
			}
			out = append(out, Matrix{Name: s.Name, Target: t.Target, T: p})
		}
	}
	return append(out, Matrix{Name: "output.weight", T: &w.Output})
}

// CheckFields reports a tensor of the weights' architecture that has no field (a test
// of the description against the decoder).
func CheckFields(w *Weights, hp *arch.HParams) error {
	for _, s := range w.Arch.Specs(hp) {
		if _, err := w.slot(s); err != nil {
			return err
		}
	}
	return nil
}
