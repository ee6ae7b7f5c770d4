package tiny

import (
	"fmt"

	"github.com/calft/calft/gguf"
)

// FamilyPixtral is Pixtral-12B's GGUF layout (notes: families.md §8): llama text with
// Mistral's [INST] tokens, and a "pixtral" projector — a ViT with RMS norms, a gated
// SiLU feed-forward and 2-D RoPE, then a two-layer GELU MLP — whose image chunk ends
// every row of patches with the [IMG_BREAK] row (v.token_embd.img_break), the last one
// excepted; mtmd writes [IMG_END] after the chunk.
const FamilyPixtral = "pixtral"

// PixtralRows are the rows of a tiny image: 4×4 patches and 3 break rows.
const PixtralRows = (ImageSize/PatchSize)*(ImageSize/PatchSize) + ImageSize/PatchSize - 1

// Pixtral's special tokens, appended to the tiny vocabulary of the family.
const (
	InstStart = "[INST]"
	InstEnd   = "[/INST]"
	ImgBreak  = "[IMG_BREAK]"
	ImgEnd    = "[IMG_END]"
)

// writePixtral writes the pixtral projector (no spatial merge: Pixtral-12B's path).
func writePixtral(path string, o Options) error {
	v, hp, err := newProjector(o, "pixtral")
	if err != nil {
		return err
	}
	w := v.w
	w.Set("clip.use_silu", gguf.BoolValue(true))
	// image_mean and image_std stay CLIP's (setMmprojMetadata), which Pixtral keeps.

	const e, ff, p = VisionWidth, VisionFF, PatchSize
	weight := func(name string, nIn, nOut int, gain float64) {
		v.add(name, []uint64{uint64(nIn), uint64(nOut)}, v.lin(nIn, nOut, gain))
	}
	v.add("v.patch_embd.weight", []uint64{p, p, 3, e}, v.lin(p*p*3, e, 1))
	v.add("v.pre_ln.weight", []uint64{e}, v.norm(e))
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		v.add(b("ln1.weight"), []uint64{e}, v.norm(e))
		weight(b("attn_q.weight"), e, e, 1)
		weight(b("attn_k.weight"), e, e, 1)
		weight(b("attn_v.weight"), e, e, 1)
		weight(b("attn_out.weight"), e, e, residualGain)
		v.add(b("ln2.weight"), []uint64{e}, v.norm(e))
		weight(b("ffn_gate.weight"), e, ff, 1)
		weight(b("ffn_up.weight"), e, ff, 1)
		weight(b("ffn_down.weight"), ff, e, residualGain)
	}
	weight("mm.1.weight", e, hp.NEmbd, 1)
	v.add("mm.1.bias", []uint64{uint64(hp.NEmbd)}, v.bias(hp.NEmbd))
	weight("mm.2.weight", hp.NEmbd, hp.NEmbd, 1)
	v.add("mm.2.bias", []uint64{uint64(hp.NEmbd)}, v.bias(hp.NEmbd))
	v.add("v.token_embd.img_break", []uint64{uint64(hp.NEmbd)}, normal(v.rng, hp.NEmbd, 0.5))
	return v.done(path)
}

// PixtralChatTemplate is a Mistral v3 (tekken) chat template; llama.cpp recognises it as
// "mistral-v3-tekken" by "[AVAILABLE_TOOLS]" and a double-quoted "[INST]", and writes
// "[INST]user[/INST]assistant</s>", without the spaces of older Mistral formats.
const PixtralChatTemplate = `{{ bos_token }}{% for message in messages %}` +
	`{% if message["role"] == "user" %}{% if tools is defined and loop.last %}{{ "[AVAILABLE_TOOLS]" }}{% endif %}` +
	`{{ "[INST]" + message["content"] + "[/INST]" }}{% else %}{{ message["content"] + eos_token }}{% endif %}{% endfor %}`
