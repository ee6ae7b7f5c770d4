package data

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/chat"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/llava"
)

// Sample is a record as the decoder sees it.
type Sample struct {
	ID     string
	Rows   []int32  // token id per row, or llava.ImageRow
	Target []bool   // the token at this row is an assistant token the model learns
	Images []string // resolved image paths, in order
	NImage []int    // embedding rows of each image (all its tiles or slices)
	// Grids, for projectors whose rows take M-RoPE positions (Qwen2-VL), are each
	// image's grid of rows; nil otherwise.
	Grids []llava.Grid
	// NonCausal: the projector's image rows attend to each other both ways (Gemma 3;
	// see llava.Sequence.NonCausal).
	NonCausal bool
}

// NTargets counts supervised tokens.
func (s *Sample) NTargets() int {
	n := 0
	for _, t := range s.Target {
		if t {
			n++
		}
	}
	return n
}

// Scored lists, for each supervised token at row i, the row i−1 whose logits predict it,
// and the token with its run number (consecutive supervised tokens form a run; CAL's
// smoothing stays inside a run). offset is added to the rows (a sample's place in a
// packed batch); run numbers start at run0 and the next free one is returned.
func (s *Sample) Scored(offset int32, run0 int) (rows []int32, targets []cal.Target, nextRun int) {
	run := run0
	inRun := false
	for i := 1; i < len(s.Rows); i++ {
		if !s.Target[i] {
			if inRun {
				run++
			}
			inRun = false
			continue
		}
		inRun = true
		rows = append(rows, offset+int32(i-1))
		targets = append(targets, cal.Target{Token: s.Rows[i], Run: run})
	}
	if inRun {
		run++
	}
	return rows, targets, run
}

// Builder turns records into samples with a model's tokenizer, chat template and
// vision projector.
type Builder struct {
	Vocab    *llama.Model  // the text model (a vocabulary-only load is enough)
	Mtmd     *mtmd.Context // nil: text-only data
	Template string        // chat template text, a llama.cpp template name or one of chat.GoTemplates
	MaxRows  int           // longest sample allowed (the context size); 0: no limit
	ImageDir string

	specials []string // texts of the vocabulary's control tokens, found on first use
}

// controlTexts lists the texts of the tokens the tokenizer reads as control tokens when
// it parses the templated conversation ("<|im_end|>", "</s>", …).
func (b *Builder) controlTexts() []string {
	if b.specials == nil {
		b.specials = []string{}
		for t := 0; t < b.Vocab.NVocab(); t++ {
			if b.Vocab.TokenAttr(int32(t))&(llama.AttrControl|llama.AttrUnknown) != 0 {
				if txt := b.Vocab.TokenText(int32(t)); txt != "" {
					b.specials = append(b.specials, txt)
				}
			}
		}
	}
	return b.specials
}

// checkControlText refuses turns that hold a control token's text: the template's
// output is tokenized with control tokens parsed, so the text would become the token
// (an answer "<|im_end|> …" would end the turn), not be learned as written. The image
// placeholders are not text: Build replaces them with mtmd's marker (MiniCPM-V's
// vocabulary has an <image> control token).
func (b *Builder) checkControlText(rec *Record) error {
	for i, t := range rec.Conversations {
		text := strings.ReplaceAll(t.Value, ImagePlaceholder, "")
		for _, sp := range b.controlTexts() {
			if strings.Contains(text, sp) {
				return Problem{rec.ID, fmt.Sprintf("turn %d contains %q, the text of one of the model's control tokens; the tokenizer would read it as that token, not as text: remove or rewrite it", i+1, sp)}
			}
		}
	}
	return nil
}

// Build templates, tokenizes and masks one record. Errors name the sample.
func (b *Builder) Build(rec *Record) (*Sample, error) {
	if ps := Check(rec, b.ImageDir); len(ps) > 0 {
		return nil, ps[0]
	}
	if err := b.checkControlText(rec); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) error {
		return Problem{rec.ID, fmt.Sprintf(format, args...)}
	}
	var imgs []mtmd.Image
	s := &Sample{ID: rec.ID}
	for _, p := range rec.Images {
		path := ImagePath(b.ImageDir, p)
		im, err := imageio.Load(path)
		if err != nil {
			return nil, fail("%v", err)
		}
		imgs = append(imgs, mtmd.Image{RGB: im.Pix, W: im.W, H: im.H})
		s.Images = append(s.Images, path)
	}
	if len(imgs) > 0 && b.Mtmd == nil {
		return nil, fail("has images but no vision projector (mmproj) was given")
	}
	var msgs []llama.ChatMessage
	for _, t := range rec.Conversations {
		r, _ := role(t.From)
		msgs = append(msgs, llama.ChatMessage{Role: r, Content: strings.ReplaceAll(t.Value, ImagePlaceholder, mtmd.DefaultMarker())})
	}
	render := func(n int, addAssistant bool) ([]int32, imageLayout, error) {
		text, err := chat.Apply(b.Template, msgs[:n], addAssistant)
		if err != nil {
			return nil, imageLayout{}, fail("%v", err)
		}
		k := strings.Count(text, mtmd.DefaultMarker())
		if k > len(imgs) {
			return nil, imageLayout{}, fail("its text holds %s itself; remove that marker (images are placed with %s)", mtmd.DefaultMarker(), ImagePlaceholder)
		}
		return b.tokenize(text, imgs[:k])
	}
	full, nImage, err := render(len(msgs), false)
	if err != nil {
		return nil, err
	}
	s.Rows, s.NImage, s.Grids, s.NonCausal = full, nImage.rows, nImage.grids, nImage.nonCausal
	s.Target = make([]bool, len(full))
	for k, m := range msgs {
		if m.Role != "assistant" {
			continue
		}
		pre, _, err := render(k, true)
		if err != nil {
			return nil, err
		}
		upto, _, err := render(k+1, false)
		if err != nil {
			return nil, err
		}
		if !slices.Equal(pre, full[:min(len(pre), len(full))]) || !slices.Equal(upto, full[:min(len(upto), len(full))]) {
			return nil, fail("the chat template's tokens for turn %d are not a prefix of the whole conversation's; "+
				"this template cannot be masked turn by turn (try another --template)", k+1)
		}
		// Learn the answer and the token that ends the turn, not what the template adds
		// after it (a newline before the next turn).
		end := len(upto)
		for i := end - 1; i >= len(pre); i-- {
			if full[i] != llava.ImageRow && b.Vocab.IsEOG(full[i]) {
				end = i + 1
				break
			}
		}
		for i := len(pre); i < end; i++ {
			s.Target[i] = true
		}
	}
	if s.NTargets() == 0 {
		return nil, fail("no answer token survives templating")
	}
	if b.MaxRows > 0 && len(s.Rows) > b.MaxRows {
		return nil, fail("%d rows (tokens + image rows) exceed the context of %d; shorten it or raise the context", len(s.Rows), b.MaxRows)
	}
	return s, nil
}

// imageLayout is how a sample's images became rows: each image's row count and, for
// M-RoPE projectors, its grid.
type imageLayout struct {
	rows      []int
	grids     []llava.Grid
	nonCausal bool
}

// tokenize splits text at image markers the way llama.cpp's mtmd does, and returns its
// rows and how each image became rows. BOS is added unless the text already starts with
// it (chat.AddSpecial).
func (b *Builder) tokenize(text string, imgs []mtmd.Image) ([]int32, imageLayout, error) {
	var lay imageLayout
	addSpecial := chat.AddSpecial(b.Vocab, text)
	if len(imgs) == 0 || b.Mtmd == nil {
		toks, err := b.Vocab.Tokenize(text, addSpecial, true)
		return toks, lay, err
	}
	p, err := b.Mtmd.TokenizePrompt(text, imgs, addSpecial, true)
	if err != nil {
		return nil, lay, err
	}
	defer p.Close()
	var rows []int32
	lay.rows = make([]int, len(imgs))
	lay.nonCausal = b.Mtmd.UsesNonCausal()
	for _, ch := range p.Chunks {
		if ch.Kind == mtmd.ChunkText {
			for _, tok := range ch.Tokens {
				// mtmd looks up the tokens around images and slices by their text, and
				// writes -1 for one the vocabulary lacks (a projector of another model).
				if tok < 0 || int(tok) >= b.Vocab.NVocab() {
					return nil, lay, fmt.Errorf("mtmd placed token %d around an image: the text model's vocabulary lacks a token the projector marks images with; pass the mmproj made for this model", tok)
				}
			}
			rows = append(rows, ch.Tokens...)
			continue
		}
		if ch.MRoPE {
			if ch.Kind != mtmd.ChunkImage || ch.NX*ch.NY != ch.NTokens {
				return nil, lay, fmt.Errorf("an M-RoPE %s chunk of %d rows is not laid out on a grid (%dx%d)", ch.Kind, ch.NTokens, ch.NX, ch.NY)
			}
			lay.grids = append(lay.grids, llava.Grid{NX: ch.NX, NY: ch.NY})
		}
		if ch.Image < 0 || ch.Image >= len(imgs) {
			return nil, lay, fmt.Errorf("mtmd gave a chunk of image %d for %d images", ch.Image, len(imgs))
		}
		for range ch.NTokens {
			rows = append(rows, llava.ImageRow)
		}
		// A tiled image (SmolVLM) arrives as several chunks with text between them.
		lay.rows[ch.Image] += ch.NTokens
	}
	if lay.grids != nil && len(lay.grids) != len(lay.rows) {
		return nil, lay, fmt.Errorf("the projector gave M-RoPE grids for %d of %d images", len(lay.grids), len(lay.rows))
	}
	return rows, lay, nil
}
