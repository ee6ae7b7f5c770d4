package tiny

import (
	"fmt"
	"math/rand/v2"

	"github.com/calft/calft/gguf"
)

// writeQwenMmproj writes a Qwen2-VL ("qwen2vl_merger") or Qwen2.5-VL
// ("qwen2.5vl_merger") vision tower with the tensors mtmd's clip loader and graph
// read for them: the two temporal slices of the patch convolution (no bias, no class
// or position embedding: the ViT uses 2-D RoPE), VisionLayers blocks with q/k/v/out
// biases, the merger's norm (post_ln), then mm.0 over each 2×2 group of patches
// [4n, 4n], GELU, mm.2 [4n, n_text]. Qwen2-VL's blocks use LayerNorm and a GELU
// (quick) feed-forward; Qwen2.5-VL's RMSNorm, a SiLU-gated feed-forward and window
// attention (clip.vision.n_wa_pattern).
func writeQwenMmproj(path, proj string, nText int, rng *rand.Rand) error {
	v25 := proj == ProjQwen25VL
	const e, ff, p = VisionWidth, VisionFF, QwenPatchSize
	const m = 4 * e // a 2×2 group of patches
	w := projectorWriter(nText, proj)
	w.Set("clip.vision.patch_size", gguf.Uint32Value(p))
	w.Set("clip.vision.spatial_merge_size", gguf.Uint32Value(QwenMerge))
	if v25 {
		w.Set("clip.use_silu", gguf.BoolValue(true))
		w.Set("clip.vision.n_wa_pattern", gguf.Uint32Value(QwenWindowPat))
	}

	v := &vit{w: w, rng: rng}
	norm := func(name string) {
		if v25 { // Qwen2.5-VL's RMSNorm has no bias
			v.add(name+".weight", []uint64{e}, v.norm(e))
		} else {
			v.layerNorm(name, e)
		}
	}
	v.add("v.patch_embd.weight", []uint64{p, p, 3, e}, v.lin(p*p*3, e, 1))
	v.add("v.patch_embd.weight.1", []uint64{p, p, 3, e}, v.lin(p*p*3, e, 1))
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		norm(b("ln1"))
		for _, n := range []string{"attn_q", "attn_k", "attn_v"} {
			v.linear(b(n), e, e, 1)
		}
		v.linear(b("attn_out"), e, e, residualGain)
		norm(b("ln2"))
		if v25 {
			v.linear(b("ffn_gate"), e, ff, 1)
		}
		v.linear(b("ffn_up"), e, ff, 1)
		v.linear(b("ffn_down"), ff, e, residualGain)
	}
	norm("v.post_ln")
	v.linear("mm.0", m, m, 1)
	v.linear("mm.2", m, nText, 1)
	return v.done(path)
}
