package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"strconv"
)

func quote(s string) string { return strconv.Quote(s) }

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// decoder reads the header sequentially, tracking the offset so that
// errors can say where the file ended, and bounding every length by the
// bytes that remain so a hostile count cannot make it allocate wildly.
type decoder struct {
	br   *bufio.Reader
	off  int64
	size int64
	path string
	buf  [8]byte
}

func (d *decoder) remaining() uint64 { return uint64(d.size - d.off) }

func (d *decoder) truncated(what string) error {
	return fileErr(d.path, ErrTruncated, "truncated at byte %d of %d while reading %s; %s", d.off, d.size, what, adviceRefetch)
}

func (d *decoder) fill(p []byte, what string) error {
	if uint64(len(p)) > d.remaining() {
		d.off = d.size
		return d.truncated(what)
	}
	n, err := io.ReadFull(d.br, p)
	d.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return d.truncated(what)
		}
		return fileErr(d.path, err, "read error at byte %d: %v", d.off, err)
	}
	return nil
}

func (d *decoder) bytes(n uint64, what string) ([]byte, error) {
	if n > d.remaining() {
		off := d.off
		d.off = d.size
		return nil, fileErr(d.path, ErrTruncated, "truncated: %s at byte %d claims %d bytes but only %d remain; %s", what, off, n, d.size-off, adviceRefetch)
	}
	p := make([]byte, n)
	return p, d.fill(p, what)
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.fill(d.buf[:4], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(d.buf[:4]), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.fill(d.buf[:8], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(d.buf[:8]), nil
}

// count reads a u64 count of records that take at least minBytes each and
// rejects counts the rest of the file could not possibly hold.
func (d *decoder) count(what string, minBytes uint64) (uint64, error) {
	at := d.off
	n, err := d.u64(what)
	if err != nil {
		return 0, err
	}
	if n > d.remaining()/minBytes {
		return 0, fileErr(d.path, ErrCorrupt, "%s at byte %d is %d, more than the %d-byte file can hold; %s", what, at, n, d.size, adviceRefetch)
	}
	return n, nil
}

func (d *decoder) str(what string) (string, error) {
	n, err := d.u64("the length of " + what)
	if err != nil {
		return "", err
	}
	p, err := d.bytes(n, what)
	return string(p), err
}

// elemMinBytes is the smallest encoding of one value of each type; it
// bounds array lengths by the bytes left in the file.
func elemMinBytes(t ValueType) uint64 {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeArray:
		return 12
	}
	return 8
}

func (d *decoder) value(t ValueType, key string, depth int) (Value, error) {
	what := "the value of key " + quote(key)
	switch t {
	case TypeString:
		s, err := d.str(what)
		return StringValue(s), err
	case TypeArray:
		return d.array(key, depth)
	}
	if !t.valid() {
		return Value{}, fileErr(d.path, ErrCorrupt, "key %q has unknown value type %d; %s", key, uint32(t), adviceRefetch)
	}
	size := elemMinBytes(t)
	if err := d.fill(d.buf[:size], what); err != nil {
		return Value{}, err
	}
	return Value{Type: t, Data: decodeScalar(t, d.buf[:size])}, nil
}

func decodeScalar(t ValueType, b []byte) any {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return b[0]
	case TypeInt8:
		return int8(b[0])
	case TypeBool:
		return b[0] != 0 // as gguf.cpp: any non-zero byte is true
	case TypeUint16:
		return le.Uint16(b)
	case TypeInt16:
		return int16(le.Uint16(b))
	case TypeUint32:
		return le.Uint32(b)
	case TypeInt32:
		return int32(le.Uint32(b))
	case TypeFloat32:
		return math.Float32frombits(le.Uint32(b))
	case TypeUint64:
		return le.Uint64(b)
	case TypeInt64:
		return int64(le.Uint64(b))
	case TypeFloat64:
		return math.Float64frombits(le.Uint64(b))
	}
	return nil
}

func (d *decoder) array(key string, depth int) (Value, error) {
	if depth >= maxArrayDepth {
		return Value{}, fileErr(d.path, ErrCorrupt, "key %q nests arrays deeper than %d levels; %s", key, maxArrayDepth, adviceRefetch)
	}
	et, err := d.u32("the element type of key " + quote(key))
	if err != nil {
		return Value{}, err
	}
	elem := ValueType(et)
	if !elem.valid() {
		return Value{}, fileErr(d.path, ErrCorrupt, "array key %q has unknown element type %d; %s", key, et, adviceRefetch)
	}
	n, err := d.count("the length of array "+quote(key), elemMinBytes(elem))
	if err != nil {
		return Value{}, err
	}
	v := Value{Type: TypeArray, Elem: elem}
	switch elem {
	case TypeString:
		ss := make([]string, n)
		for i := range ss {
			if ss[i], err = d.str("element " + itoa(uint64(i)) + " of " + quote(key)); err != nil {
				return Value{}, err
			}
		}
		v.Data = ss
	case TypeArray:
		vs := make([]Value, n)
		for i := range vs {
			if vs[i], err = d.array(key, depth+1); err != nil {
				return Value{}, err
			}
		}
		v.Data = vs
	default:
		raw, err := d.bytes(n*elemMinBytes(elem), "the elements of array "+quote(key))
		if err != nil {
			return Value{}, err
		}
		v.Data = decodeNumericArray(elem, raw, int(n))
	}
	return v, nil
}

func decodeNumericArray(t ValueType, raw []byte, n int) any {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		return raw
	case TypeInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			out[i] = raw[i] != 0
		}
		return out
	case TypeUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(raw[2*i:])
		}
		return out
	case TypeInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(raw[2*i:]))
		}
		return out
	case TypeUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(raw[4*i:])
		}
		return out
	case TypeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(raw[4*i:]))
		}
		return out
	case TypeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
		}
		return out
	case TypeUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(raw[8*i:])
		}
		return out
	case TypeInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(raw[8*i:]))
		}
		return out
	case TypeFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(raw[8*i:]))
		}
		return out
	}
	return nil
}
