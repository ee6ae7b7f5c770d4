package arch

import "github.com/calft/calft/gguf"

// qwen2vl (the text half of Qwen2-VL and Qwen2.5-VL), after llama.cpp's
// src/models/qwen2vl.cpp: qwen2's block, whose q/k/v biases the builder adds
// unconditionally (so they are required here), with multimodal RoPE
// (ggml_rope_multi, GGML_ROPE_TYPE_MROPE): each row has four positions (time,
// height, width, unused) and rope.dimension_sections say which of a head's rotated
// pairs take which. Text rows have (p, p, p, 0); image rows (t, t+row, t+column, 0).
// The loader reads an output.bias for qwen2 files but this builder never adds it, so
// a file with one is refused rather than silently run without it.
func init() {
	register(&Arch{
		Name:   "qwen2vl",
		Rope:   RopeMRoPE,
		Global: commonGlobals(),
		Layer:  blockTensors(blockOptions{attnBias: true, biasNeeded: true}),
		Check: func(f *gguf.File, hp *HParams) error {
			if hp.QDim() != hp.NEmbd {
				return gguf.Errorf(f.Path, gguf.ErrUnsupported, "qwen2vl queries must be n_embd %d wide, but head width %d × %d heads = %d (llama.cpp's qwen2vl loader needs them equal)", hp.NEmbd, hp.HeadDim, hp.NHead, hp.QDim())
			}
			return nil
		},
	})
}
