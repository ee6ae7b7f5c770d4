// Package llama is a thin Go layer over libllama (llama.cpp), compiled from the pinned
// github.com/ollama/ollama module. It exposes models, vocabularies, decode contexts and
// LoRA adapters as Go values with explicit Close methods; no cgo type leaves the package.
//
// Every call that llama.cpp would answer with an abort on bad input is validated here
// first, so that a wrong argument becomes a Go error instead of a dead process.
package llama

/*
#cgo CXXFLAGS: -std=c++17
#cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/llama/llama.cpp/include
#cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/ml/backend/ggml/ggml/include
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"os"
	"sync"

	// The compiled libllama (and, through it, ggml with the CPU backend).
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
)

var backendOnce sync.Once

// initBackend runs llama_backend_init once per process and installs the log filter
// before anything can print. Every entry point that reaches C calls it.
func initBackend() {
	backendOnce.Do(func() {
		installLogger()
		// This llama.cpp reuses a context's previous graph when the batch shape is
		// unchanged, and its check compares the adapter map by address, so a LoRA
		// adapter set, removed or rescaled after the first decode would be silently
		// ignored. Contexts read this switch when created; an explicit setting wins.
		if _, ok := os.LookupEnv("LLAMA_GRAPH_REUSE_DISABLE"); !ok {
			os.Setenv("LLAMA_GRAPH_REUSE_DISABLE", "1")
		}
		C.llama_backend_init()
	})
}
