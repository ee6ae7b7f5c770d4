package llava

import "github.com/calft/calft/bindings/ggml"

// qwen2: the llama block with q/k/v biases and RoPE on the two halves of each head (neox).
func init() { families["qwen2"] = family{ropeMode: ggml.RopeNeox, biases: true} }
