package infer

import (
	"fmt"
	"math"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/chat"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/imageio"
)

// Session keeps a model, its projector and a decoding context loaded to answer many
// prompts, switching adapters between them: what an evaluation over many images needs.
type Session struct {
	model    *llama.Model
	proj     *mtmd.Context
	ctx      *llama.Context
	info     *check.TextModelInfo
	adapters map[string]*llama.Adapter
	current  string
	Template bool // wrap prompts in the model's chat template (default true)
}

// NewSession loads a model (and an mmproj, when not empty) after checking them in Go.
func NewSession(modelPath, mmprojPath string, nCtx, threads int) (*Session, error) {
	if err := ggml.CheckThreads(threads); err != nil {
		return nil, err
	}
	info, _, err := check.ModelAndMmproj(modelPath, mmprojPath)
	if err != nil {
		return nil, err
	}
	s := &Session{info: info, adapters: map[string]*llama.Adapter{}, Template: true}
	if s.model, err = llama.LoadModel(modelPath, llama.ModelParams{UseMmap: true}); err != nil {
		return nil, err
	}
	if mmprojPath != "" {
		if s.proj, err = mtmd.Init(mmprojPath, s.model, mtmd.Params{NThreads: threads}); err != nil {
			s.Close()
			return nil, err
		}
	}
	if s.ctx, err = llama.NewContext(s.model, llama.ContextParams{NCtx: nCtx, NThreads: threads, KVF32: true}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Model is the loaded text model (for its vocabulary).
func (s *Session) Model() *llama.Model { return s.model }

// UseAdapter applies the adapter at path (loaded once, then kept), or none for "".
func (s *Session) UseAdapter(path string) error {
	if path == s.current {
		return nil
	}
	s.ctx.ClearAdapters()
	s.current = ""
	if path == "" {
		return nil
	}
	a, ok := s.adapters[path]
	if !ok {
		if _, err := check.Adapter(path, s.info); err != nil {
			return err
		}
		var err error
		if a, err = llama.LoadAdapter(s.model, path); err != nil {
			return err
		}
		s.adapters[path] = a
	}
	if err := s.ctx.SetAdapter(a, 1); err != nil {
		return err
	}
	s.current = path
	return nil
}

// feed decodes the (templated) prompt with its image, followed by the start of the
// answer, from position 0 and returns the next free position. The answer's start is
// tokenized together with the prompt, as it would be in a whole conversation.
func (s *Session) feed(img *imageio.RGB, text, answerStart string) (int, error) {
	s.ctx.ClearMemory()
	o := Options{Prompt: text, UseChatTemplate: s.Template}
	if img != nil {
		o.Image = "image"
	}
	formatted, err := o.formatPrompt(s.model)
	if err != nil {
		return 0, err
	}
	formatted += answerStart
	var p *prompt
	if img == nil {
		toks, err := s.model.Tokenize(formatted, chat.AddSpecial(s.model, formatted), true)
		if err != nil {
			return 0, err
		}
		p = &prompt{tokens: toks}
	} else {
		if s.proj == nil {
			return 0, fmt.Errorf("an image needs a session opened with an mmproj")
		}
		chunks, err := s.proj.TokenizePrompt(formatted, []mtmd.Image{{RGB: img.Pix, W: img.W, H: img.H}}, chat.AddSpecial(s.model, formatted), true)
		if err != nil {
			return 0, err
		}
		defer chunks.Close()
		p = &prompt{chunks: chunks}
	}
	if p.nPos() >= s.ctx.NCtx() {
		return 0, fmt.Errorf("the prompt takes %d positions, the session's context %d", p.nPos(), s.ctx.NCtx())
	}
	return p.decode(s.ctx)
}

// Answer decodes greedily after the prompt, at most n tokens.
func (s *Session) Answer(img *imageio.RGB, text string, n int) (string, error) {
	nPast, err := s.feed(img, text, "")
	if err != nil {
		return "", err
	}
	return greedy(s.ctx, s.model, nPast, min(n, s.ctx.NCtx()-nPast), nil)
}

// NextProbs returns the probabilities of the next token after the prompt and the start
// of the answer.
func (s *Session) NextProbs(img *imageio.RGB, text, answerStart string) ([]float64, error) {
	if _, err := s.feed(img, text, answerStart); err != nil {
		return nil, err
	}
	logits, err := s.ctx.Logits(-1)
	if err != nil {
		return nil, err
	}
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, float64(v))
	}
	p := make([]float64, len(logits))
	var z float64
	for i, v := range logits {
		p[i] = math.Exp(float64(v) - m)
		z += p[i]
	}
	for i := range p {
		p[i] /= z
	}
	return p, nil
}

// Close frees everything.
func (s *Session) Close() {
	if s.model != nil {
		s.model.Close() // closes the context, projector and adapters too
	}
}
