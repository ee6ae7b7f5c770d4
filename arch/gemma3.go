package arch

import (
	"math"

	"github.com/calft/calft/gguf"
)

// gemma3 (the text half of Gemma 3 VLMs), after llama.cpp's src/models/gemma3.cpp and
// its tensors in llama_model::load_tensors: token rows scaled by √n_embd, RMSNorm before
// and after attention and before and after the feed-forward (the norm weights are
// stored as 1+w and multiplied as stored), an RMSNorm per head on queries and keys
// before NeoX RoPE, a GELU(tanh)-gated feed-forward, and sliding-window attention on
// five of every six layers (with their own RoPE base and no scaling) when the file sets
// attention.sliding_window. The output layer is usually tied.
func init() {
	register(&Arch{
		Name:    "gemma3",
		Rope:    RopeNeoX,
		Global:  commonGlobals(),
		Layer:   gemma3Block(),
		HParams: gemma3HParams,
	})
}

// Gemma3SWAPattern is llama.cpp's set_swa_pattern(6) for gemma3: layer il attends
// through a sliding window unless il % 6 == 5.
const Gemma3SWAPattern = 6

// gemma3Block lists a block's tensors in llama.cpp's order.
func gemma3Block() []Tensor {
	return []Tensor{
		{Name: "attn_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "attn_q.weight", Shape: qMatrix, Target: "attn_q"},
		{Name: "attn_k.weight", Shape: kvMatrix, Target: "attn_k"},
		{Name: "attn_v.weight", Shape: kvMatrix, Target: "attn_v"},
		{Name: "attn_output.weight", Shape: outMatrix, Target: "attn_output", Fill: FillResidual},
		{Name: "post_attention_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "attn_k_norm.weight", Shape: headVector, Fill: FillNorm, F32: true},
		{Name: "attn_q_norm.weight", Shape: headVector, Fill: FillNorm, F32: true},
		{Name: "ffn_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "ffn_gate.weight", Shape: ffnIn, Target: "ffn_gate"},
		{Name: "ffn_up.weight", Shape: ffnIn, Target: "ffn_up"},
		{Name: "ffn_down.weight", Shape: ffnOut, Target: "ffn_down", Fill: FillResidual},
		{Name: "post_ffw_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
	}
}

func headVector(hp *HParams) []int { return []int{hp.HeadDim} }

// gemma3HParams reads the keys llama.cpp's loader reads for gemma3 beyond the generic
// ones: the sliding window (which also gives the sliding layers RoPE base 10000 without
// scaling), the final-logit soft-capping (refused: its tanh has no backward in ggml and
// Gemma 3 has none), and the attention scale.
func gemma3HParams(r *keyReader, hp *HParams) error {
	swa, err := r.u32("attention.sliding_window", 0)
	if err != nil {
		return err
	}
	if swa > 0 {
		hp.SWA, hp.SWAPattern = swa, Gemma3SWAPattern
		hp.RopeSWA = hp.Rope
		hp.RopeSWA.Base, hp.RopeSWA.FreqScale = 10000, 1
	}
	softcap, err := r.f32("final_logit_softcapping", 0)
	if err != nil {
		return err
	}
	if softcap != 0 {
		return gguf.Errorf(r.f.Path, gguf.ErrUnsupported, "%s is %v: calft's decoder does not implement final-logit soft-capping (Gemma 3 has none)", r.key("final_logit_softcapping"), softcap)
	}
	// llama.cpp: 1/√key_length, except the 27B (62 layers): 1/√(n_embd/n_head).
	hp.QScale = float32(1 / math.Sqrt(float64(hp.HeadDim)))
	if hp.NLayer == 62 {
		hp.QScale = float32(1 / math.Sqrt(float64(hp.NEmbd/hp.NHead)))
	}
	hp.EmbdScale = float32(math.Sqrt(float64(hp.NEmbd)))
	return nil
}
