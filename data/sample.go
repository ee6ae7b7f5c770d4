package data

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/llava"
)

// Sample is a record as the decoder sees it.
type Sample struct {
	ID     string
	Rows   []int32  // token id per row, or llava.ImageRow
	Target []bool   // the token at this row is an assistant token the model learns
	Images []string // resolved image paths, in order
	NImage []int    // embedding rows of each image
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
	Template string        // chat template text or a llama.cpp template name
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
// (an answer "<|im_end|> …" would end the turn), not be learned as written.
func (b *Builder) checkControlText(rec *Record) error {
	for i, t := range rec.Conversations {
		for _, sp := range b.controlTexts() {
			if strings.Contains(t.Value, sp) {
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
	render := func(n int, addAssistant bool) ([]int32, []int, error) {
		text, err := llama.ApplyChatTemplate(b.Template, msgs[:n], addAssistant)
		if err != nil {
			return nil, nil, fail("%v", err)
		}
		k := strings.Count(text, mtmd.DefaultMarker())
		if k > len(imgs) {
			return nil, nil, fail("its text holds %s itself; remove that marker (images are placed with %s)", mtmd.DefaultMarker(), ImagePlaceholder)
		}
		return b.tokenize(text, imgs[:k])
	}
	full, nImage, err := render(len(msgs), false)
	if err != nil {
		return nil, err
	}
	s.Rows, s.NImage = full, nImage
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

// tokenize splits text at image markers the way llama.cpp's mtmd does, and returns its
// rows and the embedding rows of each image.
func (b *Builder) tokenize(text string, imgs []mtmd.Image) ([]int32, []int, error) {
	if len(imgs) == 0 || b.Mtmd == nil {
		toks, err := b.Vocab.Tokenize(text, true, true)
		return toks, nil, err
	}
	p, err := b.Mtmd.TokenizePrompt(text, imgs, true, true)
	if err != nil {
		return nil, nil, err
	}
	defer p.Close()
	var rows []int32
	var nImage []int
	for _, ch := range p.Chunks {
		if ch.Kind == mtmd.ChunkText {
			rows = append(rows, ch.Tokens...)
			continue
		}
		if ch.MRoPE {
			return nil, nil, fmt.Errorf("this projector needs M-RoPE positions, which calft's decoder does not support yet")
		}
		for range ch.NTokens {
			rows = append(rows, llava.ImageRow)
		}
		nImage = append(nImage, ch.NTokens)
	}
	return rows, nImage, nil
}
