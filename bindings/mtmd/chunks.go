package mtmd

/*
#include <stdlib.h>
#include "mtmd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unsafe"
)

// ChunkKind tells text chunks from media chunks.
type ChunkKind int

// Chunk kinds, as mtmd_input_chunk_type.
const (
	ChunkText  ChunkKind = C.MTMD_INPUT_CHUNK_TYPE_TEXT
	ChunkImage ChunkKind = C.MTMD_INPUT_CHUNK_TYPE_IMAGE
	ChunkAudio ChunkKind = C.MTMD_INPUT_CHUNK_TYPE_AUDIO
)

func (k ChunkKind) String() string {
	switch k {
	case ChunkText:
		return "text"
	case ChunkImage:
		return "image"
	case ChunkAudio:
		return "audio"
	}
	return fmt.Sprintf("ChunkKind(%d)", int(k))
}

// Image is packed 8-bit RGB, W·H·3 bytes, row-major.
type Image struct {
	RGB  []byte
	W, H int
}

// Chunk is one piece of a tokenized prompt: text tokens, or the rows of one image
// (or image slice).
type Chunk struct {
	Kind    ChunkKind
	Tokens  []int32 // text chunks only
	NTokens int     // rows this chunk adds to the batch: text tokens or embedding rows
	NPos    int     // positions it advances n_past by (differs from NTokens under M-RoPE)
	NX, NY  int     // grid of image rows (image chunks; used for M-RoPE positions)
	MRoPE   bool    // image rows take 4 positions each
	Image   int     // index of the image (or audio) the chunk belongs to; -1 for text

	c *C.mtmd_input_chunk // owned by the Prompt
}

// Positions returns the positions llama.cpp's mtmd helper gives this chunk's rows
// when it starts at pos0: pos0, pos0+1, … for text, and for image rows too unless
// M-RoPE is used. M-RoPE image rows get 4·NTokens positions, section by section:
// all rows' pos0, then pos0+row, then pos0+column, then zeros (the layout
// llama.DecodeEmbeddingsAt takes). The next chunk starts at pos0+NPos.
func (ch *Chunk) Positions(pos0 int) []int32 {
	n := ch.NTokens
	if ch.Kind == ChunkText || !ch.MRoPE {
		p := make([]int32, n)
		for i := range p {
			p[i] = int32(pos0 + i)
		}
		return p
	}
	p := make([]int32, 4*n)
	if ch.Kind == ChunkAudio || ch.NX*ch.NY != n {
		// Audio (and anything not laid out on a grid) advances all three sections together.
		for i := 0; i < n; i++ {
			p[i], p[n+i], p[2*n+i] = int32(pos0+i), int32(pos0+i), int32(pos0+i)
		}
		return p
	}
	for y := 0; y < ch.NY; y++ {
		for x := 0; x < ch.NX; x++ {
			i := y*ch.NX + x
			p[i], p[n+i], p[2*n+i] = int32(pos0), int32(pos0+y), int32(pos0+x)
		}
	}
	return p
}

// Prompt is a tokenized prompt: its chunks, in order, and the C state needed to
// encode its images. Close frees it (closing the Context does too).
type Prompt struct {
	Chunks []Chunk
	ctx    *Context
	c      *C.mtmd_input_chunks
}

// TokenizePrompt splits text, which must contain one DefaultMarker per image, into
// chunks exactly as llama.cpp's mtmd_tokenize does: text around the markers is
// tokenized (addSpecial adds BOS; parseSpecial turns control-token text into control
// tokens) and each marker becomes the image's chunk(s), with any begin/end tokens the
// projector type uses in the neighbouring text chunks.
func (c *Context) TokenizePrompt(text string, images []Image, addSpecial, parseSpecial bool) (*Prompt, error) {
	c.live()
	if n := strings.Count(text, DefaultMarker()); n != len(images) {
		return nil, fmt.Errorf("prompt has %d image markers (%s) for %d images", n, DefaultMarker(), len(images))
	}
	bitmaps := make([]*C.mtmd_bitmap, 0, len(images))
	defer func() {
		for _, b := range bitmaps {
			C.mtmd_bitmap_free(b)
		}
	}()
	for i, im := range images {
		if im.W <= 0 || im.H <= 0 || len(im.RGB) != 3*im.W*im.H {
			return nil, fmt.Errorf("image %d: %d bytes for %dx%d RGB (want %d)", i, len(im.RGB), im.W, im.H, 3*im.W*im.H)
		}
		b := C.mtmd_bitmap_init(C.uint32_t(im.W), C.uint32_t(im.H), (*C.uchar)(unsafe.Pointer(&im.RGB[0])))
		// The id travels to every chunk of the image (its tiles or slices too).
		id := C.CString(strconv.Itoa(i))
		C.mtmd_bitmap_set_id(b, id)
		C.free(unsafe.Pointer(id))
		bitmaps = append(bitmaps, b)
	}
	// The bitmap pointer array is read by C, so it lives in C memory.
	var arr **C.mtmd_bitmap
	if len(bitmaps) > 0 {
		arr = (**C.mtmd_bitmap)(C.malloc(C.size_t(len(bitmaps)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
		defer C.free(unsafe.Pointer(arr))
		copy(unsafe.Slice(arr, len(bitmaps)), bitmaps)
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	in := C.mtmd_input_text{text: ctext, add_special: C.bool(addSpecial), parse_special: C.bool(parseSpecial)}
	chunks := C.mtmd_input_chunks_init()
	llamaClearErrors()
	switch r := C.mtmd_tokenize(c.c, chunks, &in, (**C.mtmd_bitmap)(unsafe.Pointer(arr)), C.size_t(len(bitmaps))); r {
	case 0:
	case 1:
		C.mtmd_input_chunks_free(chunks)
		return nil, errors.New("tokenize prompt: number of images does not match the markers")
	case 2:
		C.mtmd_input_chunks_free(chunks)
		return nil, causeErr("tokenize prompt: image preprocessing failed")
	default:
		C.mtmd_input_chunks_free(chunks)
		return nil, causeErr(fmt.Sprintf("tokenize prompt: mtmd_tokenize failed (%d)", int(r)))
	}
	p := &Prompt{ctx: c, c: chunks}
	mrope := bool(C.mtmd_decode_use_mrope(c.c))
	for i := 0; i < int(C.mtmd_input_chunks_size(chunks)); i++ {
		cc := C.mtmd_input_chunks_get(chunks, C.size_t(i))
		ch := Chunk{
			Kind:    ChunkKind(C.mtmd_input_chunk_get_type(cc)),
			NTokens: int(C.mtmd_input_chunk_get_n_tokens(cc)),
			NPos:    int(C.mtmd_input_chunk_get_n_pos(cc)),
			Image:   -1,
			c:       cc,
		}
		if ch.Kind != ChunkText {
			if id := C.mtmd_input_chunk_get_id(cc); id != nil {
				if k, err := strconv.Atoi(C.GoString(id)); err == nil {
					ch.Image = k
				}
			}
		}
		switch ch.Kind {
		case ChunkText:
			var n C.size_t
			tp := C.mtmd_input_chunk_get_tokens_text(cc, &n)
			if n > 0 {
				ch.Tokens = append([]int32(nil), unsafe.Slice((*int32)(unsafe.Pointer(tp)), int(n))...)
			}
		case ChunkImage:
			ch.MRoPE = mrope
			if it := C.mtmd_input_chunk_get_tokens_image(cc); it != nil {
				ch.NX = int(C.mtmd_image_tokens_get_nx(it))
				ch.NY = int(C.mtmd_image_tokens_get_ny(it))
			}
		case ChunkAudio:
			ch.MRoPE = mrope
		}
		p.Chunks = append(p.Chunks, ch)
	}
	c.prompts[p] = struct{}{}
	return p, nil
}

// Close frees the prompt's C state; its Chunks stay readable but cannot be encoded.
func (p *Prompt) Close() error {
	if p == nil || p.c == nil {
		return nil
	}
	C.mtmd_input_chunks_free(p.c)
	p.c = nil
	for i := range p.Chunks {
		p.Chunks[i].c = nil
	}
	delete(p.ctx.prompts, p)
	return nil
}

// NPos is the number of positions the whole prompt occupies.
func (p *Prompt) NPos() int {
	n := 0
	for _, ch := range p.Chunks {
		n += ch.NPos
	}
	return n
}

// Embedding is the output of the projector for one image chunk: NRows rows of NEmbd
// floats, row-major, to be decoded in place of the chunk.
type Embedding struct {
	Data         []float32
	NRows, NEmbd int
	NPos         int  // positions the rows occupy (NRows unless M-RoPE)
	NX, NY       int  // grid of the rows
	MRoPE        bool // rows take M-RoPE positions (see Chunk.Positions)
	NonCausal    bool // rows attend to each other without a causal mask
}

// Encode runs the projector on media chunk i of the prompt.
func (p *Prompt) Encode(i int) (*Embedding, error) {
	if p.c == nil {
		return nil, errors.New("encode: prompt is closed")
	}
	if i < 0 || i >= len(p.Chunks) {
		return nil, fmt.Errorf("encode: chunk %d outside [0, %d)", i, len(p.Chunks))
	}
	ch := &p.Chunks[i]
	if ch.Kind == ChunkText {
		return nil, fmt.Errorf("encode: chunk %d is text", i)
	}
	c := p.ctx
	c.live()
	llamaClearErrors()
	if r := C.mtmd_encode_chunk(c.c, ch.c); r != 0 {
		return nil, causeErr(fmt.Sprintf("encode: projector failed on chunk %d (%d)", i, int(r)))
	}
	out := C.mtmd_get_output_embd(c.c)
	if out == nil {
		return nil, errors.New("encode: projector returned no embeddings")
	}
	data := append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(out)), ch.NTokens*c.nEmbd)...)
	if c.imgBreak != nil && !allFinite(data) {
		repairBreakRows(data, c.imgBreak) // see imgbreak.go; callers still check finiteness
	}
	return &Embedding{
		Data:      data,
		NRows:     ch.NTokens,
		NEmbd:     c.nEmbd,
		NPos:      ch.NPos,
		NX:        ch.NX,
		NY:        ch.NY,
		MRoPE:     ch.MRoPE,
		NonCausal: bool(C.mtmd_decode_use_non_causal(c.c)),
	}, nil
}

// Encode turns one RGB image into its embedding rows. It fails for projectors that
// split an image into several chunks (slices or tiles); use TokenizePrompt there.
func (c *Context) Encode(rgb []byte, w, h int) (*Embedding, error) {
	p, err := c.TokenizePrompt(DefaultMarker(), []Image{{RGB: rgb, W: w, H: h}}, false, true)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	idx := -1
	for i, ch := range p.Chunks {
		if ch.Kind != ChunkText {
			if idx >= 0 {
				return nil, errors.New("encode: this projector splits an image into several chunks; use TokenizePrompt")
			}
			idx = i
		}
	}
	if idx < 0 {
		return nil, errors.New("encode: the projector produced no image chunk")
	}
	return p.Encode(idx)
}

// TokensPerImage returns how many embedding rows a w×h image becomes (summed over
// its slices, for projectors that slice images). It preprocesses a blank image but
// does not run the encoder.
func (c *Context) TokensPerImage(w, h int) (int, error) {
	p, err := c.TokenizePrompt(DefaultMarker(), []Image{{RGB: make([]byte, 3*w*h), W: w, H: h}}, false, true)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	n := 0
	for _, ch := range p.Chunks {
		if ch.Kind != ChunkText {
			n += ch.NTokens
		}
	}
	return n, nil
}

// allFinite reports whether no value is NaN or infinite.
func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
