// Package check verifies GGUF files before llama.cpp sees them: text models, vision
// projectors (mmproj) and LoRA adapters. llama.cpp aborts the process on some bad files
// (a wrong key type, a tensor of an unexpected shape, a token list it indexes past its
// end), so every file a user gives calft is checked here first, with a message that
// names the file, the problem and the fix. Text models are read through package arch,
// the same description calft's decoder is built from.
package check

import "github.com/calft/calft/gguf"

// Advice appended to messages; kept in one place so they read the same everywhere.
const (
	adviceRefetch   = "the download or copy is incomplete or damaged, fetch it again"
	adviceReconvert = "convert the model again with a current llama.cpp converter"
)

// optional wraps a getter for keys llama.cpp treats as optional: a missing key gives
// def, a present key of the wrong type is still an error.
func optional[T any](f *gguf.File, key string, def T, get func(string) (T, error)) (T, error) {
	if !f.Has(key) {
		return def, nil
	}
	return get(key)
}

// tensorSpec is one tensor a loader creates: its name, expected ne, and whether the
// file may omit it.
type tensorSpec struct {
	name     string
	shape    []uint64
	optional bool
}

// dim converts a hyper-parameter to a tensor dimension.
func dim(n int) uint64 { return uint64(n) }

// sameShape compares like ggml: missing trailing dimensions count as 1.
func sameShape(t gguf.TensorInfo, want []uint64) bool {
	for i := 0; i < 4; i++ {
		w := uint64(1)
		if i < len(want) {
			w = want[i]
		}
		if t.Dim(i) != w {
			return false
		}
	}
	return len(t.Shape) <= 4
}
