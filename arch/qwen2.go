package arch

import "github.com/calft/calft/gguf"

// qwen2 (Qwen2, Qwen2.5, the text half of InternVL and MiniCPM-V), after llama.cpp's
// src/models/qwen2.cpp: the llama block with q/k/v biases, RoPE on the two halves of
// each head (NeoX), no attention-output or feed-forward biases, and an optional bias on
// the output layer. Its queries are n_embd wide (the loader's shapes assume head width
// × heads = n_embd).
func init() {
	register(&Arch{
		Name: "qwen2",
		Rope: RopeNeoX,
		Global: append(commonGlobals(),
			Tensor{Name: "output.bias", Shape: vocabVector, Optional: true, Fill: FillBias, F32: true}),
		Layer: blockTensors(blockOptions{attnBias: true}),
		Check: func(f *gguf.File, hp *HParams) error {
			if hp.QDim() != hp.NEmbd {
				return gguf.Errorf(f.Path, gguf.ErrUnsupported, "qwen2 queries must be n_embd %d wide, but head width %d × %d heads = %d (llama.cpp's qwen2 loader needs them equal)", hp.NEmbd, hp.HeadDim, hp.NHead, hp.QDim())
			}
			return nil
		},
	})
}
