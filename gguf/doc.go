// Package gguf reads, writes and validates GGUF files in pure Go.
//
// Every model file calft hands to llama.cpp passes through this package
// first: llama.cpp's loaders abort the whole process (GGML_ASSERT) on several
// kinds of malformed or mistyped metadata, so calft rejects those files here
// with an error that names the file, says what is wrong and what to do.
//
// The format: a header (magic "GGUF", version, tensor count, key/value count),
// typed metadata key/value pairs, tensor descriptors (name, shape in ggml
// order, ggml type, offset), padding up to the alignment, then the tensor data.
// All numbers are little-endian.
package gguf
