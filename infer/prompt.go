package infer

import (
	"fmt"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/chat"
	"github.com/calft/calft/imageio"
)

// prompt is a tokenized prompt ready to decode: plain tokens, or mtmd chunks when
// an image is part of it.
type prompt struct {
	tokens []int32 // text-only prompt
	proj   *mtmd.Context
	chunks *mtmd.Prompt
}

func preparePrompt(m *llama.Model, mmproj string, img *imageio.RGB, text string, threads int) (*prompt, error) {
	if img == nil {
		toks, err := m.Tokenize(text, chat.AddSpecial(m, text), true)
		if err != nil {
			return nil, err
		}
		if len(toks) == 0 {
			return nil, fmt.Errorf("generate: the prompt has no tokens")
		}
		return &prompt{tokens: toks}, nil
	}
	proj, err := mtmd.Init(mmproj, m, mtmd.Params{NThreads: threads})
	if err != nil {
		return nil, err
	}
	chunks, err := proj.TokenizePrompt(text, []mtmd.Image{{RGB: img.Pix, W: img.W, H: img.H}}, chat.AddSpecial(m, text), true)
	if err != nil {
		proj.Close()
		return nil, err
	}
	return &prompt{proj: proj, chunks: chunks}, nil
}

func (p *prompt) close() {
	if p.proj != nil {
		p.proj.Close() // frees the chunks too
	}
}

// nPos is the number of positions the prompt occupies in the KV cache.
func (p *prompt) nPos() int {
	if p.chunks == nil {
		return len(p.tokens)
	}
	return p.chunks.NPos()
}

// decode feeds the prompt and returns the next free position. Text chunks are token
// batches; image chunks are encoded and decoded as embedding rows at the positions
// llama.cpp's mtmd helper would use, with causal masking off for projectors whose
// image rows attend to each other.
func (p *prompt) decode(ctx *llama.Context) (int, error) {
	if p.chunks == nil {
		return len(p.tokens), ctx.DecodeTokens(p.tokens, 0, 0, false)
	}
	nPast := 0
	for i, ch := range p.chunks.Chunks {
		switch ch.Kind {
		case mtmd.ChunkText:
			if len(ch.Tokens) == 0 {
				continue
			}
			if err := ctx.DecodeTokens(ch.Tokens, nPast, 0, false); err != nil {
				return 0, err
			}
		case mtmd.ChunkImage:
			e, err := p.chunks.Encode(i)
			if err != nil {
				return 0, err
			}
			if e.NonCausal {
				ctx.SetCausalAttn(false)
			}
			err = ctx.DecodeEmbeddingsAt(e.Data, e.NRows, ch.Positions(nPast), 0, false)
			if e.NonCausal {
				ctx.SetCausalAttn(true)
			}
			if err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("generate: %s input is not supported", ch.Kind)
		}
		nPast += ch.NPos
	}
	return nPast, nil
}
