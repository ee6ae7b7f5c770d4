package tiny

import (
	"fmt"

	"github.com/calft/calft/gguf"
)

// Families Options.Family accepts: the real format a tiny model imitates beyond its
// text architecture (tokens, chat template, projector).
const (
	// FamilyLLaVA15 is LLaVA-1.5/BakLLaVA's GGUF: llama text with no chat template (the
	// converted files ship none; train with --template llava15) and </s> as EOS.
	FamilyLLaVA15 = "llava15"
	// FamilySmolVLM is SmolVLM's: llama text whose BOS is <|im_start|>, SmolVLM's chat
	// template and special tokens, and an "idefics3" projector (SigLIP ViT, pixel shuffle,
	// one linear layer) that tiles each image: a 32×32 image becomes 2×2 tiles and an
	// overview, five image chunks of SmolVLMTileRows rows with text chunks between them.
	FamilySmolVLM = "smolvlm"
	// FamilyInternVL is InternVL 2.5/3's: qwen2 text with ChatML, no BOS added (its BPE
	// tokenizer adds none), <img> and </img> tokens, and an "internvl" projector (ViT with
	// a class row and layer scales, pixel shuffle, LayerNorm + two-layer MLP); mtmd wraps
	// the InternVLRows image rows in <img> … </img>.
	FamilyInternVL = "internvl"
)

// InternVLScale is the internvl projector's scale_factor (1/downsample_ratio): 2×2
// patches become one row.
const (
	InternVLScale = 2
	InternVLRows  = (ImageSize / PatchSize) * (ImageSize / PatchSize) / (InternVLScale * InternVLScale)
)

// Sizes of the SmolVLM-style projector (the ViT is VisionWidth wide, as the default's).
const (
	SmolVLMScale     = 2  // clip.vision.projector.scale_factor: 2×2 patches become one row
	SmolVLMLongEdge  = 64 // clip.vision.preproc_image_size: images are resized to this, then tiled
	SmolVLMTileRows  = (ImageSize / PatchSize) * (ImageSize / PatchSize) / (SmolVLMScale * SmolVLMScale)
	smolvlmMaxGrid   = 3 // <row_r_col_c> tokens for r, c ≤ this
	smolvlmImageMean = 0.5
)

// SmolVLMChatTemplate is SmolVLM's chat template; llama.cpp recognises it (as "smolvlm")
// by "<|im_start|>" together with "<end_of_utterance>".
const SmolVLMChatTemplate = "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}" +
	"{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}" +
	"{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}" +
	"{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}" +
	"{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"

// vocab is the tiny vocabulary with the family's special tokens appended (the ids of
// the others stay those of BuildVocab).
func (o Options) vocab() Vocab {
	v := BuildVocab()
	add := func(tok string, typ int32) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, 0)
		v.Types = append(v.Types, typ)
	}
	if o.Arch == ArchGemma3 {
		add(StartOfTurn, typeControl)
		add(EndOfTurn, typeControl)
	}
	if o.Family == FamilyInternVL {
		add("<img>", typeControl)
		add("</img>", typeControl)
	}
	if o.Family == FamilyMiniCPMV {
		for _, tok := range miniCPMVTokens {
			add(tok, typeControl)
		}
	}
	if o.Family == FamilyPixtral {
		for _, tok := range []string{InstStart, InstEnd, ImgBreak, ImgEnd} {
			add(tok, typeControl)
		}
	}
	if o.Family != FamilySmolVLM {
		return v
	}
	// mtmd looks these up by their text: "\n\n" must be one token.
	add("<end_of_utterance>", typeControl)
	add("<fake_token_around_image>", typeControl)
	add("<global-img>", typeControl)
	add("\n\n", typeNormal)
	for r := 1; r <= smolvlmMaxGrid; r++ {
		for c := 1; c <= smolvlmMaxGrid; c++ {
			add(fmt.Sprintf("<row_%d_col_%d>", r, c), typeControl)
		}
	}
	return v
}

// SmolVLMEndID is <end_of_utterance>'s id, the EOS of the smolvlm family.
var SmolVLMEndID = int32(len(BuildVocab().Tokens))

// checkFamily validates Options.Family against the other options.
func (o Options) checkFamily() error {
	switch o.Family {
	case "":
		return nil
	case FamilyLLaVA15, FamilySmolVLM, FamilyPixtral:
		if a, _ := o.arch(); a != ArchLlama {
			return fmt.Errorf("family %s has a llama text model, not %s", o.Family, o.Arch)
		}
		return nil
	case FamilyInternVL:
		if a, _ := o.arch(); a != ArchQwen2 {
			return fmt.Errorf("family %s has a qwen2 text model (InternVL 2.5/3), not %s", o.Family, a)
		}
		return nil
	case FamilyMiniCPMV:
		if a, _ := o.arch(); a != ArchQwen2 {
			return fmt.Errorf("family %s has a qwen2 text model (MiniCPM-V 2.6), not %s", o.Family, a)
		}
		return nil
	}
	return fmt.Errorf("family %q is not one tiny generates (%s, %s, %s, %s, %s)", o.Family, FamilyLLaVA15, FamilySmolVLM, FamilyInternVL, FamilyPixtral, FamilyMiniCPMV)
}

// setFamilyTokens changes the tokenizer keys setTextMetadata wrote where the family's
// real files differ.
func (o Options) setFamilyTokens(w *gguf.Writer) {
	switch o.Family {
	case FamilyLLaVA15:
		w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32Value(SentEndID))
		w.Delete("tokenizer.chat_template")
	case FamilySmolVLM:
		// add_bos stays on (the SentencePiece default) although the template writes the
		// BOS itself: calft must not add a second one.
		w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32Value(ImStartID))
		w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32Value(uint32(SmolVLMEndID)))
		w.Set("tokenizer.chat_template", gguf.StringValue(SmolVLMChatTemplate))
	case FamilyInternVL:
		w.Set("tokenizer.ggml.add_bos_token", gguf.BoolValue(false))
	case FamilyMiniCPMV:
		w.Set("tokenizer.ggml.add_bos_token", gguf.BoolValue(false))
		w.Set("tokenizer.chat_template", gguf.StringValue(MiniCPMVChatTemplate))
	case FamilyPixtral:
		w.Set("tokenizer.chat_template", gguf.StringValue(PixtralChatTemplate))
	}
}
