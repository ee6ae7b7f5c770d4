package tiny

import (
	"fmt"
	"math"
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
	lin := func(nIn, nOut int, gain float64) []float32 {
		return normal(rng, nIn*nOut, gain/math.Sqrt(float64(nIn)))
	}
	bias := func(n int) []float32 { return normal(rng, n, 0.02) }
	norm := func(n int) []float32 { return around(rng, n, 1, normJitter) }
	type tensor struct {
		name   string
		shape  []uint64
		values []float32
	}
	layerNorm := func(name string, n int) []tensor {
		return []tensor{{name + ".weight", []uint64{uint64(n)}, norm(n)}, {name + ".bias", []uint64{uint64(n)}, bias(n)}}
	}
	ts := []tensor{
		{"v.patch_embd.weight", []uint64{p, p, 3, e}, lin(p*p*3, e, 1)},
		{"v.patch_embd.weight.1", []uint64{p, p, 3, e}, lin(p*p*3, e, 1)},
		{"v.patch_embd.bias", []uint64{e}, bias(e)},
		{"v.position_embd.weight", []uint64{e, side * side}, normal(rng, e*side*side, 0.2)},
	}
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		ts = append(ts, layerNorm(b("ln1"), e)...)
		ts = append(ts,
			tensor{b("attn_qkv.weight"), []uint64{e, 3 * e}, lin(e, 3*e, 1)},
			tensor{b("attn_qkv.bias"), []uint64{3 * e}, bias(3 * e)},
			tensor{b("attn_out.weight"), []uint64{e, e}, lin(e, e, residualGain)},
			tensor{b("attn_out.bias"), []uint64{e}, bias(e)})
		ts = append(ts, layerNorm(b("ln2"), e)...)
		ts = append(ts,
			tensor{b("ffn_up.weight"), []uint64{e, ff}, lin(e, ff, 1)},
			tensor{b("ffn_up.bias"), []uint64{ff}, bias(ff)},
			tensor{b("ffn_down.weight"), []uint64{ff, e}, lin(ff, e, residualGain)},
			tensor{b("ffn_down.bias"), []uint64{e}, bias(e)})
		if i < Qwen3VLDeepstack {
			d := func(s string) string { return fmt.Sprintf("v.deepstack.%d.%s", i, s) }
			ts = append(ts, layerNorm(d("norm"), m)...)
			ts = append(ts,
				tensor{d("fc1.weight"), []uint64{m, m}, lin(m, m, 1)},
				tensor{d("fc1.bias"), []uint64{m}, bias(m)},
				tensor{d("fc2.weight"), []uint64{m, uint64(nText)}, lin(m, nText, 1)},
				tensor{d("fc2.bias"), []uint64{uint64(nText)}, bias(nText)})
		}
	}
	ts = append(ts, layerNorm("v.post_ln", e)...)
	ts = append(ts,
		tensor{"mm.0.weight", []uint64{m, m}, lin(m, m, 1)},
		tensor{"mm.0.bias", []uint64{m}, bias(m)},
		tensor{"mm.2.weight", []uint64{m, uint64(nText)}, lin(m, nText, 1)},
		tensor{"mm.2.bias", []uint64{uint64(nText)}, bias(nText)})
	w := gguf.NewWriter()
	setMmprojMetadata(w, nText)
	w.Set("general.name", gguf.StringValue("calft tiny "+ProjQwen3VL))
	w.Delete("clip.has_llava_projector")
	w.Set("clip.projector_type", gguf.StringValue(ProjQwen3VL))
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
	for _, t := range ts {
		if err := w.AddTensorF32(t.name, gguf.F32, t.shape, t.values); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}
