// Package ggml is a thin Go layer over ggml: contexts, tensors, operations, graphs with
// automatic differentiation, backends, buffers and the graph allocator.
//
// It knows nothing about models. The C code comes from the pinned ollama module, compiled
// by cgo when its package is imported below; the headers are reached through
// third_party/ollama (see third_party/link.sh).
package ggml

// #cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/ml/backend/ggml/ggml/include
// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-cpu.h"
// #include "ggml-backend.h"
// #include "ggml-alloc.h"
import "C"

import (
	"fmt"
	"runtime"
	"unsafe"

	_ "github.com/ollama/ollama/ml/backend/ggml/ggml/src" // compiles ggml, ggml-base, gguf and the CPU backend
)

// Type is a ggml tensor element type.
type Type int

// The element types calft uses by name; the numbers are ggml's.
const (
	TypeF32  Type = C.GGML_TYPE_F32
	TypeF16  Type = C.GGML_TYPE_F16
	TypeQ4_0 Type = C.GGML_TYPE_Q4_0
	TypeQ8_0 Type = C.GGML_TYPE_Q8_0
	TypeQ4_K Type = C.GGML_TYPE_Q4_K
	TypeQ5_K Type = C.GGML_TYPE_Q5_K
	TypeQ6_K Type = C.GGML_TYPE_Q6_K
	TypeI32  Type = C.GGML_TYPE_I32
	TypeBF16 Type = C.GGML_TYPE_BF16
)

// String is ggml's name of the type.
func (t Type) String() string { return C.GoString(C.ggml_type_name(C.enum_ggml_type(t))) }

// BlockSize is the number of elements per quantization block (1 for plain types).
func (t Type) BlockSize() int { return int(C.ggml_blck_size(C.enum_ggml_type(t))) }

// TypeSize is the size in bytes of one block.
func (t Type) TypeSize() int { return int(C.ggml_type_size(C.enum_ggml_type(t))) }

// RowSize is the number of bytes of a row of n elements.
func (t Type) RowSize(n int) int { return int(C.ggml_row_size(C.enum_ggml_type(t), C.int64_t(n))) }

// IsQuantized reports whether the type is a block-quantized type.
func (t Type) IsQuantized() bool { return bool(C.ggml_is_quantized(C.enum_ggml_type(t))) }

// Context owns tensor metadata (and tensor data unless created with noAlloc).
type Context struct {
	c *C.struct_ggml_context
}

// TensorOverhead is the metadata size of one tensor inside a context.
func TensorOverhead() int { return int(C.ggml_tensor_overhead()) }

// GraphOverhead is the metadata size of a graph of the given node capacity.
func GraphOverhead(size int, grads bool) int {
	return int(C.ggml_graph_overhead_custom(C.size_t(size), C.bool(grads)))
}

// NewContext makes a context with memSize bytes. With noAlloc the context holds only
// tensor metadata and the data lives in backend buffers.
func NewContext(memSize int, noAlloc bool) *Context {
	c := C.ggml_init(C.struct_ggml_init_params{
		mem_size:   C.size_t(memSize),
		mem_buffer: nil,
		no_alloc:   C.bool(noAlloc),
	})
	if c == nil {
		panic(fmt.Sprintf("ggml: cannot allocate a context of %d bytes", memSize))
	}
	return &Context{c: c}
}

// Close frees the context and every tensor it allocated.
func (ctx *Context) Close() {
	if ctx != nil && ctx.c != nil {
		C.ggml_free(ctx.c)
		ctx.c = nil
	}
}

// Tensor is a handle to a ggml tensor. The zero value is "no tensor".
type Tensor struct {
	t *C.struct_ggml_tensor
}

// Nil reports whether the handle points at no tensor.
func (t Tensor) Nil() bool { return t.t == nil }

func ne4(ne []int) [4]C.int64_t {
	if len(ne) == 0 || len(ne) > 4 {
		panic(fmt.Sprintf("ggml: a tensor has 1 to 4 dimensions, got %d", len(ne)))
	}
	out := [4]C.int64_t{1, 1, 1, 1}
	for i, n := range ne {
		out[i] = C.int64_t(n)
	}
	return out
}

// NewTensor makes a tensor of type typ with ne[0] the innermost (contiguous) dimension.
func (ctx *Context) NewTensor(typ Type, ne ...int) Tensor {
	n := ne4(ne)
	return Tensor{C.ggml_new_tensor(ctx.c, C.enum_ggml_type(typ), C.int(len(ne)), &n[0])}
}

// Name returns the tensor's name.
func (t Tensor) Name() string { return C.GoString(&t.t.name[0]) }

// SetName names the tensor and returns it, so the call can wrap a constructor.
func (t Tensor) SetName(name string) Tensor {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	C.ggml_set_name(t.t, cs)
	return t
}

// Type is the element type.
func (t Tensor) Type() Type { return Type(t.t._type) }

// Ne returns the four dimensions, innermost first.
func (t Tensor) Ne() [4]int {
	return [4]int{int(t.t.ne[0]), int(t.t.ne[1]), int(t.t.ne[2]), int(t.t.ne[3])}
}

// Nb returns the four strides in bytes.
func (t Tensor) Nb() [4]int {
	return [4]int{int(t.t.nb[0]), int(t.t.nb[1]), int(t.t.nb[2]), int(t.t.nb[3])}
}

// NElements is the number of elements.
func (t Tensor) NElements() int { return int(C.ggml_nelements(t.t)) }

// NBytes is the size of the tensor's data.
func (t Tensor) NBytes() int { return int(C.ggml_nbytes(t.t)) }

// SetInput marks a tensor whose data the caller sets before each compute.
func (t Tensor) SetInput() Tensor { C.ggml_set_input(t.t); return t }

// SetOutput marks a tensor whose data must survive the graph compute.
func (t Tensor) SetOutput() Tensor { C.ggml_set_output(t.t); return t }

// SetParam marks a trainable leaf: the backward pass computes its gradient.
func (t Tensor) SetParam() Tensor { C.ggml_set_param(t.t); return t }

// SetLoss marks the scalar the backward pass differentiates.
func (t Tensor) SetLoss() Tensor { C.ggml_set_loss(t.t); return t }

// IsContiguous reports whether t's elements are stored in order without gaps.
func (t Tensor) IsContiguous() bool { return bool(C.ggml_is_contiguous(t.t)) }

// HasBuffer reports whether the tensor's data has been placed in a buffer. A graph's
// allocator leaves an input without memory when no node of the graph reads it.
func (t Tensor) HasBuffer() bool { return t.t != nil && (t.t.buffer != nil || t.t.data != nil) }

// SetBytes copies raw bytes into the tensor (any backend) at a byte offset.
func (t Tensor) SetBytes(data []byte, offset int) {
	if len(data) == 0 {
		return
	}
	if offset+len(data) > t.NBytes() {
		panic(fmt.Sprintf("ggml: SetBytes of %d bytes at %d into tensor %q of %d bytes", len(data), offset, t.Name(), t.NBytes()))
	}
	C.ggml_backend_tensor_set(t.t, unsafe.Pointer(&data[0]), C.size_t(offset), C.size_t(len(data)))
	runtime.KeepAlive(data)
}

// SetF32At copies float32 values into an F32 tensor starting at element off.
func (t Tensor) SetF32At(v []float32, off int) {
	if t.Type() != TypeF32 || off < 0 {
		panic(fmt.Sprintf("ggml: SetF32At of %d values at %d into %s tensor %q", len(v), off, t.Type(), t.Name()))
	}
	if len(v) > 0 {
		t.SetBytes(unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)), 4*off)
		runtime.KeepAlive(v)
	}
}

// SetF32 copies float32 values into an F32 tensor starting at element 0.
func (t Tensor) SetF32(v []float32) {
	t.mustType(TypeF32, len(v))
	if len(v) > 0 {
		C.ggml_backend_tensor_set(t.t, unsafe.Pointer(&v[0]), 0, C.size_t(4*len(v)))
	}
	runtime.KeepAlive(v)
}

// SetI32 copies int32 values into an I32 tensor.
func (t Tensor) SetI32(v []int32) {
	t.mustType(TypeI32, len(v))
	if len(v) > 0 {
		C.ggml_backend_tensor_set(t.t, unsafe.Pointer(&v[0]), 0, C.size_t(4*len(v)))
	}
	runtime.KeepAlive(v)
}

// Bytes copies the tensor's data (contiguous tensors only) out of its buffer.
func (t Tensor) Bytes() []byte {
	out := make([]byte, t.NBytes())
	if len(out) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&out[0]), 0, C.size_t(len(out)))
	}
	return out
}

// F32 copies an F32 tensor's data out of its buffer.
func (t Tensor) F32() []float32 {
	if t.Type() != TypeF32 {
		panic(fmt.Sprintf("ggml: F32() on tensor %q of type %s", t.Name(), t.Type()))
	}
	out := make([]float32, t.NElements())
	if len(out) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&out[0]), 0, C.size_t(4*len(out)))
	}
	return out
}

// I32 copies an I32 tensor's data out of its buffer.
func (t Tensor) I32() []int32 {
	if t.Type() != TypeI32 {
		panic(fmt.Sprintf("ggml: I32() on tensor %q of type %s", t.Name(), t.Type()))
	}
	out := make([]int32, t.NElements())
	if len(out) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&out[0]), 0, C.size_t(4*len(out)))
	}
	return out
}

// ReadF32 copies an F32 tensor's data into dst, which must have NElements entries.
func (t Tensor) ReadF32(dst []float32) {
	t.mustType(TypeF32, len(dst))
	if len(dst) > 0 {
		C.ggml_backend_tensor_get(t.t, unsafe.Pointer(&dst[0]), 0, C.size_t(4*len(dst)))
	}
}

// Zero fills the tensor's data with zero bytes.
func (t Tensor) Zero() { C.ggml_backend_tensor_memset(t.t, 0, 0, C.size_t(t.NBytes())) }

func (t Tensor) mustType(typ Type, n int) {
	if t.Type() != typ || t.NElements() != n {
		panic(fmt.Sprintf("ggml: tensor %q is %s×%d, caller passed %s×%d", t.Name(), t.Type(), t.NElements(), typ, n))
	}
}

// Quantize converts rows of nPerRow F32 values to type t with ggml's own quantizers
// (K-quants included); F32, F16 and BF16 are converted as well.
func Quantize(t Type, src []float32, nPerRow int) ([]byte, error) {
	if nPerRow <= 0 || len(src)%nPerRow != 0 || nPerRow%t.BlockSize() != 0 {
		return nil, fmt.Errorf("ggml: cannot quantize %d values in rows of %d to %s (block %d)", len(src), nPerRow, t, t.BlockSize())
	}
	if bool(C.ggml_quantize_requires_imatrix(C.enum_ggml_type(t))) {
		return nil, fmt.Errorf("ggml: %s needs an importance matrix", t)
	}
	nrows := len(src) / nPerRow
	out := make([]byte, t.RowSize(nPerRow)*nrows)
	if len(out) == 0 {
		return out, nil
	}
	C.ggml_quantize_chunk(C.enum_ggml_type(t), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&out[0]),
		0, C.int64_t(nrows), C.int64_t(nPerRow), nil)
	return out, nil
}
