package tiny

import (
	"math"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/gguf"
)

// ArchGemma3 is Gemma 3's text decoder (Options.Arch).
const ArchGemma3 = "gemma3"

// Sizes of the tiny gemma3 model (notes: families.md §10.4): six layers, so that layers
// 0-4 slide and layer 5 is global; a window shorter than the test prompts; heads wider
// than n_embd/n_head (attention.key_length); RoPE base 1e6 with linear scaling ×8 on the
// global layer, base 10000 unscaled on the sliding ones.
const (
	Gemma3NLayer      = 6
	Gemma3HeadDim     = 32
	Gemma3Window      = 8
	Gemma3RopeBase    = 1e6
	Gemma3RopeScaling = 8
)

// Gemma 3's turn markers, appended to the tiny vocabulary of a gemma3 model (other
// architectures keep the vocabulary without them).
const (
	StartOfTurn = "<start_of_turn>"
	EndOfTurn   = "<end_of_turn>"
)

// Gemma3ChatTemplate is Gemma 3's chat template without its leading {{ bos_token }} (the
// tokenizer adds BOS); llama.cpp recognises it by "<start_of_turn>" and formats turns as
// "<start_of_turn>user\n…<end_of_turn>\n", the assistant's role named "model".
const Gemma3ChatTemplate = "{% for message in messages %}" +
	"{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
	"{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"

// gemma3HParams turns the llama-shaped hyper-parameters of the options into gemma3's.
func gemma3HParams(hp arch.HParams, o Options) (arch.HParams, error) {
	if o.Text == nil {
		hp.NLayer = Gemma3NLayer
	}
	if o.HeadDim == 0 {
		hp.HeadDim = Gemma3HeadDim
	}
	hp.NVocab = len(o.vocab().Tokens)
	hp.Tied = o.TiedOutput
	hp.Rope = arch.NoScaling(arch.RopeNeoX, hp.HeadDim, Gemma3RopeBase, hp.NCtxTrain)
	hp.Rope.FreqScale = 1.0 / Gemma3RopeScaling
	hp.SWA, hp.SWAPattern = Gemma3Window, arch.Gemma3SWAPattern
	hp.RopeSWA = arch.NoScaling(arch.RopeNeoX, hp.HeadDim, 10000, hp.NCtxTrain)
	hp.QScale = float32(1 / math.Sqrt(float64(hp.HeadDim)))
	hp.EmbdScale = float32(math.Sqrt(float64(hp.NEmbd)))
	return hp, nil
}

// setGemma3Metadata writes the keys a gemma3 model has beyond the generic ones, and its
// chat template and end-of-turn token.
func setGemma3Metadata(w *gguf.Writer, v Vocab, hp *arch.HParams) {
	a := hp.Arch
	w.Set(a+".attention.sliding_window", gguf.Uint32Value(uint32(hp.SWA)))
	w.Set(a+".rope.freq_base", gguf.Float32Value(hp.Rope.Base))
	w.Set(a+".rope.scaling.type", gguf.StringValue("linear"))
	w.Set(a+".rope.scaling.factor", gguf.Float32Value(Gemma3RopeScaling))
	w.Set(a+".attention.key_length", gguf.Uint32Value(uint32(hp.HeadDim)))
	w.Set(a+".attention.value_length", gguf.Uint32Value(uint32(hp.HeadDim)))
	w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32Value(uint32(len(v.Tokens)-1)))
	w.Set("tokenizer.chat_template", gguf.StringValue(Gemma3ChatTemplate))
}

// Gemma3Pool is the gemma3 projector's scale_factor: the ViT's (ImageSize/PatchSize)²
// patch grid is average-pooled Gemma3Pool×Gemma3Pool, giving Gemma3Rows rows per image.
const (
	Gemma3Pool = 2
	Gemma3Rows = (ImageSize / PatchSize / Gemma3Pool) * (ImageSize / PatchSize / Gemma3Pool)
)

// writeGemma3Mmproj writes Gemma 3's vision projector (notes: families.md §10.2): a
// SigLIP ViT (no class row) with a post-LayerNorm; mtmd pools its patch grid, RMS-norms
// each row (mm.soft_emb_norm) and projects it to the text model's width
// (mm.input_projection, stored [n_text, n_vision]). mtmd decodes the image rows
// non-causally: they attend to each other both ways.
func writeGemma3Mmproj(path string, o Options) error {
	v, hp, err := newProjector(o, "gemma3")
	if err != nil {
		return err
	}
	w := v.w
	w.Set("clip.use_gelu", gguf.BoolValue(true))
	w.Set("clip.vision.projector.scale_factor", gguf.Uint32Value(Gemma3Pool))
	w.Set("clip.vision.attention.layer_norm_epsilon", gguf.Float32Value(1e-6))
	half := []float32{0.5, 0.5, 0.5}
	w.Set("clip.vision.image_mean", gguf.ArrayValue(half))
	w.Set("clip.vision.image_std", gguf.ArrayValue(half))

	v.tower(towerShape{nPos: (ImageSize / PatchSize) * (ImageSize / PatchSize)})
	v.layerNorm("v.post_ln", VisionWidth)
	v.add("mm.soft_emb_norm.weight", []uint64{VisionWidth}, v.norm(VisionWidth))
	v.add("mm.input_projection.weight", []uint64{uint64(hp.NEmbd), VisionWidth}, v.lin(VisionWidth, hp.NEmbd, 1))
	return v.done(path)
}
