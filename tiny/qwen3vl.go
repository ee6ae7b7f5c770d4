package tiny

import (
	"fmt"
	"math/rand/v2"

	"github.com/calft/calft/gguf"
)

// writeQwen3VLMmproj writes a Qwen3-VL ("qwen3vl_merger") vision tower with the tensors
// mtmd's clip loader and its qwen3vl graph read: the two temporal slices of the patch
// convolution with a bias, a learned position embedding (one row per patch of an
// ImageSize image, interpolated by mtmd for other sizes), VisionLayers LayerNorm blocks
// with a fused qkv projection and a GELU feed-forward, the merger's norm (post_ln), then
// mm.0 over each 2×2 group of patches [4e, 4e], GELU, mm.2 [4e, n_text]. Each of the
// Qwen3VLDeepstack first blocks also feeds a deepstack merger (v.deepstack.N: LayerNorm
// over the 2×2 group, fc1, GELU, fc2 to n_text) whose output mtmd appends to each image
// row, so rows are n_text × (1 + Qwen3VLDeepstack) wide.
func writeQwen3VLMmproj(path string, nText int, rng *rand.Rand) error {
	const e, ff, p = VisionWidth, VisionFF, QwenPatchSize
	const m = 4 * e // a 2×2 group of patches
	const side = ImageSize / p
	w := projectorWriter(nText, ProjQwen3VL)
	w.Set("clip.vision.patch_size", gguf.Uint32Value(p))
	w.Set("clip.vision.spatial_merge_size", gguf.Uint32Value(QwenMerge))
	w.Set("clip.use_gelu", gguf.BoolValue(true))
	// Real files list which vision blocks feed deepstack; mtmd finds them by their
	// tensors, calft's check as well.
	deep := make([]bool, VisionLayers)
	for i := range deep {
		deep[i] = i < Qwen3VLDeepstack
	}
	w.Set("clip.vision.is_deepstack_layers", gguf.ArrayValue(deep))

	v := &vit{w: w, rng: rng}
	v.add("v.patch_embd.weight", []uint64{p, p, 3, e}, v.lin(p*p*3, e, 1))
	v.add("v.patch_embd.weight.1", []uint64{p, p, 3, e}, v.lin(p*p*3, e, 1))
	v.add("v.patch_embd.bias", []uint64{e}, v.bias(e))
	v.add("v.position_embd.weight", []uint64{e, side * side}, normal(rng, e*side*side, 0.2))
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		v.layerNorm(b("ln1"), e)
		v.linear(b("attn_qkv"), e, 3*e, 1)
		v.linear(b("attn_out"), e, e, residualGain)
		v.layerNorm(b("ln2"), e)
		v.linear(b("ffn_up"), e, ff, 1)
		v.linear(b("ffn_down"), ff, e, residualGain)
		if i < Qwen3VLDeepstack {
			d := func(s string) string { return fmt.Sprintf("v.deepstack.%d.%s", i, s) }
			v.layerNorm(d("norm"), m)
			v.linear(d("fc1"), m, m, 1)
			v.linear(d("fc2"), m, nText, 1)
		}
	}
	v.layerNorm("v.post_ln", e)
	v.linear("mm.0", m, m, 1)
	v.linear("mm.2", m, nText, 1)
	return v.done(path)
}
