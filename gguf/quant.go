package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Block sizes of the simple quantizations this package converts itself.
const (
	q8Block = 32
	q4Block = 32
)

// Dequantize decodes tensor data of type t into float32 values. It handles
// F32, F16, BF16, Q8_0, Q4_0 and Q4_1; other types return ErrTensorType.
func Dequantize(t DType, data []byte) ([]float32, error) {
	bb := t.BlockBytes()
	if bb == 0 {
		return nil, fmt.Errorf("cannot convert unknown ggml type %d: %w", uint32(t), ErrTensorType)
	}
	if uint64(len(data))%bb != 0 {
		return nil, fmt.Errorf("%d bytes of %s are not a whole number of %d-byte blocks", len(data), t, bb)
	}
	nBlocks := len(data) / int(bb)
	out := make([]float32, nBlocks*int(t.BlockSize()))
	le := binary.LittleEndian
	switch t {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(data[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = Float16ToFloat32(le.Uint16(data[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = BFloat16ToFloat32(le.Uint16(data[2*i:]))
		}
	case Q8_0:
		for b := 0; b < nBlocks; b++ {
			blk := data[b*int(bb):]
			d := Float16ToFloat32(le.Uint16(blk))
			for j := 0; j < q8Block; j++ {
				out[b*q8Block+j] = float32(int8(blk[2+j])) * d
			}
		}
	case Q4_0:
		for b := 0; b < nBlocks; b++ {
			blk := data[b*int(bb):]
			d := Float16ToFloat32(le.Uint16(blk))
			dst := out[b*q4Block:]
			// Byte j holds element j in its low nibble and element j+16 in
			// its high nibble, both offset by 8.
			for j := 0; j < q4Block/2; j++ {
				q := blk[2+j]
				dst[j] = float32(int(q&0x0f)-8) * d
				dst[j+q4Block/2] = float32(int(q>>4)-8) * d
			}
		}
	case Q4_1:
		for b := 0; b < nBlocks; b++ {
			blk := data[b*int(bb):]
			d := Float16ToFloat32(le.Uint16(blk))
			m := Float16ToFloat32(le.Uint16(blk[2:]))
			dst := out[b*q4Block:]
			for j := 0; j < q4Block/2; j++ {
				q := blk[4+j]
				dst[j] = float32(q&0x0f)*d + m
				dst[j+q4Block/2] = float32(q>>4)*d + m
			}
		}
	default:
		return nil, fmt.Errorf("converting %s to float32 is not implemented: %w", t, ErrTensorType)
	}
	return out, nil
}

// Quantize encodes float32 values as type t: F32, F16, BF16, Q8_0 or Q4_0.
// The quantized types follow ggml's reference quantizers bit for bit, so a
// file written here matches one written by llama.cpp's tools.
func Quantize(t DType, x []float32) ([]byte, error) {
	size, err := t.RowSize(uint64(len(x)))
	if err != nil {
		return nil, err
	}
	out := make([]byte, size)
	le := binary.LittleEndian
	switch t {
	case F32:
		for i, v := range x {
			le.PutUint32(out[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range x {
			le.PutUint16(out[2*i:], Float32ToFloat16(v))
		}
	case BF16:
		for i, v := range x {
			le.PutUint16(out[2*i:], Float32ToBFloat16(v))
		}
	case Q8_0:
		for b := 0; b < len(x)/q8Block; b++ {
			quantizeBlockQ8_0(x[b*q8Block:(b+1)*q8Block], out[b*34:(b+1)*34])
		}
	case Q4_0:
		for b := 0; b < len(x)/q4Block; b++ {
			quantizeBlockQ4_0(x[b*q4Block:(b+1)*q4Block], out[b*18:(b+1)*18])
		}
	default:
		return nil, fmt.Errorf("quantizing to %s is not implemented: %w", t, ErrTensorType)
	}
	return out, nil
}

// quantizeBlockQ8_0 follows quantize_row_q8_0_ref: scale d = amax/127
// stored as f16, q = round-half-away-from-zero(x · (1/d)) using the
// unrounded float32 d.
func quantizeBlockQ8_0(x []float32, dst []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, float32(math.Abs(float64(v))))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, Float32ToFloat16(d))
	for j, v := range x {
		dst[2+j] = byte(int8(math.Round(float64(v * id))))
	}
}

// quantizeBlockQ4_0 follows quantize_row_q4_0_ref: the value of largest
// magnitude maps to -8, d = that value / -8, q = min(15, trunc(x/d + 8.5)).
func quantizeBlockQ4_0(x []float32, dst []byte) {
	var amax, vmax float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); amax < a {
			amax, vmax = a, v
		}
	}
	d := vmax / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	binary.LittleEndian.PutUint16(dst, Float32ToFloat16(d))
	for j := 0; j < q4Block/2; j++ {
		lo := min(15, int8(x[j]*id+8.5))
		hi := min(15, int8(x[j+q4Block/2]*id+8.5))
		dst[2+j] = uint8(lo) | uint8(hi)<<4
	}
}
