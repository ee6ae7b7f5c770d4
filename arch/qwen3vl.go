package arch

import "github.com/calft/calft/gguf"

// qwen3vl (the text half of Qwen3-VL), after llama.cpp's src/models/qwen3vl.cpp: qwen3's
// block (no biases, an RMSNorm per head on queries and keys before RoPE), interleaved
// multimodal RoPE (GGML_ROPE_TYPE_IMROPE: four positions per row, as Qwen2-VL's, with the
// pairs cycling through time, height and width), and deepstack: an image row's input is
// n_embd × (1 + n_deepstack_layers) wide, its first n_embd the embedding, slice i+1 added
// to the row's hidden state after block i. Head width is attention.key_length (128 in the
// real models, which need not be n_embd/n_head) and every rotated pair of it.
func init() {
	register(&Arch{
		Name:    "qwen3vl",
		Rope:    RopeIMRoPE,
		Global:  commonGlobals(),
		Layer:   qwen3Block(),
		HParams: qwen3vlHParams,
		Check: func(f *gguf.File, hp *HParams) error {
			if hp.Rope.Dims != hp.HeadDim {
				return gguf.Errorf(f.Path, gguf.ErrUnsupported, "rotates %d of the head's %d dimensions; llama.cpp's qwen3vl builder requires all of them (rope.dimension_count = attention.key_length)", hp.Rope.Dims, hp.HeadDim)
			}
			return nil
		},
	})
}

// qwen3Block is a qwen3 block in llama.cpp's tensor order: no biases, per-head q/k norms.
func qwen3Block() []Tensor {
	return []Tensor{
		{Name: "attn_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "attn_q.weight", Shape: qMatrix, Target: "attn_q"},
		{Name: "attn_k.weight", Shape: kvMatrix, Target: "attn_k"},
		{Name: "attn_v.weight", Shape: kvMatrix, Target: "attn_v"},
		{Name: "attn_output.weight", Shape: outMatrix, Target: "attn_output", Fill: FillResidual},
		{Name: "attn_k_norm.weight", Shape: headVector, Fill: FillNorm, F32: true},
		{Name: "attn_q_norm.weight", Shape: headVector, Fill: FillNorm, F32: true},
		{Name: "ffn_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "ffn_gate.weight", Shape: ffnIn, Target: "ffn_gate"},
		{Name: "ffn_up.weight", Shape: ffnIn, Target: "ffn_up"},
		{Name: "ffn_down.weight", Shape: ffnOut, Target: "ffn_down", Fill: FillResidual},
	}
}

// qwen3vlHParams reads n_deepstack_layers (optional, 0 by default, as llama.cpp reads it);
// deepstack slices are added after the first blocks, and never after the last one.
func qwen3vlHParams(r *keyReader, hp *HParams) error {
	n, err := r.u32("n_deepstack_layers", 0)
	if err != nil {
		return err
	}
	if n >= hp.NLayer {
		// llama.cpp keeps only the output rows after the last block, then adds the
		// slice of every row: a slice into the last block aborts it (ggml_can_repeat).
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s %d is not below the %d blocks (llama.cpp aborts when the last block takes a deepstack slice); %s", r.key("n_deepstack_layers"), n, hp.NLayer, adviceReconvert)
	}
	hp.Deepstack = n
	return nil
}
