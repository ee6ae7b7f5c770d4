package llama

/*
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Adapter is a LoRA adapter loaded for one model. It changes no weights by itself:
// a context applies it through SetAdapter.
type Adapter struct {
	c    *C.struct_llama_adapter_lora
	m    *Model
	path string
	ctxs map[*Context]struct{} // contexts that hold the adapter's pointer
}

// LoadAdapter loads a LoRA adapter GGUF made for m. The file is checked to exist and to
// be GGUF first; llama.cpp's own complaint (wrong architecture, missing tensors, shape
// mismatch) is part of the error.
func LoadAdapter(m *Model, path string) (*Adapter, error) {
	m.live()
	if err := CheckGGUFFile(path, "LoRA adapter"); err != nil {
		return nil, err
	}
	if m.vocabOnly {
		return nil, fmt.Errorf("LoRA adapter %s: model %s was loaded vocabulary-only", path, m.path)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	clearErrors()
	ca := C.llama_adapter_lora_init(m.c, cpath)
	if ca == nil {
		return nil, withCause(fmt.Sprintf("LoRA adapter %s: llama.cpp could not load it", path))
	}
	a := &Adapter{c: ca, m: m, path: path, ctxs: map[*Context]struct{}{}}
	m.mu.Lock()
	m.adapters[a] = struct{}{}
	m.mu.Unlock()
	return a, nil
}

// Path is the file the adapter was loaded from.
func (a *Adapter) Path() string { return a.path }

// Meta returns a scalar metadata value of the adapter file as a string.
func (a *Adapter) Meta(key string) (string, bool) {
	a.live()
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	return metaString(func(buf *C.char, n C.size_t) C.int32_t {
		return C.llama_adapter_meta_val_str(a.c, ckey, buf, n)
	})
}

// Close removes the adapter from every context using it and frees it. Closing twice is
// a no-op.
func (a *Adapter) Close() error {
	if a == nil || a.c == nil {
		return nil
	}
	for c := range a.ctxs {
		C.llama_rm_adapter_lora(c.c, a.c)
		delete(c.adapters, a)
	}
	a.ctxs = nil
	C.llama_adapter_lora_free(a.c)
	a.c = nil
	a.m.mu.Lock()
	if a.m.adapters != nil {
		delete(a.m.adapters, a)
	}
	a.m.mu.Unlock()
	return nil
}

func (a *Adapter) live() {
	if a == nil || a.c == nil {
		panic("llama: use of a closed or nil Adapter")
	}
}

// forget is called by a closing context.
func (a *Adapter) forget(c *Context) { delete(a.ctxs, c) }

// SetAdapter applies a (or changes its scale) in this context; scale multiplies the
// adapter's alpha/rank. Several adapters may be active at once.
// (llama.cpp: llama_set_adapter_lora, one adapter per call in this version.)
func (c *Context) SetAdapter(a *Adapter, scale float32) error {
	c.live()
	a.live()
	if a.m != c.m {
		return fmt.Errorf("LoRA adapter %s was loaded for model %s, not %s", a.path, a.m.path, c.m.path)
	}
	if r := C.llama_set_adapter_lora(c.c, a.c, C.float(scale)); r != 0 {
		return fmt.Errorf("LoRA adapter %s: llama_set_adapter_lora failed (%d)", a.path, int(r))
	}
	c.adapters[a] = scale
	a.ctxs[c] = struct{}{}
	return nil
}

// RemoveAdapter stops applying a in this context; it reports whether a was applied.
func (c *Context) RemoveAdapter(a *Adapter) bool {
	c.live()
	if _, ok := c.adapters[a]; !ok || a.c == nil {
		return false
	}
	C.llama_rm_adapter_lora(c.c, a.c)
	delete(c.adapters, a)
	delete(a.ctxs, c)
	return true
}

// ClearAdapters stops applying every adapter in this context.
func (c *Context) ClearAdapters() {
	c.live()
	C.llama_clear_adapter_lora(c.c)
	for a := range c.adapters {
		delete(a.ctxs, c)
	}
	clear(c.adapters)
}
