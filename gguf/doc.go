// Package gguf reads and writes GGUF files in pure Go: the file format alone.
//
// Every model file calft hands to llama.cpp is parsed here first, never by ggml's C
// reader, whose getters abort the process on a wrong key type; a file that cannot be
// parsed gets an error that names it, says what is wrong and what to do. Whether a
// parsed file is one llama.cpp and calft can use is package gguf/check's question.
//
// The format: a header (magic "GGUF", version, tensor count, key/value count),
// typed metadata key/value pairs, tensor descriptors (name, shape in ggml
// order, ggml type, offset), padding up to the alignment, then the tensor data.
// All numbers are little-endian.
package gguf
