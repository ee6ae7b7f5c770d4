package llama

/*
#include <stdlib.h>
#include "llama.h"

// calft_cpu_only is an empty device list: llama.cpp then uses no device but the CPU,
// even where calft has loaded a GPU backend library into ggml's registry.
static ggml_backend_dev_t calft_cpu_only[1] = { NULL };
static void calft_use_cpu_only(struct llama_model_params * p) { p->devices = calft_cpu_only; }
*/
import "C"

import (
	"fmt"
	"io"
	"sync"
	"unsafe"
)

// ModelParams selects how a model file is loaded.
type ModelParams struct {
	// VocabOnly loads the vocabulary and metadata but no weights (fast; enough to tokenize).
	VocabOnly bool
	// NGPULayers is the number of layers to offload to a GPU backend, when one is
	// registered (compiled in, or loaded by ggml.OpenLibrary); 0 keeps llama.cpp on the
	// CPU alone.
	NGPULayers int
	// UseMmap maps the file instead of reading it into memory.
	UseMmap bool
	// MetadataOnly loads the vocabulary and the hyper-parameters (what mtmd needs of a
	// text model) and allocates no weights: unlike VocabOnly, the model reports its sizes;
	// it cannot decode.
	MetadataOnly bool
}

// Model is a loaded text model and its vocabulary. Close frees it, together with the
// contexts, adapters and other dependents still open on it.
type Model struct {
	c     *C.struct_llama_model
	vocab *C.struct_llama_vocab
	path  string

	mu   sync.Mutex
	deps map[io.Closer]struct{} // closed before the model, since they point into it
	// adapters are freed with the model: they are useless without it, and
	// llama_model_free does not free them in this llama.cpp (despite llama.h's note).
	adapters map[*Adapter]struct{}

	nVocab    int
	vocabOnly bool
}

// LoadModel loads a GGUF text model. The file is checked to exist and to be GGUF
// before llama.cpp sees it; loader failures carry llama.cpp's own error message.
func LoadModel(path string, p ModelParams) (*Model, error) {
	if err := CheckGGUFFile(path, "model"); err != nil {
		return nil, err
	}
	initBackend()
	mp := C.llama_model_default_params()
	mp.vocab_only = C.bool(p.VocabOnly)
	mp.n_gpu_layers = C.int32_t(p.NGPULayers)
	if p.NGPULayers == 0 {
		// Without layers to offload, no device at all: otherwise llama.cpp would still
		// place buffers and large-batch products on a GPU that calft's own loading of a
		// backend library made visible.
		C.calft_use_cpu_only(&mp)
	}
	mp.use_mmap = C.bool(p.UseMmap && !p.MetadataOnly)
	mp.no_alloc = C.bool(p.MetadataOnly)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	clearErrors()
	cm := C.llama_model_load_from_file(cpath, mp)
	if cm == nil {
		return nil, withCause(fmt.Sprintf("model %s: llama.cpp could not load it", path))
	}
	m := &Model{c: cm, vocab: C.llama_model_get_vocab(cm), path: path,
		deps: map[io.Closer]struct{}{}, adapters: map[*Adapter]struct{}{}, vocabOnly: p.VocabOnly || p.MetadataOnly}
	m.nVocab = int(C.llama_vocab_n_tokens(m.vocab))
	return m, nil
}

// Close frees the model. Dependents registered with Attach (contexts, multimodal
// projectors) and adapters loaded on it are closed first. Closing twice is a no-op.
func (m *Model) Close() error {
	if m == nil || m.c == nil {
		return nil
	}
	m.mu.Lock()
	deps := make([]io.Closer, 0, len(m.deps))
	for d := range m.deps {
		deps = append(deps, d)
	}
	m.mu.Unlock()
	var first error
	for _, d := range deps {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
	}
	m.mu.Lock()
	adapters := make([]*Adapter, 0, len(m.adapters))
	for a := range m.adapters {
		adapters = append(adapters, a)
	}
	m.mu.Unlock()
	for _, a := range adapters {
		a.Close()
	}
	m.mu.Lock()
	m.adapters = nil
	m.deps = nil
	m.mu.Unlock()
	C.llama_model_free(m.c)
	m.c, m.vocab = nil, nil
	return first
}

// Attach registers d to be closed before the model is freed, because d holds a pointer
// into the model. The returned detach function unregisters it (call it from d.Close).
func (m *Model) Attach(d io.Closer) (detach func()) {
	m.live()
	m.mu.Lock()
	m.deps[d] = struct{}{}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		if m.deps != nil {
			delete(m.deps, d)
		}
		m.mu.Unlock()
	}
}

// live panics on a closed model: a clear message instead of a use-after-free in C.
func (m *Model) live() {
	if m == nil || m.c == nil {
		panic("llama: use of a closed or nil Model")
	}
}

// Handle returns the llama_model pointer for sibling bindings (mtmd); it is not for
// model logic and is invalid after Close.
func (m *Model) Handle() unsafe.Pointer { m.live(); return unsafe.Pointer(m.c) }

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// VocabOnly reports whether the model was loaded without weights.
func (m *Model) VocabOnly() bool { return m.vocabOnly }

// NEmbd is the width of the token embeddings and hidden states.
func (m *Model) NEmbd() int { m.live(); return int(C.llama_model_n_embd(m.c)) }

// NEmbdInp is the width llama_decode expects for embedding input rows (equal to NEmbd
// for most architectures).
func (m *Model) NEmbdInp() int { m.live(); return int(C.llama_model_n_embd_inp(m.c)) }

// NLayer is the number of transformer blocks.
func (m *Model) NLayer() int { m.live(); return int(C.llama_model_n_layer(m.c)) }

// NVocab is the number of tokens in the vocabulary, the width of a logits row.
func (m *Model) NVocab() int { m.live(); return m.nVocab }

// NCtxTrain is the context length the model was trained with.
func (m *Model) NCtxTrain() int { m.live(); return int(C.llama_model_n_ctx_train(m.c)) }

// NParams is the number of weights.
func (m *Model) NParams() uint64 { m.live(); return uint64(C.llama_model_n_params(m.c)) }

// UsesMRoPE reports whether the model takes four positions per embedding row (Qwen2-VL
// style M-RoPE); DecodeEmbeddingsAt then needs 4·nRows positions.
func (m *Model) UsesMRoPE() bool { return m.nPosPerEmbd() == 4 }

func (m *Model) nPosPerEmbd() int {
	m.live()
	switch C.llama_model_rope_type(m.c) {
	case C.LLAMA_ROPE_TYPE_MROPE, C.LLAMA_ROPE_TYPE_IMROPE:
		return 4
	}
	return 1
}

// Meta returns a scalar metadata value as a string, and whether the key exists.
func (m *Model) Meta(key string) (string, bool) {
	m.live()
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	return metaString(func(buf *C.char, n C.size_t) C.int32_t {
		return C.llama_model_meta_val_str(m.c, ckey, buf, n)
	})
}

// Arch is general.architecture ("llama", "qwen2", ...).
func (m *Model) Arch() string { s, _ := m.Meta("general.architecture"); return s }

// Description is llama.cpp's one-line summary (architecture, size, type).
func (m *Model) Description() string {
	m.live()
	s, _ := metaString(func(buf *C.char, n C.size_t) C.int32_t { return C.llama_model_desc(m.c, buf, n) })
	return s
}

// ChatTemplate returns the model's default chat template, or "" when it has none.
func (m *Model) ChatTemplate() string {
	m.live()
	t := C.llama_model_chat_template(m.c, nil)
	if t == nil {
		return ""
	}
	return C.GoString(t)
}

// metaString runs a llama.cpp "write a string into buf, return its length or -1" call,
// growing the buffer when the value did not fit.
func metaString(get func(buf *C.char, n C.size_t) C.int32_t) (string, bool) {
	size := 256
	for {
		buf := (*C.char)(C.malloc(C.size_t(size)))
		n := int(get(buf, C.size_t(size)))
		if n < 0 {
			C.free(unsafe.Pointer(buf))
			return "", false
		}
		if n < size {
			s := C.GoStringN(buf, C.int(n))
			C.free(unsafe.Pointer(buf))
			return s, true
		}
		C.free(unsafe.Pointer(buf))
		size = n + 1
	}
}
