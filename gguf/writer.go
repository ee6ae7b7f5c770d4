package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer assembles a GGUF v3 file: ordered metadata and tensors. Use
// WriteFile when all tensor data is in memory, or Stream to produce the
// data one tensor at a time.
type Writer struct {
	kvs     []KV
	kvIndex map[string]int
	tensors []pendingTensor
	names   map[string]bool
}

type pendingTensor struct {
	info TensorInfo
	data []byte // nil for tensors declared for streaming
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, names: map[string]bool{}}
}

// NewWriterFrom returns a Writer holding a copy of f's metadata (not its
// tensors), e.g. to write a modified version of a model.
func NewWriterFrom(f *File) *Writer {
	w := NewWriter()
	for _, kv := range f.kvs {
		w.Set(kv.Key, kv.Value)
	}
	return w
}

// Set stores a metadata value. Setting an existing key replaces its value
// in place, keeping the original order.
func (w *Writer) Set(key string, v Value) {
	if i, ok := w.kvIndex[key]; ok {
		w.kvs[i].Value = v
		return
	}
	w.kvIndex[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: v})
}

// Delete removes a metadata key if present.
func (w *Writer) Delete(key string) {
	i, ok := w.kvIndex[key]
	if !ok {
		return
	}
	w.kvs = append(w.kvs[:i], w.kvs[i+1:]...)
	delete(w.kvIndex, key)
	for j := i; j < len(w.kvs); j++ {
		w.kvIndex[w.kvs[j].Key] = j
	}
}

// SetAlignment sets general.alignment (a power of two); the default is 32.
func (w *Writer) SetAlignment(a uint32) { w.Set("general.alignment", Uint32Value(a)) }

// AddTensor appends a tensor with its raw data. shape is ne in ggml order
// (row length first); data must be exactly the size the type and shape need.
func (w *Writer) AddTensor(name string, t DType, shape []uint64, data []byte) error {
	info, err := w.declare(name, t, shape)
	if err != nil {
		return err
	}
	if uint64(len(data)) != info.Size {
		return fmt.Errorf("tensor %q: %d bytes of data, but %s %v needs %d", name, len(data), t, shape, info.Size)
	}
	w.tensors = append(w.tensors, pendingTensor{info: info, data: data})
	w.names[name] = true
	return nil
}

// AddTensorF32 quantizes float32 values to type t and appends the tensor.
func (w *Writer) AddTensorF32(name string, t DType, shape []uint64, values []float32) error {
	if n, ok := checkedProduct(shape); !ok || n != uint64(len(values)) {
		return fmt.Errorf("tensor %q: %d values do not fill shape %v", name, len(values), shape)
	}
	data, err := Quantize(t, values)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	return w.AddTensor(name, t, shape, data)
}

// DeclareTensor appends a tensor whose data will be supplied later through
// Stream.
func (w *Writer) DeclareTensor(name string, t DType, shape []uint64) error {
	info, err := w.declare(name, t, shape)
	if err != nil {
		return err
	}
	w.tensors = append(w.tensors, pendingTensor{info: info})
	w.names[name] = true
	return nil
}

// declare validates a tensor against the limits llama.cpp's reader enforces.
func (w *Writer) declare(name string, t DType, shape []uint64) (TensorInfo, error) {
	switch {
	case w.names[name]:
		return TensorInfo{}, fmt.Errorf("tensor %q added twice", name)
	case len(name) > maxTensorName:
		return TensorInfo{}, fmt.Errorf("tensor name %q is longer than %d bytes", name, maxTensorName)
	case len(shape) == 0 || len(shape) > maxDims:
		return TensorInfo{}, fmt.Errorf("tensor %q: %d dimensions, want 1 to %d", name, len(shape), maxDims)
	case !t.Known():
		return TensorInfo{}, fmt.Errorf("tensor %q: unknown ggml type %d", name, uint32(t))
	}
	n, ok := checkedProduct(shape)
	for _, d := range shape {
		ok = ok && d > 0
	}
	if !ok {
		return TensorInfo{}, fmt.Errorf("tensor %q: invalid shape %v", name, shape)
	}
	if shape[0]%t.BlockSize() != 0 {
		return TensorInfo{}, fmt.Errorf("tensor %q: row length %d is not a multiple of the %s block size %d", name, shape[0], t, t.BlockSize())
	}
	size := n / t.BlockSize() * t.BlockBytes()
	return TensorInfo{Name: name, Type: t, Shape: append([]uint64(nil), shape...), Size: size}, nil
}

func (w *Writer) alignment() (uint64, error) {
	i, ok := w.kvIndex["general.alignment"]
	if !ok {
		return defaultAlignment, nil
	}
	v := w.kvs[i].Value
	a, isU32 := v.Data.(uint32)
	if v.Type != TypeUint32 || !isU32 || a == 0 || a&(a-1) != 0 {
		return 0, fmt.Errorf("general.alignment must be a u32 power of two, got %s %v", v.TypeName(), v.Data)
	}
	return uint64(a), nil
}

// layout assigns data offsets and returns the alignment.
func (w *Writer) layout() (uint64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	var off uint64
	for i := range w.tensors {
		w.tensors[i].info.Offset = off
		off = alignUp(off+w.tensors[i].info.Size, align)
	}
	return align, nil
}

// WriteFile writes the file atomically: to a temporary file in the same
// directory, synced, then renamed to path.
func (w *Writer) WriteFile(path string) error {
	for _, t := range w.tensors {
		if t.data == nil {
			return fmt.Errorf("%s: tensor %q was declared without data; use Stream to supply it", path, t.info.Name)
		}
	}
	s, err := w.Stream(path)
	if err != nil {
		return err
	}
	for _, t := range w.tensors {
		if err := s.WriteTensor(t.info.Name, t.data); err != nil {
			s.Abort()
			return err
		}
	}
	return s.Commit()
}

// WriteTo writes the file to an io.Writer (no atomicity); all tensors must
// have data.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.layout()
	if err != nil {
		return 0, err
	}
	cw := &countingWriter{w: out}
	if err := w.writeHeader(cw, align); err != nil {
		return cw.n, err
	}
	for _, t := range w.tensors {
		if t.data == nil {
			return cw.n, fmt.Errorf("tensor %q was declared without data", t.info.Name)
		}
		if err := writeTensorData(cw, t.data, align); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

func writeTensorData(cw *countingWriter, data []byte, align uint64) error {
	if _, err := cw.Write(data); err != nil {
		return err
	}
	return cw.pad(align)
}

// writeHeader emits everything before the tensor data, padded to align.
func (w *Writer) writeHeader(cw *countingWriter, align uint64) error {
	e := encoder{w: cw}
	e.raw([]byte(ggufMagic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		if kv.Key == "" {
			return fmt.Errorf("metadata key is empty")
		}
		if err := kv.Value.check(); err != nil {
			return fmt.Errorf("metadata key %q: %w", kv.Key, err)
		}
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Shape)))
		for _, d := range t.info.Shape {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	if e.err != nil {
		return e.err
	}
	return cw.pad(align)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var zeros [256]byte

// pad writes zero bytes up to the next multiple of align.
func (c *countingWriter) pad(align uint64) error {
	for n := alignUp(uint64(c.n), align) - uint64(c.n); n > 0; {
		k := min(n, uint64(len(zeros)))
		if _, err := c.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// encoder writes little-endian GGUF primitives, remembering the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [8]byte
}

func (e *encoder) raw(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.raw(e.buf[:1]) }

func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.buf[:], v); e.raw(e.buf[:2]) }

func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.buf[:], v); e.raw(e.buf[:4]) }

func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.buf[:], v); e.raw(e.buf[:8]) }

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.raw([]byte(s))
}

func (e *encoder) boolean(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) value(v Value) {
	switch x := v.Data.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.boolean(x)
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	default:
		e.array(v)
	}
}

func (e *encoder) array(v Value) {
	e.u32(uint32(v.Elem))
	e.u64(uint64(v.Len()))
	switch d := v.Data.(type) {
	case []uint8:
		e.raw(d)
	case []int8:
		for _, x := range d {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range d {
			e.u16(x)
		}
	case []int16:
		for _, x := range d {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range d {
			e.u32(x)
		}
	case []int32:
		for _, x := range d {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range d {
			e.u32(math.Float32bits(x))
		}
	case []bool:
		for _, x := range d {
			e.boolean(x)
		}
	case []string:
		for _, x := range d {
			e.str(x)
		}
	case []uint64:
		for _, x := range d {
			e.u64(x)
		}
	case []int64:
		for _, x := range d {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range d {
			e.u64(math.Float64bits(x))
		}
	case []Value:
		for _, x := range d {
			e.array(x)
		}
	}
}

// bufferedSize is the write buffer of the file writers.
const bufferedSize = 4 << 20

func newBuffered(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, bufferedSize) }
