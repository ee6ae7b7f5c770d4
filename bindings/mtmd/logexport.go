package mtmd

import "C"

import (
	"unsafe"

	"github.com/calft/calft/bindings/llama"
)

//export calftMtmdLog
func calftMtmdLog(level C.int, text *C.char, _ unsafe.Pointer) {
	llama.LogFrom("clip", int(level), C.GoString(text))
}
