package llama

/*
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// TokenAttr is the bit set llama.cpp keeps per vocabulary entry.
type TokenAttr uint32

// Token attribute bits (llama_token_attr).
const (
	AttrUnknown     TokenAttr = C.LLAMA_TOKEN_ATTR_UNKNOWN
	AttrUnused      TokenAttr = C.LLAMA_TOKEN_ATTR_UNUSED
	AttrNormal      TokenAttr = C.LLAMA_TOKEN_ATTR_NORMAL
	AttrControl     TokenAttr = C.LLAMA_TOKEN_ATTR_CONTROL
	AttrUserDefined TokenAttr = C.LLAMA_TOKEN_ATTR_USER_DEFINED
	AttrByte        TokenAttr = C.LLAMA_TOKEN_ATTR_BYTE
)

// NoToken is what BOS/EOS/EOT return when the vocabulary has no such token.
const NoToken int32 = -1

// validToken guards the vocabulary getters, which index with .at() in C++ and would
// terminate the process on an out-of-range id.
func (m *Model) validToken(t int32) bool { return t >= 0 && int(t) < m.nVocab }

func (m *Model) checkTokens(tokens []int32) error {
	for i, t := range tokens {
		if !m.validToken(t) {
			return fmt.Errorf("token %d at index %d is outside the vocabulary [0, %d)", t, i, m.nVocab)
		}
	}
	return nil
}

// Tokenize converts text to token ids. addSpecial adds BOS/EOS as the model is
// configured to; parseSpecial lets control-token text (e.g. "<|im_start|>") become
// the control token instead of plain text.
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	m.live()
	if len(text) > math.MaxInt32/2 {
		return nil, fmt.Errorf("tokenize: text of %d bytes is too long", len(text))
	}
	// The text travels with its length, so it need not be NUL-terminated; an empty
	// string still needs a valid pointer.
	data := []byte(text)
	if len(data) == 0 {
		data = []byte{0}
	}
	out := make([]int32, len(text)+8)
	for {
		n := C.llama_tokenize(m.vocab, (*C.char)(unsafe.Pointer(&data[0])), C.int32_t(len(text)),
			(*C.llama_token)(unsafe.Pointer(&out[0])), C.int32_t(len(out)), C.bool(addSpecial), C.bool(parseSpecial))
		switch {
		case n == math.MinInt32:
			return nil, fmt.Errorf("tokenize: result too large")
		case n < 0:
			// A negative count is the size the result needs.
			out = make([]int32, -n)
		default:
			return out[:n], nil
		}
	}
}

// TokenToPiece returns the text of one token. special renders control tokens as their
// text instead of nothing.
func (m *Model) TokenToPiece(t int32, special bool) (string, error) {
	m.live()
	if !m.validToken(t) {
		return "", fmt.Errorf("token %d is outside the vocabulary [0, %d)", t, m.nVocab)
	}
	buf := make([]byte, 32)
	for {
		n := C.llama_token_to_piece(m.vocab, C.llama_token(t), (*C.char)(unsafe.Pointer(&buf[0])),
			C.int32_t(len(buf)), 0, C.bool(special))
		if n >= 0 {
			return string(buf[:n]), nil
		}
		buf = make([]byte, -n)
	}
}

// Detokenize converts tokens back to text. removeSpecial drops the BOS/EOS the model
// adds; unparseSpecial renders control tokens as their text. llama.cpp quirk: with a
// space-prefixing (SPM) vocabulary the leading space that Tokenize added is removed
// only when the tokens do not start with BOS, so Detokenize(Tokenize(s, true, …), true,
// …) is " "+s there, while Detokenize(Tokenize(s, false, …), …) is s.
func (m *Model) Detokenize(tokens []int32, removeSpecial, unparseSpecial bool) (string, error) {
	m.live()
	if len(tokens) == 0 {
		return "", nil
	}
	if err := m.checkTokens(tokens); err != nil {
		return "", fmt.Errorf("detokenize: %w", err)
	}
	buf := make([]byte, 8*len(tokens)+16)
	for {
		n := C.llama_detokenize(m.vocab, (*C.llama_token)(unsafe.Pointer(&tokens[0])), C.int32_t(len(tokens)),
			(*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), C.bool(removeSpecial), C.bool(unparseSpecial))
		if n >= 0 {
			return string(buf[:n]), nil
		}
		buf = make([]byte, -n)
	}
}

// BOS is the beginning-of-sequence token, or NoToken.
func (m *Model) BOS() int32 { m.live(); return int32(C.llama_vocab_bos(m.vocab)) }

// EOS is the end-of-sequence token, or NoToken.
func (m *Model) EOS() int32 { m.live(); return int32(C.llama_vocab_eos(m.vocab)) }

// EOT is the end-of-turn token, or NoToken.
func (m *Model) EOT() int32 { m.live(); return int32(C.llama_vocab_eot(m.vocab)) }

// AddBOS reports whether Tokenize with addSpecial prepends BOS.
func (m *Model) AddBOS() bool { m.live(); return bool(C.llama_vocab_get_add_bos(m.vocab)) }

// IsEOG reports whether generation should stop at t (EOS, EOT and similar).
func (m *Model) IsEOG(t int32) bool {
	m.live()
	return bool(C.llama_vocab_is_eog(m.vocab, C.llama_token(t)))
}

// IsControl reports whether t is a control token; false for ids outside the vocabulary.
func (m *Model) IsControl(t int32) bool {
	m.live()
	return m.validToken(t) && bool(C.llama_vocab_is_control(m.vocab, C.llama_token(t)))
}

// TokenText is the raw vocabulary string of t ("" outside the vocabulary).
func (m *Model) TokenText(t int32) string {
	m.live()
	if !m.validToken(t) {
		return ""
	}
	return C.GoString(C.llama_vocab_get_text(m.vocab, C.llama_token(t)))
}

// TokenScore is the vocabulary score of t (0 outside the vocabulary).
func (m *Model) TokenScore(t int32) float32 {
	m.live()
	if !m.validToken(t) {
		return 0
	}
	return float32(C.llama_vocab_get_score(m.vocab, C.llama_token(t)))
}

// TokenAttr is the attribute set of t (0 outside the vocabulary).
func (m *Model) TokenAttr(t int32) TokenAttr {
	m.live()
	if !m.validToken(t) {
		return 0
	}
	return TokenAttr(C.llama_vocab_get_attr(m.vocab, C.llama_token(t)))
}
