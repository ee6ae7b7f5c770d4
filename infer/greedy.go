package infer

import (
	"strings"
	"unicode/utf8"

	"github.com/calft/calft/bindings/llama"
)

// greedy appends the most likely token until an end-of-generation token or n tokens,
// starting from the logits the prompt decode left. It returns the text of the
// generated tokens (their pieces joined, as llama.cpp's tools print them).
func greedy(ctx *llama.Context, m *llama.Model, nPast, n int, onText func(string)) (string, error) {
	var out strings.Builder
	var pending []byte // bytes of a character split across byte tokens
	emit := func(piece string, final bool) {
		pending = append(pending, piece...)
		k := len(pending)
		if !final {
			k = completeUTF8(pending)
		}
		if k > 0 {
			out.Write(pending[:k])
			if onText != nil {
				onText(string(pending[:k]))
			}
			pending = append(pending[:0], pending[k:]...)
		}
	}
	for i := 0; i < n; i++ {
		logits, err := ctx.Logits(-1)
		if err != nil {
			return out.String(), err
		}
		tok := argmax(logits)
		if m.IsEOG(tok) {
			break
		}
		piece, err := m.TokenToPiece(tok, false)
		if err != nil {
			return out.String(), err
		}
		emit(piece, false)
		if i == n-1 {
			break // the last token needs no decode
		}
		if err := ctx.DecodeTokens([]int32{tok}, nPast, 0, false); err != nil {
			return out.String(), err
		}
		nPast++
	}
	emit("", true)
	return out.String(), nil
}

// argmax returns the index of the largest logit; the first one wins ties, so the
// result is deterministic.
func argmax(v []float32) int32 {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return int32(best)
}

// completeUTF8 returns the length of the longest prefix of b that does not end in
// the middle of a UTF-8 character. Invalid bytes count as complete, so they are
// passed on rather than held forever.
func completeUTF8(b []byte) int {
	for back := 1; back <= utf8.UTFMax && back <= len(b); back++ {
		c := b[len(b)-back]
		if c < 0x80 {
			return len(b) // ASCII: everything before it is settled too
		}
		if utf8.RuneStart(c) {
			if utf8.FullRune(b[len(b)-back:]) {
				return len(b)
			}
			return len(b) - back
		}
	}
	return len(b)
}
