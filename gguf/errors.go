package gguf

import (
	"errors"
	"fmt"
)

// Error kinds, for errors.Is. Every error this package returns about a file
// is an *Error whose Kind is one of these.
var (
	ErrNotGGUF       = errors.New("not a GGUF file")
	ErrVersion       = errors.New("unsupported GGUF version")
	ErrTruncated     = errors.New("truncated GGUF file")
	ErrCorrupt       = errors.New("malformed GGUF file")
	ErrKeyMissing    = errors.New("metadata key missing")
	ErrKeyType       = errors.New("metadata key has the wrong type")
	ErrTensorMissing = errors.New("tensor missing")
	ErrTensorShape   = errors.New("tensor has the wrong shape")
	ErrUnsupported   = errors.New("unsupported model")
	ErrMismatch      = errors.New("files do not belong together")
	ErrTensorType    = errors.New("tensor type not supported by this operation")
)

// Error describes a problem with one file. Its text starts with the file's
// path and, where there is one, ends with what the user can do about it.
type Error struct {
	Path string
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }

// Unwrap lets errors.Is match the Kind.
func (e *Error) Unwrap() error { return e.Kind }

func fileErr(path string, kind error, format string, args ...any) *Error {
	return &Error{Path: path, Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Advice appended to messages; kept in one place so they read the same everywhere.
const (
	adviceRefetch   = "the download or copy is incomplete or damaged, fetch it again"
	adviceReconvert = "convert the model again with a current llama.cpp converter"
)

// Errorf makes an error about the file at path, of one of the kinds above; the
// llama.cpp-compatibility checks (package gguf/check) report through it too.
func Errorf(path string, kind error, format string, args ...any) *Error {
	return fileErr(path, kind, format, args...)
}
