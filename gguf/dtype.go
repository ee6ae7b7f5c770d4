package gguf

import "fmt"

// DType is a ggml tensor element type. The numeric values are the ones in
// ggml.h and on disk, so they must never be renumbered.
type DType uint32

// ggml tensor types. Gaps (4, 5, 31-33, 36-38) are types ggml has removed.
const (
	F32     DType = 0
	F16     DType = 1
	Q4_0    DType = 2
	Q4_1    DType = 3
	Q5_0    DType = 6
	Q5_1    DType = 7
	Q8_0    DType = 8
	Q8_1    DType = 9
	Q2_K    DType = 10
	Q3_K    DType = 11
	Q4_K    DType = 12
	Q5_K    DType = 13
	Q6_K    DType = 14
	Q8_K    DType = 15
	IQ2_XXS DType = 16
	IQ2_XS  DType = 17
	IQ3_XXS DType = 18
	IQ1_S   DType = 19
	IQ4_NL  DType = 20
	IQ3_S   DType = 21
	IQ2_S   DType = 22
	IQ4_XS  DType = 23
	I8      DType = 24
	I16     DType = 25
	I32     DType = 26
	I64     DType = 27
	F64     DType = 28
	IQ1_M   DType = 29
	BF16    DType = 30
	TQ1_0   DType = 34
	TQ2_0   DType = 35
	MXFP4   DType = 39
)

// dtypeLayout is how a type packs elements: blockSize elements share one
// block of blockBytes bytes.
type dtypeLayout struct {
	name       string
	blockSize  uint64
	blockBytes uint64
}

// superBlock is ggml's QK_K: the k-quants and most i-quants pack 256 values.
const superBlock = 256

// dtypeLayouts holds the block layout of every type ggml can read from a
// GGUF file; the byte counts follow the block structs in ggml-common.h.
var dtypeLayouts = map[DType]dtypeLayout{
	F32:     {"F32", 1, 4},
	F16:     {"F16", 1, 2},
	Q4_0:    {"Q4_0", 32, 2 + 16},
	Q4_1:    {"Q4_1", 32, 2 + 2 + 16},
	Q5_0:    {"Q5_0", 32, 2 + 4 + 16},
	Q5_1:    {"Q5_1", 32, 2 + 2 + 4 + 16},
	Q8_0:    {"Q8_0", 32, 2 + 32},
	Q8_1:    {"Q8_1", 32, 2 + 2 + 32},
	Q2_K:    {"Q2_K", superBlock, 2 + 2 + 16 + 64},
	Q3_K:    {"Q3_K", superBlock, 2 + 64 + 32 + 12},
	Q4_K:    {"Q4_K", superBlock, 2 + 2 + 12 + 128},
	Q5_K:    {"Q5_K", superBlock, 2 + 2 + 12 + 128 + 32},
	Q6_K:    {"Q6_K", superBlock, 2 + 16 + 192},
	Q8_K:    {"Q8_K", superBlock, 4 + 256 + 32},
	IQ2_XXS: {"IQ2_XXS", superBlock, 2 + 64},
	IQ2_XS:  {"IQ2_XS", superBlock, 2 + 64 + 8},
	IQ3_XXS: {"IQ3_XXS", superBlock, 2 + 96},
	IQ1_S:   {"IQ1_S", superBlock, 2 + 32 + 16},
	IQ4_NL:  {"IQ4_NL", 32, 2 + 16},
	IQ3_S:   {"IQ3_S", superBlock, 2 + 64 + 8 + 32 + 4},
	IQ2_S:   {"IQ2_S", superBlock, 2 + 64 + 16},
	IQ4_XS:  {"IQ4_XS", superBlock, 2 + 2 + 4 + 128},
	I8:      {"I8", 1, 1},
	I16:     {"I16", 1, 2},
	I32:     {"I32", 1, 4},
	I64:     {"I64", 1, 8},
	F64:     {"F64", 1, 8},
	IQ1_M:   {"IQ1_M", superBlock, 32 + 16 + 8},
	BF16:    {"BF16", 1, 2},
	TQ1_0:   {"TQ1_0", superBlock, 2 + 4 + 48},
	TQ2_0:   {"TQ2_0", superBlock, 2 + 64},
	MXFP4:   {"MXFP4", 32, 1 + 16},
}

// Known reports whether ggml defines this type.
func (t DType) Known() bool {
	_, ok := dtypeLayouts[t]
	return ok
}

// String returns ggml's name for the type, e.g. "Q8_0".
func (t DType) String() string {
	if l, ok := dtypeLayouts[t]; ok {
		return l.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockSize is the number of elements that share one quantization block
// (1 for plain types). It is 0 for unknown types.
func (t DType) BlockSize() uint64 { return dtypeLayouts[t].blockSize }

// BlockBytes is the size in bytes of one block. It is 0 for unknown types.
func (t DType) BlockBytes() uint64 { return dtypeLayouts[t].blockBytes }

// RowSize returns the bytes taken by n consecutive elements of this type,
// which must be a whole number of blocks.
func (t DType) RowSize(n uint64) (uint64, error) {
	l, ok := dtypeLayouts[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml type %d", uint32(t))
	}
	if n%l.blockSize != 0 {
		return 0, fmt.Errorf("%d elements of %s are not a whole number of %d-element blocks", n, l.name, l.blockSize)
	}
	return n / l.blockSize * l.blockBytes, nil
}

// DTypeByName returns the type with ggml's name (case-sensitive, e.g. "Q8_0").
func DTypeByName(name string) (DType, bool) {
	for t, l := range dtypeLayouts {
		if l.name == name {
			return t, true
		}
	}
	return 0, false
}
