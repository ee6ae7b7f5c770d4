package check

import (
	"fmt"
	"slices"

	"github.com/calft/calft/gguf"
)

// Token types stored in tokenizer.ggml.token_type (llama_token_type).
const (
	TokenNormal      = 1
	TokenUnknown     = 2
	TokenControl     = 3
	TokenUserDefined = 4
	TokenUnused      = 5
	TokenByte        = 6
)

// VocabInfo summarizes a model's tokenizer metadata.
type VocabInfo struct {
	Model string // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
	Pre   string // tokenizer.ggml.pre, the BPE pre-tokenizer ("" if absent)
	Size  int

	// Special token ids as llama.cpp resolves them; -1 means none.
	BOS, EOS, UNK, EOT, PAD int
	// Texts of the BOS, EOS and EOT tokens ("" when there is none).
	BOSText, EOSText, EOTText string
	AddBOS, AddEOS            bool

	NControl, NByte, NUserDefined, NUnknown, NUnused int
	ChatTemplate                                     string // "" if the file has none
	// Markers are the projectors' image-marker tokens (projectorPairings) the
	// vocabulary holds as single tokens.
	Markers map[string]bool
}

// specialIDKeys are the special-token keys llama.cpp reads with its u32
// getter; another type makes the model load fail.
var specialIDKeys = []string{
	"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
	"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id",
	"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
	"tokenizer.ggml.padding_token_id", "tokenizer.ggml.mask_token_id",
	"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id",
	"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.fim_pad_token_id",
	"tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
	"tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
	"tokenizer.ggml.middle_token_id",
}

// bpeAddBOSPre lists the BPE pre-tokenizers for which llama.cpp adds BOS by
// default (before tokenizer.ggml.add_bos_token overrides it).
var bpeAddBOSPre = []string{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "tekken", "chameleon"}

// eotTexts are token texts llama.cpp recognises as end-of-turn when the
// file does not name one.
var eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "<end_of_utterance>"}

// inspectVocab validates the tokenizer metadata the way llama.cpp's vocab
// loader consumes it. Several of its reads are unchecked (scores and token
// types are indexed by token id whatever their length or type, duplicate
// token texts trip an assertion), so every such case is an error here.
func inspectVocab(f *gguf.File) (*VocabInfo, []string, error) {
	v := &VocabInfo{BOS: -1, EOS: -1, UNK: -1, EOT: -1, PAD: -1}
	var err error
	if v.Model, err = f.String("tokenizer.ggml.model"); err != nil {
		return nil, nil, err
	}
	switch v.Model {
	case "llama":
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS = true
	case "gpt2":
		v.BOS, v.EOS = 11, 11
	default:
		return nil, nil, gguf.Errorf(f.Path, gguf.ErrUnsupported, "tokenizer %q is not supported (calft handles SentencePiece \"llama\" and BPE \"gpt2\" vocabularies); use a model with one of those", v.Model)
	}
	if v.Pre, err = optional(f, "tokenizer.ggml.pre", "", f.String); err != nil {
		return nil, nil, err
	}
	if v.Model == "gpt2" && slices.Contains(bpeAddBOSPre, v.Pre) {
		v.AddBOS = true
	}

	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, nil, err
	}
	v.Size = len(tokens)
	if v.Size == 0 {
		return nil, nil, gguf.Errorf(f.Path, gguf.ErrCorrupt, "tokenizer.ggml.tokens is empty; %s", adviceReconvert)
	}
	if err := checkUniqueTokens(f, tokens); err != nil {
		return nil, nil, err
	}
	v.Markers = map[string]bool{}
	for _, tok := range tokens {
		if markerTokens[tok] {
			v.Markers[tok] = true
		}
	}
	if f.Has("tokenizer.ggml.scores") {
		scores, err := f.Float32s("tokenizer.ggml.scores")
		if err != nil {
			return nil, nil, err
		}
		if len(scores) != v.Size {
			return nil, nil, gguf.Errorf(f.Path, gguf.ErrCorrupt, "tokenizer.ggml.scores has %d entries for %d tokens (llama.cpp would read past its end); %s", len(scores), v.Size, adviceReconvert)
		}
	}
	if f.Has("tokenizer.ggml.token_type") {
		if err := countTokenTypes(f, v); err != nil {
			return nil, nil, err
		}
	}
	if v.Model == "gpt2" {
		if _, err := f.Strings("tokenizer.ggml.merges"); err != nil {
			return nil, nil, err
		}
	}
	if v.Model == "llama" {
		if err := checkByteFallback(f, tokens); err != nil {
			return nil, nil, err
		}
	}
	if err := readSpecialIDs(f, v); err != nil {
		return nil, nil, err
	}
	if v.EOT < 0 {
		for id, t := range tokens {
			if slices.Contains(eotTexts, t) {
				v.EOT = id
				break
			}
		}
	}
	if v.ChatTemplate, err = optional(f, "tokenizer.chat_template", "", f.String); err != nil {
		return nil, nil, err
	}
	v.BOSText, v.EOSText, v.EOTText = tokenText(tokens, v.BOS), tokenText(tokens, v.EOS), tokenText(tokens, v.EOT)
	return v, tokens, nil
}

// checkUniqueTokens mirrors llama.cpp, which renames empty tokens to
// "[EMPTY_<id>]" and then asserts that all texts are distinct.
func checkUniqueTokens(f *gguf.File, tokens []string) error {
	seen := make(map[string]int, len(tokens))
	for id, t := range tokens {
		if t == "" {
			t = fmt.Sprintf("[EMPTY_%d]", id)
		}
		if first, dup := seen[t]; dup {
			return gguf.Errorf(f.Path, gguf.ErrCorrupt, "tokens %d and %d are both %q (llama.cpp aborts on duplicate tokens); %s", first, id, t, adviceReconvert)
		}
		seen[t] = id
	}
	return nil
}

func countTokenTypes(f *gguf.File, v *VocabInfo) error {
	val, _ := f.Get("tokenizer.ggml.token_type")
	// llama.cpp reads the array as 32-bit ints whatever its declared type.
	if val.Type != gguf.TypeArray || (val.Elem != gguf.TypeInt32 && val.Elem != gguf.TypeUint32) {
		return f.WrongType("tokenizer.ggml.token_type", val, "array[i32]")
	}
	if val.Len() != v.Size {
		return gguf.Errorf(f.Path, gguf.ErrCorrupt, "tokenizer.ggml.token_type has %d entries for %d tokens (llama.cpp would read past its end); %s", val.Len(), v.Size, adviceReconvert)
	}
	for i := 0; i < v.Size; i++ {
		t, _ := val.IntegerAt(i)
		switch int32(t) {
		case TokenControl:
			v.NControl++
		case TokenByte:
			v.NByte++
		case TokenUserDefined:
			v.NUserDefined++
		case TokenUnknown:
			v.NUnknown++
		case TokenUnused:
			v.NUnused++
		}
	}
	return nil
}

// checkByteFallback: SentencePiece tokenization spells text it cannot cover
// with pieces as byte tokens, and llama.cpp throws from inside
// llama_tokenize (killing the process) when a byte has no token.
func checkByteFallback(f *gguf.File, tokens []string) error {
	have := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		have[t] = true
	}
	var missing []string
	for b := 0; b < 256; b++ {
		if !have[fmt.Sprintf("<0x%02X>", b)] && !have[string([]byte{byte(b)})] {
			missing = append(missing, fmt.Sprintf("<0x%02X>", b))
		}
	}
	if len(missing) > 0 {
		return gguf.Errorf(f.Path, gguf.ErrUnsupported, "the SentencePiece vocabulary lacks byte tokens for %d bytes (e.g. %s); llama.cpp aborts when tokenizing text containing them; use a vocabulary with all 256 byte tokens <0x00>..<0xFF>", len(missing), missing[0])
	}
	return nil
}

func readSpecialIDs(f *gguf.File, v *VocabInfo) error {
	for _, key := range specialIDKeys {
		if !f.Has(key) {
			continue
		}
		id, err := f.Uint32(key)
		if err != nil {
			return err
		}
		if int64(id) >= int64(v.Size) {
			continue // llama.cpp warns and keeps its default
		}
		switch key {
		case "tokenizer.ggml.bos_token_id":
			v.BOS = int(id)
		case "tokenizer.ggml.eos_token_id":
			v.EOS = int(id)
		case "tokenizer.ggml.unknown_token_id":
			v.UNK = int(id)
		case "tokenizer.ggml.eot_token_id":
			v.EOT = int(id)
		case "tokenizer.ggml.padding_token_id":
			v.PAD = int(id)
		}
	}
	for _, id := range []*int{&v.BOS, &v.EOS, &v.UNK} {
		if *id >= v.Size {
			*id = -1
		}
	}
	for _, key := range []string{"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.add_sep_token", "tokenizer.ggml.add_space_prefix", "tokenizer.ggml.remove_extra_whitespaces"} {
		if !f.Has(key) {
			continue
		}
		b, err := f.Bool(key)
		if err != nil {
			return err
		}
		switch key {
		case "tokenizer.ggml.add_bos_token":
			v.AddBOS = b
		case "tokenizer.ggml.add_eos_token":
			v.AddEOS = b
		}
	}
	if f.Has("tokenizer.ggml.token_type_count") {
		if _, err := f.Uint32("tokenizer.ggml.token_type_count"); err != nil {
			return err
		}
	}
	return nil
}

func tokenText(tokens []string, id int) string {
	if id < 0 || id >= len(tokens) {
		return ""
	}
	return tokens[id]
}
