package tiny

import (
	"fmt"
	"math"

	"github.com/calft/calft/gguf"
)

// CLIP's published per-channel normalisation; mtmd applies it to pixels.
var (
	imageMean = []float32{0.48145466, 0.4578275, 0.40821073}
	imageStd  = []float32{0.26862954, 0.26130258, 0.27577711}
)

// writeMmproj writes the vision tower and LLaVA-1.5 projector to path.
// The tensor names and shapes are those mtmd's clip loader reads for the
// "mlp" projector: a patch convolution, a class embedding, position
// embeddings for patches+1 positions, a pre-layernorm, VisionLayers
// transformer blocks, then mm.0 (width -> hidden), GELU, mm.2 (hidden ->
// the text model's n_embd).
func writeMmproj(path string, o Options) error {
	switch o.Family {
	case FamilySmolVLM:
		return writeIdefics3(path, o)
	case FamilyInternVL:
		return writeInternVL(path, o)
	case FamilyPixtral:
		return writePixtral(path, o)
	case FamilyMiniCPMV:
		return writeMiniCPMV(path, o)
	}
	if o.Arch == ArchGemma3 {
		return writeGemma3Mmproj(path, o)
	}
	rng := newRNG(o.Seed, streamVision)
	hp, err := o.HParams()
	if err != nil {
		return err
	}
	proj, err := o.projector(hp.Arch)
	if err != nil {
		return err
	}
	if proj == ProjQwen3VL {
		return writeQwen3VLMmproj(path, hp.NEmbd, rng)
	}
	if proj != ProjMLP {
		return writeQwenMmproj(path, proj, hp.NEmbd, rng)
	}
	hidden := uint64(hp.NEmbd) // the projector's hidden width and its output: the text model's
	w := gguf.NewWriter()
	setMmprojMetadata(w, hp.NEmbd)

	const e, ff, p = VisionWidth, VisionFF, PatchSize
	nPos := TokensPerImage + 1 // the class embedding takes position 0
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
		{"v.class_embd", []uint64{e}, normal(rng, e, 0.5)},
		{"v.position_embd.weight", []uint64{e, uint64(nPos)}, normal(rng, e*nPos, 0.2)},
		{"v.pre_ln.weight", []uint64{e}, norm(e)},
		{"v.pre_ln.bias", []uint64{e}, bias(e)},
	}
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		ts = append(ts,
			tensor{b("ln1.weight"), []uint64{e}, norm(e)},
			tensor{b("ln1.bias"), []uint64{e}, bias(e)},
			tensor{b("attn_q.weight"), []uint64{e, e}, lin(e, e, 1)},
			tensor{b("attn_q.bias"), []uint64{e}, bias(e)},
			tensor{b("attn_k.weight"), []uint64{e, e}, lin(e, e, 1)},
			tensor{b("attn_k.bias"), []uint64{e}, bias(e)},
			tensor{b("attn_v.weight"), []uint64{e, e}, lin(e, e, 1)},
			tensor{b("attn_v.bias"), []uint64{e}, bias(e)},
			tensor{b("attn_out.weight"), []uint64{e, e}, lin(e, e, residualGain)},
			tensor{b("attn_out.bias"), []uint64{e}, bias(e)},
			tensor{b("ln2.weight"), []uint64{e}, norm(e)},
			tensor{b("ln2.bias"), []uint64{e}, bias(e)},
			tensor{b("ffn_up.weight"), []uint64{e, ff}, lin(e, ff, 1)},
			tensor{b("ffn_up.bias"), []uint64{ff}, bias(ff)},
			tensor{b("ffn_down.weight"), []uint64{ff, e}, lin(ff, e, residualGain)},
			tensor{b("ffn_down.bias"), []uint64{e}, bias(e)},
		)
	}
	ts = append(ts,
		tensor{"mm.0.weight", []uint64{e, hidden}, lin(e, int(hidden), 1)},
		tensor{"mm.0.bias", []uint64{hidden}, bias(int(hidden))},
		tensor{"mm.2.weight", []uint64{hidden, hidden}, lin(int(hidden), int(hidden), 1)},
		tensor{"mm.2.bias", []uint64{hidden}, bias(int(hidden))},
	)
	for _, t := range ts {
		if err := w.AddTensorF32(t.name, gguf.F32, t.shape, t.values); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

func setMmprojMetadata(w *gguf.Writer, nEmbd int) {
	w.Set("general.architecture", gguf.StringValue("clip"))
	w.Set("general.type", gguf.StringValue("mmproj"))
	w.Set("general.name", gguf.StringValue("calft tiny clip"))
	w.Set("general.file_type", gguf.Uint32Value(0))
	w.Set("clip.has_text_encoder", gguf.BoolValue(false))
	w.Set("clip.has_vision_encoder", gguf.BoolValue(true))
	w.Set("clip.has_llava_projector", gguf.BoolValue(true))
	w.Set("clip.projector_type", gguf.StringValue("mlp"))
	w.Set("clip.vision.image_size", gguf.Uint32Value(ImageSize))
	w.Set("clip.vision.patch_size", gguf.Uint32Value(PatchSize))
	w.Set("clip.vision.embedding_length", gguf.Uint32Value(VisionWidth))
	w.Set("clip.vision.feed_forward_length", gguf.Uint32Value(VisionFF))
	w.Set("clip.vision.block_count", gguf.Uint32Value(VisionLayers))
	w.Set("clip.vision.attention.head_count", gguf.Uint32Value(VisionHeads))
	w.Set("clip.vision.attention.layer_norm_epsilon", gguf.Float32Value(VisionEps))
	w.Set("clip.vision.projection_dim", gguf.Uint32Value(uint32(nEmbd)))
	w.Set("clip.vision.image_mean", gguf.ArrayValue(imageMean))
	w.Set("clip.vision.image_std", gguf.ArrayValue(imageStd))
}
