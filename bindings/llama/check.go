package llama

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// ggufHeaderSize is magic, version, tensor count and key/value count: the least a
// file must hold before gguf.cpp reads anything else from it.
const ggufHeaderSize = 4 + 4 + 8 + 8

// CheckGGUFFile does the cheap checks that keep a wrong path away from C: the file
// exists, is a regular file and starts with a GGUF header. what names the role of the
// file in the error ("model", "LoRA adapter", ...). It does not validate metadata.
func CheckGGUFFile(path, what string) error {
	if path == "" {
		return fmt.Errorf("%s: no file given", what)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s %s: not a regular file", what, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	defer f.Close()
	var hdr [ggufHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return fmt.Errorf("%s %s: not a GGUF file (too short: %v)", what, path, err)
	}
	if !bytes.Equal(hdr[:4], []byte("GGUF")) {
		return fmt.Errorf("%s %s: not a GGUF file (magic %q)", what, path, hdr[:4])
	}
	if v := uint32(hdr[4]) | uint32(hdr[5])<<8 | uint32(hdr[6])<<16 | uint32(hdr[7])<<24; v < 2 || v > 3 {
		return fmt.Errorf("%s %s: unsupported GGUF version %d (want 2 or 3)", what, path, v)
	}
	return nil
}

// withCause appends the C library's own error lines, when it logged any, to msg.
func withCause(msg string) error {
	if cause := takeErrors(); cause != "" {
		return fmt.Errorf("%s: %s", msg, cause)
	}
	return fmt.Errorf("%s", msg)
}
