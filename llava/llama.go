package llava

import "github.com/calft/calft/bindings/ggml"

// The llama family (llama 1-3, mistral, SmolLM): RMSNorm, RoPE on adjacent pairs, GQA,
// SwiGLU, optional tied output, no q/k/v biases.
func init() { families["llama"] = family{ropeMode: ggml.RopeNormal} }
