package ggml

// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
//
// // calft_vulkan_settings runs when the program starts, before any thread: see
// // vulkanSettings. (Set later, from Go, lavapipe did not always see them.)
// __attribute__((constructor)) static void calft_vulkan_settings(void) {
//     setenv("GGML_VK_DISABLE_GRAPH_OPTIMIZE", "1", 0);
//     setenv("LP_NUM_THREADS", "0", 0);
// }
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// Kinds are the backend names --backend takes, besides "auto" and device names.
var Kinds = []string{"cpu", "cuda", "vulkan", "metal", "blas"}

// GPUKinds are the kinds "auto" looks for, in order.
var GPUKinds = []string{"cuda", "metal", "vulkan"}

// regNames are ggml's registry names of the kinds.
var regNames = map[string]string{"cpu": "CPU", "cuda": "CUDA", "vulkan": "Vulkan", "metal": "Metal", "blas": "BLAS"}

// registered is the kind's backend registry when its backend is compiled in or loaded.
func registered(kind string) C.ggml_backend_reg_t {
	cs := C.CString(regNames[kind])
	defer C.free(unsafe.Pointer(cs))
	return C.ggml_backend_reg_by_name(cs)
}

// LibraryDirs are the folders searched for backend libraries (libggml-cuda.so and the
// libggml-base.so beside it), in order: $CALFT_BACKEND_DIR, then backends/ beside the
// running program (`make cuda` writes bin/backends/ next to bin/calft), then
// bin/backends/ under the working folder.
func LibraryDirs() []string {
	var dirs []string
	if d := os.Getenv("CALFT_BACKEND_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "backends"))
	}
	dirs = append(dirs, filepath.Join("bin", "backends"))
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// LibraryPath is where OpenLibrary finds a kind's library ("" when absent).
func LibraryPath(kind string) string {
	for _, d := range LibraryDirs() {
		p := filepath.Join(d, LibraryName(kind))
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Registered reports whether a kind's backend is compiled in or already loaded.
func Registered(kind string) bool { return kind == "cpu" || registered(kind) != nil }

// LibraryName is the file name of a kind's backend library.
func LibraryName(kind string) string { return "libggml-" + kind + ".so" }

// libraryKind is the kind a library file is for, from its name.
func libraryKind(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(path), "libggml-"), ".so")
}

var loadMu sync.Mutex

// OpenLibrary registers a kind's backend that is not compiled in, loading its library
// from the first of LibraryDirs that holds it. A missing library is an error that says
// how to build it.
func OpenLibrary(kind string) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	if registered(kind) != nil {
		return nil
	}
	switch kind {
	case "cpu":
		return nil
	case "metal":
		return errors.New("--backend metal: Metal is compiled into calft on Apple Silicon (darwin/arm64) only; build calft there")
	}
	if p := LibraryPath(kind); p != "" {
		return LoadBackendLibrary(p)
	}
	return fmt.Errorf("--backend %s: no %s backend library (%s) in %s; build it with `make %s`, or set CALFT_BACKEND_DIR to the folder that holds it",
		kind, regNames[kind], LibraryName(kind), strings.Join(LibraryDirs(), ", "), kind)
}

// OpenGPULibraries registers every GPU kind's backend that is compiled in or whose
// library is present ("auto" takes what there is: an absent library is no error).
func OpenGPULibraries() {
	for _, kind := range GPUKinds {
		_ = OpenLibrary(kind)
	}
}

// DeviceInfo describes one device ggml can run graphs on.
type DeviceInfo struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Kind        string `json:"kind"` // cpu, gpu, igpu or accel
	Backend     string `json:"backend"`
	FreeBytes   int64  `json:"free_bytes"`
	TotalBytes  int64  `json:"total_bytes"`
}

// Devices lists the devices registered now (call OpenLibrary first for the ones built
// as libraries).
func Devices() []DeviceInfo {
	var out []DeviceInfo
	for i := range int(C.ggml_backend_dev_count()) {
		d := C.ggml_backend_dev_get(C.size_t(i))
		var free, total C.size_t
		C.ggml_backend_dev_memory(d, &free, &total)
		kind := map[C.enum_ggml_backend_dev_type]string{C.GGML_BACKEND_DEVICE_TYPE_CPU: "cpu",
			C.GGML_BACKEND_DEVICE_TYPE_GPU: "gpu", C.GGML_BACKEND_DEVICE_TYPE_IGPU: "igpu",
			C.GGML_BACKEND_DEVICE_TYPE_ACCEL: "accel"}[C.ggml_backend_dev_type(d)]
		out = append(out, DeviceInfo{Name: C.GoString(C.ggml_backend_dev_name(d)),
			Description: C.GoString(C.ggml_backend_dev_description(d)), Kind: kind,
			Backend:   C.GoString(C.ggml_backend_reg_name(C.ggml_backend_dev_backend_reg(d))),
			FreeBytes: int64(free), TotalBytes: int64(total)})
	}
	return out
}

// Vulkan settings: the program sets two variables when it starts, unless the user has
// (calft_vulkan_settings above), that the pinned ggml-vulkan needs to compute calft's
// graphs right, both measured on Mesa's lavapipe, the Vulkan device CI has:
//   - GGML_VK_DISABLE_GRAPH_OPTIMIZE=1: ggml-vulkan reorders a graph's nodes before it
//     runs them, and the decoder's graph with image rows then gave logits 0.47 off in
//     3.8 on the tiny model;
//   - LP_NUM_THREADS=0 (read by lavapipe alone): with lavapipe's threads, training
//     steps gave different losses from run to run (once NaN, once a heap corruption),
//     as if a barrier between two dispatches were missing; with one thread they equal
//     the CPU's to 2e-3 every time. Whether a GPU's Vulkan driver shows the same race
//     is untested.
