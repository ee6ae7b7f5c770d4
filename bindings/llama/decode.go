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

// DecodeTokens runs tokens through the model at positions pos0, pos0+1, … of sequence
// seqID, appending them to the KV cache. With logitsAll every row gets logits;
// otherwise only the last one does, and a call longer than NBatch is split.
func (c *Context) DecodeTokens(tokens []int32, pos0, seqID int, logitsAll bool) error {
	c.live()
	if err := c.m.checkTokens(tokens); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return c.decode(rows{tokens: tokens, n: len(tokens)}, linearPos(pos0, len(tokens)), seqID, logitsAll)
}

// DecodeEmbeddings runs nRows input embedding rows (row-major, NEmbdInp floats each,
// e.g. image rows from mtmd) at positions pos0, pos0+1, … of sequence seqID. Models
// with M-RoPE need explicit positions: use DecodeEmbeddingsAt.
func (c *Context) DecodeEmbeddings(embd []float32, nRows, pos0, seqID int, logitsAll bool) error {
	c.live()
	if c.m.nPosPerEmbd() != 1 {
		return fmt.Errorf("decode: this model uses M-RoPE; give explicit positions (DecodeEmbeddingsAt)")
	}
	return c.DecodeEmbeddingsAt(embd, nRows, linearPos(pos0, nRows), seqID, logitsAll)
}

// DecodeEmbeddingsAt is DecodeEmbeddings with explicit positions: nRows of them, or
// for M-RoPE models 4·nRows laid out section by section (all rows' first position,
// then all rows' second, …), the layout llama.cpp reads for embedding batches.
func (c *Context) DecodeEmbeddingsAt(embd []float32, nRows int, pos []int32, seqID int, logitsAll bool) error {
	c.live()
	if nRows <= 0 {
		return fmt.Errorf("decode: no embedding rows")
	}
	if len(embd) != nRows*c.nEmbdInp {
		return fmt.Errorf("decode: %d floats for %d rows of width %d (want %d)", len(embd), nRows, c.nEmbdInp, nRows*c.nEmbdInp)
	}
	for i, v := range embd {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("decode: embedding row %d has a non-finite value", i/c.nEmbdInp)
		}
	}
	return c.decode(rows{embd: embd, n: nRows}, pos, seqID, logitsAll)
}

// rows is the input of one decode call: token ids or embedding rows.
type rows struct {
	tokens []int32
	embd   []float32
	n      int
}

// linearPos is pos0, pos0+1, …: one position per row, as llama.cpp expects them for
// token rows and for embedding rows of models without M-RoPE.
func linearPos(pos0, n int) []int32 {
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(pos0 + i)
	}
	return p
}

// decode validates a call and feeds it to llama_decode in batches of at most NBatch
// rows (one batch when every row needs logits, since each llama_decode replaces the
// previous outputs).
func (c *Context) decode(in rows, pos []int32, seqID int, logitsAll bool) error {
	n := in.n
	if n == 0 {
		return fmt.Errorf("decode: empty input")
	}
	if seqID < 0 || seqID >= c.nSeqMax {
		return fmt.Errorf("decode: sequence id %d outside [0, %d)", seqID, c.nSeqMax)
	}
	sections := 1
	if in.embd != nil {
		sections = c.m.nPosPerEmbd()
	}
	if len(pos) != n*sections {
		return fmt.Errorf("decode: %d positions for %d rows (want %d)", len(pos), n, n*sections)
	}
	for _, p := range pos {
		if p < 0 {
			return fmt.Errorf("decode: negative position %d", p)
		}
	}
	if logitsAll && n > c.nBatch {
		return fmt.Errorf("decode: %d rows with logits exceed the batch size %d", n, c.nBatch)
	}
	step := c.nBatch
	if !c.causal {
		// llama.cpp asserts that a non-causal batch fits one physical batch.
		if n > c.nUBatch {
			return fmt.Errorf("decode: %d rows decoded without causal masking exceed n_ubatch %d", n, c.nUBatch)
		}
		step = n
	}
	c.outputs = nil
	for s := 0; s < n; s += step {
		e := min(s+step, n)
		last := e == n
		if err := c.decodeOne(in, pos, sections, s, e, seqID, logitsAll, last); err != nil {
			c.outputs = nil
			return err
		}
		c.outBase = s
	}
	if logitsAll {
		c.outputs = make([]int, n)
		for i := range c.outputs {
			c.outputs[i] = i
		}
	} else {
		c.outputs = []int{n - 1}
	}
	return nil
}

// decodeOne runs rows [s, e) as one llama_decode. The batch lives in C memory because
// it is a struct of pointers (cgo forbids handing C Go memory that holds Go pointers).
func (c *Context) decodeOne(in rows, pos []int32, sections, s, e, seqID int, logitsAll, last bool) error {
	n := e - s
	width := 0
	if in.embd != nil {
		width = c.nEmbdInp
	}
	b := C.llama_batch_init(C.int32_t(n), C.int32_t(width), 1)
	if sections > 1 {
		// llama_batch_init allocates one position per row; M-RoPE rows need more.
		C.free(unsafe.Pointer(b.pos))
		b.pos = (*C.llama_pos)(C.malloc(C.size_t(n*sections) * C.size_t(unsafe.Sizeof(C.llama_pos(0)))))
	}
	defer C.llama_batch_free(b)
	b.n_tokens = C.int32_t(n)

	if in.tokens != nil {
		copy(unsafe.Slice((*int32)(unsafe.Pointer(b.token)), n), in.tokens[s:e])
	} else {
		copy(unsafe.Slice((*float32)(unsafe.Pointer(b.embd)), n*width), in.embd[s*width:e*width])
	}
	bpos := unsafe.Slice((*int32)(unsafe.Pointer(b.pos)), n*sections)
	total := len(pos) / sections
	for j := 0; j < sections; j++ {
		copy(bpos[j*n:(j+1)*n], pos[j*total+s:j*total+e])
	}
	nSeq := unsafe.Slice(b.n_seq_id, n)
	seq := unsafe.Slice(b.seq_id, n)
	logits := unsafe.Slice((*int8)(unsafe.Pointer(b.logits)), n)
	for i := 0; i < n; i++ {
		nSeq[i] = 1
		*seq[i] = C.llama_seq_id(seqID)
		logits[i] = 0
		if logitsAll || (last && i == n-1) {
			logits[i] = 1
		}
	}

	clearErrors()
	switch r := C.llama_decode(c.c, b); {
	case r == 0:
		return nil
	case r == 1:
		return withCause(fmt.Sprintf("decode: no room in the KV cache (n_ctx %d) for %d rows", c.nCtx, n))
	case r == 2:
		return withCause("decode: aborted")
	case r == -1:
		return withCause("decode: llama.cpp rejected the batch")
	default:
		return withCause(fmt.Sprintf("decode: llama_decode failed (%d)", int(r)))
	}
}

// NOutputs is the number of rows of the last decode that have logits.
func (c *Context) NOutputs() int { return len(c.outputs) }

// batchIndex maps a row index of the last Decode* call (negative: counted from the
// last output) to the index llama_get_logits_ith expects, or fails. llama.cpp would
// abort on a row without outputs, since this build keeps its asserts.
func (c *Context) batchIndex(i int) (int, error) {
	if len(c.outputs) == 0 {
		return 0, fmt.Errorf("no outputs: decode something first")
	}
	if i < 0 {
		if -i > len(c.outputs) {
			return 0, fmt.Errorf("output %d out of range (%d outputs)", i, len(c.outputs))
		}
		i = c.outputs[len(c.outputs)+i]
	}
	for _, o := range c.outputs {
		if o == i {
			return i - c.outBase, nil
		}
	}
	return 0, fmt.Errorf("row %d of the last decode has no logits", i)
}

// Logits returns a copy of the logits (NVocab floats) of row i of the last Decode*
// call; i = -1 is the last row that has logits.
func (c *Context) Logits(i int) ([]float32, error) {
	c.live()
	b, err := c.batchIndex(i)
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	p := C.llama_get_logits_ith(c.c, C.int32_t(b))
	if p == nil {
		return nil, withCause(fmt.Sprintf("logits: none for row %d", i))
	}
	return append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), c.nVocab)...), nil
}

// LogitsAll returns a copy of all logits of the last decode, NOutputs()·NVocab floats
// in row order.
func (c *Context) LogitsAll() ([]float32, error) {
	c.live()
	if len(c.outputs) == 0 {
		return nil, fmt.Errorf("logits: no outputs: decode something first")
	}
	p := C.llama_get_logits(c.c)
	if p == nil {
		return nil, withCause("logits: none")
	}
	return append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), len(c.outputs)*c.nVocab)...), nil
}

// Embeddings returns a copy of the output hidden state (NEmbd floats) of row i of the
// last decode; the context must have been created with Embeddings.
func (c *Context) Embeddings(i int) ([]float32, error) {
	c.live()
	if !c.embeddings {
		return nil, fmt.Errorf("embeddings: context was created without Embeddings")
	}
	b, err := c.batchIndex(i)
	if err != nil {
		return nil, fmt.Errorf("embeddings: %w", err)
	}
	p := C.llama_get_embeddings_ith(c.c, C.int32_t(b))
	if p == nil {
		return nil, withCause(fmt.Sprintf("embeddings: none for row %d", i))
	}
	return append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(p)), c.nEmbdOut)...), nil
}
