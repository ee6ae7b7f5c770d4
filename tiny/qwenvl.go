package tiny

import (
	"fmt"
	"math"
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
	ts := []tensor{
		{"v.patch_embd.weight", []uint64{p, p, 3, e}, lin(p*p*3, e, 1)},
		{"v.patch_embd.weight.1", []uint64{p, p, 3, e}, lin(p*p*3, e, 1)},
	}
	normT := func(name string) []tensor {
		out := []tensor{{name + ".weight", []uint64{e}, norm(e)}}
		if !v25 { // LayerNorm has a bias, Qwen2.5-VL's RMSNorm none
			out = append(out, tensor{name + ".bias", []uint64{e}, bias(e)})
		}
		return out
	}
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		ts = append(ts, normT(b("ln1"))...)
		for _, m := range []string{"attn_q", "attn_k", "attn_v"} {
			ts = append(ts, tensor{b(m + ".weight"), []uint64{e, e}, lin(e, e, 1)}, tensor{b(m + ".bias"), []uint64{e}, bias(e)})
		}
		ts = append(ts,
			tensor{b("attn_out.weight"), []uint64{e, e}, lin(e, e, residualGain)},
			tensor{b("attn_out.bias"), []uint64{e}, bias(e)})
		ts = append(ts, normT(b("ln2"))...)
		if v25 {
			ts = append(ts, tensor{b("ffn_gate.weight"), []uint64{e, ff}, lin(e, ff, 1)}, tensor{b("ffn_gate.bias"), []uint64{ff}, bias(ff)})
		}
		ts = append(ts,
			tensor{b("ffn_up.weight"), []uint64{e, ff}, lin(e, ff, 1)},
			tensor{b("ffn_up.bias"), []uint64{ff}, bias(ff)},
			tensor{b("ffn_down.weight"), []uint64{ff, e}, lin(ff, e, residualGain)},
			tensor{b("ffn_down.bias"), []uint64{e}, bias(e)})
	}
	ts = append(ts, normT("v.post_ln")...)
	const m = 4 * e // a 2×2 group of patches
	ts = append(ts,
		tensor{"mm.0.weight", []uint64{m, m}, lin(m, m, 1)},
		tensor{"mm.0.bias", []uint64{m}, bias(m)},
		tensor{"mm.2.weight", []uint64{m, uint64(nText)}, lin(m, nText, 1)},
		tensor{"mm.2.bias", []uint64{uint64(nText)}, bias(nText)})
	w := gguf.NewWriter()
	setMmprojMetadata(w, nText)
	w.Set("general.name", gguf.StringValue("calft tiny "+proj))
	w.Delete("clip.has_llava_projector")
	w.Set("clip.projector_type", gguf.StringValue(proj))
	w.Set("clip.vision.patch_size", gguf.Uint32Value(p))
	w.Set("clip.vision.spatial_merge_size", gguf.Uint32Value(QwenMerge))
	if v25 {
		w.Set("clip.use_silu", gguf.BoolValue(true))
		w.Set("clip.vision.n_wa_pattern", gguf.Uint32Value(QwenWindowPat))
	}
	for _, t := range ts {
		if err := w.AddTensorF32(t.name, gguf.F32, t.shape, t.values); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}
