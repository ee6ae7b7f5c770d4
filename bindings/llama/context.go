package llama

/*
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// ContextParams configures a decoding context. Zero values take the defaults noted.
type ContextParams struct {
	NCtx     int // KV cache size in positions; 0 = the model's training context
	NBatch   int // most rows one llama_decode may take; 0 = 2048
	NUBatch  int // physical batch size; 0 = 512
	NSeqMax  int // distinct sequences; 0 = 1
	NThreads int // 0 = runtime.NumCPU()
	// FlashAttn turns flash attention on; off by default, since the parity checks of a
	// training pipeline compare against the plain soft_max attention.
	FlashAttn bool
	// KVF32 stores the KV cache in F32 instead of F16: logits then match an F32
	// reference to about 1e-5 instead of 1e-3.
	KVF32 bool
	// Embeddings also extracts the output hidden states (Embeddings method).
	Embeddings bool
}

// Context is a llama.cpp decoding context: a KV cache plus the outputs of the last
// decode. It is not safe for concurrent use. Position bookkeeping (n_past) is the
// caller's job.
type Context struct {
	c      *C.struct_llama_context
	m      *Model
	detach func()

	nCtx, nBatch, nUBatch, nSeqMax, nVocab int
	nEmbdInp, nEmbdOut                     int
	causal                                 bool
	embeddings                             bool

	// outputs lists, in order, the row indices (relative to the last Decode* call)
	// whose logits llama.cpp kept; outBase is where that call's final llama_decode
	// batch starts, since a long call is split into several.
	outputs []int
	outBase int

	adapters map[*Adapter]float32
}

// NewContext creates a decoding context on m.
func NewContext(m *Model, p ContextParams) (*Context, error) {
	m.live()
	if m.vocabOnly {
		// llama.cpp creates the context but would crash decoding without weights.
		return nil, fmt.Errorf("model %s was loaded vocabulary-only; it cannot decode", m.path)
	}
	cp := C.llama_context_default_params()
	if p.NCtx > 0 {
		cp.n_ctx = C.uint32_t(p.NCtx)
	} else {
		cp.n_ctx = 0 // from the model
	}
	if p.NBatch > 0 {
		cp.n_batch = C.uint32_t(p.NBatch)
	}
	if p.NUBatch > 0 {
		cp.n_ubatch = C.uint32_t(p.NUBatch)
	}
	if p.NSeqMax > 0 {
		cp.n_seq_max = C.uint32_t(p.NSeqMax)
	}
	threads := p.NThreads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	cp.n_threads = C.int32_t(threads)
	cp.n_threads_batch = C.int32_t(threads)
	cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	if p.FlashAttn {
		cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
	}
	if p.KVF32 {
		cp.type_k = C.GGML_TYPE_F32
		cp.type_v = C.GGML_TYPE_F32
	}
	cp.embeddings = C.bool(p.Embeddings)
	cp.no_perf = true

	clearErrors()
	cc := C.llama_init_from_model(m.c, cp)
	if cc == nil {
		return nil, withCause(fmt.Sprintf("model %s: llama.cpp could not create a context", m.path))
	}
	c := &Context{c: cc, m: m, causal: true, embeddings: p.Embeddings,
		nCtx:     int(C.llama_n_ctx(cc)),
		nBatch:   int(C.llama_n_batch(cc)),
		nUBatch:  int(C.llama_n_ubatch(cc)),
		nSeqMax:  int(C.llama_n_seq_max(cc)),
		nVocab:   m.nVocab,
		nEmbdInp: m.NEmbdInp(),
		nEmbdOut: m.NEmbd(),
	}
	c.adapters = map[*Adapter]float32{}
	c.detach = m.Attach(c)
	return c, nil
}

// Close frees the context. Closing twice is a no-op.
func (c *Context) Close() error {
	if c == nil || c.c == nil {
		return nil
	}
	for a := range c.adapters {
		a.forget(c)
	}
	c.adapters = nil
	C.llama_free(c.c)
	c.c = nil
	c.detach()
	return nil
}

func (c *Context) live() {
	if c == nil || c.c == nil {
		panic("llama: use of a closed or nil Context")
	}
}

// Model is the model the context decodes with.
func (c *Context) Model() *Model { return c.m }

// NCtx is the KV cache size in positions.
func (c *Context) NCtx() int { return c.nCtx }

// NBatch is the most rows one decode call may take when all of them produce logits.
func (c *Context) NBatch() int { return c.nBatch }

// NUBatch is the physical batch size; non-causal decodes must fit in it.
func (c *Context) NUBatch() int { return c.nUBatch }

// SetCausalAttn switches causal masking; models whose image rows attend to each
// other (mtmd's DecodeUseNonCausal) decode those rows with it off.
func (c *Context) SetCausalAttn(causal bool) {
	c.live()
	C.llama_set_causal_attn(c.c, C.bool(causal))
	c.causal = causal
}

// ClearMemory empties the KV cache of every sequence.
func (c *Context) ClearMemory() {
	c.live()
	C.llama_memory_clear(C.llama_get_memory(c.c), true)
	c.outputs = nil
}

// RemoveTokens drops the cached positions [p0, p1) of sequence seqID (p1 < 0: to the
// end). It reports false when llama.cpp cannot remove part of a sequence.
func (c *Context) RemoveTokens(seqID, p0, p1 int) bool {
	c.live()
	return bool(C.llama_memory_seq_rm(C.llama_get_memory(c.c), C.llama_seq_id(seqID), C.llama_pos(p0), C.llama_pos(p1)))
}

// SetThreads changes the number of CPU threads used for decoding.
func (c *Context) SetThreads(n int) {
	c.live()
	C.llama_set_n_threads(c.c, C.int32_t(n), C.int32_t(n))
}
