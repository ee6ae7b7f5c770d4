// Package mtmd is a thin Go layer over llama.cpp's libmtmd: it loads a multimodal
// projector (mmproj GGUF) for a text model, splits a prompt with media markers into
// text and image chunks the way llama.cpp does, and encodes images into embedding
// rows for the text model. No cgo type leaves the package.
//
// clip.cpp, mtmd.cpp and mtmd-audio.cpp are compiled here through one-line units
// (unit_*.cpp), because the module's own mtmd package needs vendored headers that Go
// module zips drop. mtmd-helper.cpp (which needs miniaudio) is not compiled; the
// position bookkeeping it does lives in Chunk.Positions.
package mtmd

/*
#cgo CXXFLAGS: -std=c++17
#cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/llama/llama.cpp/tools/mtmd
#cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/llama/llama.cpp/include
#cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/ml/backend/ggml/ggml/include
#include <stdlib.h>
#include "mtmd.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/calft/calft/bindings/llama"

	// The clip graph builders clip.cpp links against, and libllama itself.
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
	_ "github.com/ollama/ollama/llama/llama.cpp/tools/mtmd/models"
)

// Params configures a projector context.
type Params struct {
	NThreads int  // threads for image encoding; 0 = runtime.NumCPU()
	UseGPU   bool // run the projector on a GPU backend when one is built in
	Warmup   bool // run a dummy encode at load time (slower load, steadier first encode)
}

// Context is a loaded multimodal projector bound to a text model. It is not safe for
// concurrent use.
type Context struct {
	c       *C.mtmd_context
	model   *llama.Model
	detach  func()
	nEmbd   int
	prompts map[*Prompt]struct{} // chunk lists pointing into this context
	// imgBreak is a pixtral projector's [IMG_BREAK] row (see imgbreak.go), else nil.
	imgBreak []float32
}

var logOnce sync.Once

// DefaultMarker is the text that stands for one image in a prompt ("<__media__>").
func DefaultMarker() string { return C.GoString(C.mtmd_default_marker()) }

// Init loads the projector file mmprojPath for model. The file is checked to exist
// and to be GGUF before clip.cpp sees it; load failures (including a projector whose
// output width does not match the model) carry clip's own message.
func Init(mmprojPath string, model *llama.Model, p Params) (*Context, error) {
	if err := llama.CheckGGUFFile(mmprojPath, "mmproj"); err != nil {
		return nil, err
	}
	if model == nil {
		return nil, errors.New("mmproj: no text model")
	}
	logOnce.Do(installLogger)
	cp := C.mtmd_context_params_default()
	cp.use_gpu = C.bool(p.UseGPU)
	cp.print_timings = false
	cp.warmup = C.bool(p.Warmup)
	cp.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
	n := p.NThreads
	if n <= 0 {
		n = runtime.NumCPU()
	}
	cp.n_threads = C.int(n)
	cpath := C.CString(mmprojPath)
	defer C.free(unsafe.Pointer(cpath))
	llama.ClearLogErrors()
	cc := C.mtmd_init_from_file(cpath, (*C.struct_llama_model)(model.Handle()), cp)
	if cc == nil {
		msg := fmt.Sprintf("mmproj %s: could not load it for model %s", mmprojPath, model.Path())
		if cause := llama.TakeLogErrors(); cause != "" {
			msg += ": " + cause
		}
		return nil, errors.New(msg)
	}
	c := &Context{c: cc, model: model, nEmbd: model.NEmbdInp(), prompts: map[*Prompt]struct{}{},
		imgBreak: readImgBreak(mmprojPath)}
	c.detach = model.Attach(c)
	return c, nil
}

// Close frees the projector and any prompt still open on it. Closing twice is a no-op.
func (c *Context) Close() error {
	if c == nil || c.c == nil {
		return nil
	}
	for p := range c.prompts {
		p.Close()
	}
	C.mtmd_free(c.c)
	c.c = nil
	c.detach()
	return nil
}

func (c *Context) live() {
	if c == nil || c.c == nil {
		panic("mtmd: use of a closed or nil Context")
	}
}

// NEmbd is the width of an embedding row (the text model's input width).
func (c *Context) NEmbd() int { return c.nEmbd }

// SupportsVision reports whether the projector has a vision encoder.
func (c *Context) SupportsVision() bool { c.live(); return bool(C.mtmd_support_vision(c.c)) }

// UsesMRoPE reports whether image rows take M-RoPE positions (Qwen2-VL family);
// Chunk.Positions then returns four positions per row.
func (c *Context) UsesMRoPE() bool { c.live(); return bool(C.mtmd_decode_use_mrope(c.c)) }

// UsesNonCausal reports whether image rows attend to each other without a causal mask
// (Gemma 3); decode them with llama's SetCausalAttn(false) and in one physical batch.
func (c *Context) UsesNonCausal() bool { c.live(); return bool(C.mtmd_decode_use_non_causal(c.c)) }

// llamaClearErrors and causeErr share the llama binding's capture of C error lines.
func llamaClearErrors() { llama.ClearLogErrors() }

func causeErr(msg string) error {
	if cause := llama.TakeLogErrors(); cause != "" {
		return fmt.Errorf("%s: %s", msg, cause)
	}
	return errors.New(msg)
}
