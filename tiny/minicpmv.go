package tiny

import (
	"math"

	"github.com/calft/calft/gguf"
)

// FamilyMiniCPMV is MiniCPM-V 2.6's GGUF layout: qwen2 text with ChatML, no BOS added,
// the <image> </image> <slice> </slice> tokens mtmd looks up by their text, and a
// "resampler" projector with clip.minicpmv_version 3, as llama.cpp's
// minicpmv-convert-image-encoder-to-gguf.py writes it: a SigLIP ViT (patch bias, learned
// position embeddings for 70×70 buckets, feed-forward weights under the swapped fc1 →
// ffn_down, fc2 → ffn_up names, post-LayerNorm), then a one-layer cross-attention
// resampler whose MiniCPMVQueries learned queries attend to the patches (resampler.*).
// An image larger than the slice size (clip.vision.image_size) becomes an overview and
// slices, each its own image chunk of MiniCPMVQueries rows:
// <image>(overview)</image><slice>(slice)</slice><slice>(slice)</slice>\n<slice>… .
const FamilyMiniCPMV = "minicpmv"

// Sizes of the tiny MiniCPM-V format. The resampler splits its width into heads of 128
// (fixed in mtmd's graph), so the text model, whose width it must have, is 128 wide
// instead of NEmbd. A dataset image (ImageSize² pixels) is twice the slice size each
// way: mtmd makes a MiniCPMVSliceSize² overview and a 2×2 grid of slices, five chunks of
// MiniCPMVQueries rows.
const (
	MiniCPMVNEmbd     = 128
	MiniCPMVVersion   = 3  // clip.minicpmv_version of MiniCPM-V 2.6
	MiniCPMVQueries   = 64 // mtmd's query count for versions 3 to 6 (no clip.minicpmv_query_num key)
	MiniCPMVSliceSize = 16 // clip.vision.image_size: the overview's and each slice's size
	MiniCPMVPatch     = 4
	MiniCPMVSlices    = (ImageSize / MiniCPMVSliceSize) * (ImageSize / MiniCPMVSliceSize)
	MiniCPMVRows      = (1 + MiniCPMVSlices) * MiniCPMVQueries // rows of one dataset image
	// miniCPMVBuckets² learned position embeddings: mtmd maps each patch to one of them
	// (floor(70·i/n) per axis), whatever the slice's patch grid.
	miniCPMVBuckets = 70
	miniCPMVEps     = 1e-6
)

// miniCPMVTokens are the special tokens of MiniCPM-V's tokenizer that mtmd looks up (by
// their text) to lay out an image's overview and slices; "\n" between rows of slices is
// the byte token <0x0A> here.
var miniCPMVTokens = []string{"<image>", "</image>", "<slice>", "</slice>"}

// MiniCPMVChatTemplate is MiniCPM-V 2.6's template (Qwen2's ChatML with a default system
// turn). llama.cpp recognises it as ChatML by "<|im_start|>" and renders the turns
// without that default system turn.
const MiniCPMVChatTemplate = "{% for message in messages %}" +
	"{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}" +
	"{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// familyShape is the text model's shape for the family when Options.Text does not give
// one.
func (o Options) familyShape(sh TextShape) TextShape {
	if o.Family == FamilyMiniCPMV {
		sh.NEmbd = MiniCPMVNEmbd
	}
	return sh
}

// writeMiniCPMV writes MiniCPM-V 2.6's vision projector with the keys and tensor names
// of the real mmproj-model-f16.gguf (F32 here, as every tiny tower).
func writeMiniCPMV(path string, o Options) error {
	v, hp, err := newProjector(o, "resampler")
	if err != nil {
		return err
	}
	w := v.w
	w.Set("general.description", gguf.StringValue("image encoder for MiniCPM-V"))
	w.Set("clip.has_minicpmv_projector", gguf.BoolValue(true))
	w.Set("clip.minicpmv_version", gguf.Int32Value(MiniCPMVVersion))
	w.Set("clip.use_gelu", gguf.BoolValue(true))
	w.Set("clip.vision.image_size", gguf.Uint32Value(MiniCPMVSliceSize))
	w.Set("clip.vision.patch_size", gguf.Uint32Value(MiniCPMVPatch))
	w.Set("clip.vision.projection_dim", gguf.Uint32Value(0))
	w.Set("clip.vision.attention.layer_norm_epsilon", gguf.Float32Value(miniCPMVEps))
	half := []float32{0.5, 0.5, 0.5}
	w.Set("clip.vision.image_mean", gguf.ArrayValue(half))
	w.Set("clip.vision.image_std", gguf.ArrayValue(half))

	const e = VisionWidth
	nPos := miniCPMVBuckets * miniCPMVBuckets
	v.tower(towerShape{patch: MiniCPMVPatch, nPos: nPos, swappedFFN: true})
	v.layerNorm("v.post_ln", e)

	n := hp.NEmbd // the resampler's width: the text model's
	v.add("resampler.query", []uint64{uint64(n), MiniCPMVQueries}, normal(v.rng, n*MiniCPMVQueries, 1))
	v.add("resampler.kv.weight", []uint64{e, uint64(n)}, v.lin(e, n, 1))
	for _, m := range []string{"q", "k", "v"} {
		v.linear("resampler.attn."+m, n, n, 1)
	}
	v.linear("resampler.attn.out", n, n, 1)
	for _, m := range []string{"q", "kv", "post"} {
		v.layerNorm("resampler.ln_"+m, n)
	}
	v.add("resampler.proj.weight", []uint64{uint64(n), uint64(n)}, v.lin(n, n, 1))
	// The converter stores a 2-D sin-cos table for the keys' positions; mtmd loads it but
	// computes the embedding itself.
	v.add("resampler.pos_embed_k", []uint64{uint64(n), uint64(nPos)}, sinCos2D(n, miniCPMVBuckets))
	return v.done(path)
}

// sinCos2D is MAE's 2-D sin-cos position table of a side×side grid, dim values per
// position (rows of the grid outer): sin and cos of the column over the first half, of
// the row over the second (numpy's meshgrid puts the width first).
func sinCos2D(dim, side int) []float32 {
	quarter := dim / 4
	out := make([]float32, 0, dim*side*side)
	for r := 0; r < side; r++ {
		for c := 0; c < side; c++ {
			for _, pos := range []int{c, r} {
				for i := 0; i < quarter; i++ {
					out = append(out, float32(math.Sin(float64(pos)/math.Pow(10000, float64(i)/float64(quarter)))))
				}
				for i := 0; i < quarter; i++ {
					out = append(out, float32(math.Cos(float64(pos)/math.Pow(10000, float64(i)/float64(quarter)))))
				}
			}
		}
	}
	return out
}
