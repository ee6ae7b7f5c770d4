package tiny

import (
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
	hidden := hp.NEmbd // the projector's hidden width and its output: the text model's
	w := gguf.NewWriter()
	setMmprojMetadata(w, hp.NEmbd)

	const e, p = VisionWidth, PatchSize
	nPos := TokensPerImage + 1 // the class embedding takes position 0
	v := &vit{w: w, rng: rng}
	v.add("v.patch_embd.weight", []uint64{p, p, 3, e}, v.lin(p*p*3, e, 1))
	v.add("v.class_embd", []uint64{e}, normal(rng, e, 0.5))
	v.add("v.position_embd.weight", []uint64{e, uint64(nPos)}, normal(rng, e*nPos, 0.2))
	v.layerNorm("v.pre_ln", e)
	v.blocks(towerShape{})
	v.linear("mm.0", e, hidden, 1)
	v.linear("mm.2", hidden, hidden, 1)
	return v.done(path)
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
