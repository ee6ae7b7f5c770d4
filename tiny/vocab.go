package tiny

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Special token ids of the generated vocabulary. EOS is <|im_end|> rather
// than </s>: the model is trained on ChatML turns, which end with
// <|im_end|>, so generation stops where a turn ends.
const (
	UnkID     = 0 // <unk>
	BOSID     = 1 // <s>, added at the start of every sequence
	SentEndID = 2 // </s>, kept by SentencePiece convention; not the EOS here
	ImStartID = 3 // <|im_start|>
	ImEndID   = 4 // <|im_end|>, the EOS token
	EOSID     = ImEndID
	firstByte = 5 // <0x00>; the 256 byte tokens follow
)

// spaceMark is SentencePiece's visible space, prefixed to word pieces.
const spaceMark = "▁"

// vocabWords are the words the dataset uses (plus ChatML roles and a few
// spares for demos). Each becomes a single token, "▁word".
var vocabWords = []string{
	// colours, shapes, regions, counts
	"red", "green", "blue", "yellow", "orange", "purple", "black",
	"circle", "square", "triangle", "circles", "squares", "triangles",
	"left", "right", "top", "bottom", "middle",
	"one", "two", "three", "four",
	// question and answer words
	"a", "the", "on", "in", "at", "of", "is", "are", "there", "what", "where",
	"which", "how", "many", "colour", "color", "shape", "shapes", "image",
	"picture", "describe", "it", "this", "see", "do", "you", "and", "with",
	"background", "side", "yes", "no", "sky", "grass", "have", "has", "sides",
	"does", "hello", "hi", "thanks", "round",
	// ChatML roles
	"user", "assistant", "system",
}

// lineStartWords begin turns or sentences. A word right after a newline
// has no space before it, so it needs pieces without "▁" ("w", "wh",
// "wha", "what") to become one token; only these words get them, to keep
// the vocabulary small.
var lineStartWords = []string{
	"what", "where", "how", "describe", "is", "do", "a", "it", "the",
	"one", "two", "three", "four", "yes", "no", "hello", "hi",
}

// singleChars are normal tokens for lone characters, so ordinary text
// rarely needs byte tokens.
const singleChars = "abcdefghijklmnopqrstuvwxyz0123456789.,?!'\":;-()/<>_"

// Vocab is a SentencePiece ("llama") vocabulary in GGUF form.
type Vocab struct {
	Tokens []string
	Scores []float32
	Types  []int32
}

// Token types (llama_token_type).
const (
	typeNormal  = 1
	typeUnknown = 2
	typeControl = 3
	typeByte    = 6
)

// BuildVocab returns the vocabulary: special tokens, the 256 byte tokens,
// single characters, then every word with "▁" and every prefix of it (and
// the same without "▁" for lineStartWords).
// llama.cpp's SentencePiece tokenizer only forms a piece by merging two
// pieces already in the vocabulary, so "▁circle" is reachable only through
// "▁c", "▁ci", ... "▁circl"; scores grow with length so longer merges win.
func BuildVocab() Vocab {
	var v Vocab
	add := func(tok string, score float32, typ int32) {
		v.Tokens = append(v.Tokens, tok)
		v.Scores = append(v.Scores, score)
		v.Types = append(v.Types, typ)
	}
	add("<unk>", 0, typeUnknown)
	add("<s>", 0, typeControl)
	add("</s>", 0, typeControl)
	add("<|im_start|>", 0, typeControl)
	add("<|im_end|>", 0, typeControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, typeByte)
	}
	add(spaceMark, 1, typeNormal)
	for _, c := range singleChars {
		add(string(c), 1, typeNormal)
	}
	for _, p := range wordPieces() {
		add(p, float32(utf8.RuneCountInString(p)), typeNormal)
	}
	return v
}

// wordPieces returns the multi-character pieces: "▁" + every non-empty
// prefix of every word, and every prefix of length two or more of the
// line-start words, without duplicates, ordered by length then text so
// the ids are stable.
func wordPieces() []string {
	seen := map[string]bool{}
	var pieces []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			pieces = append(pieces, p)
		}
	}
	for _, w := range vocabWords {
		for k := 1; k <= len(w); k++ {
			add(spaceMark + w[:k])
		}
	}
	for _, w := range lineStartWords {
		for k := 2; k <= len(w); k++ {
			add(w[:k])
		}
	}
	slices.SortFunc(pieces, func(a, b string) int {
		if d := len(a) - len(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	return pieces
}

// CheckText reports words of text that are not single tokens of the
// vocabulary (they would still tokenize, as letters or bytes). Words are
// split on spaces and the punctuation in singleChars.
func CheckText(text string) error {
	var missing []string
	for _, w := range strings.FieldsFunc(text, func(r rune) bool {
		return r == ' ' || r == '\n' || (r < 128 && strings.ContainsRune(".,?!'\":;-()/<>_", r))
	}) {
		if !slices.Contains(vocabWords, w) && !slices.Contains(missing, w) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("words not in the tiny vocabulary: %s", strings.Join(missing, ", "))
	}
	return nil
}

// ChatTemplate is a ChatML template; llama.cpp recognises ChatML by the
// "<|im_start|>" it contains.
const ChatTemplate = "{% for message in messages %}" +
	"{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
