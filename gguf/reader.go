package gguf

import (
	"bufio"
	"errors"
	"io"
	"math"
	"math/bits"
	"os"
)

// Limits that llama.cpp's reader enforces; a file beyond them fails there.
const (
	ggufMagic        = "GGUF"
	defaultAlignment = 32
	maxDims          = 4  // GGML_MAX_DIMS
	maxTensorName    = 63 // GGML_MAX_NAME - 1 bytes plus the terminating NUL
	maxArrayDepth    = 8  // nesting bound: keeps hostile files from exhausting the stack

	// Smallest encodings, used to bound counts by the bytes left:
	// a key/value is a key length, a type and at least one byte of value;
	// a tensor descriptor is a name length, a dimension count, a type and
	// an offset.
	minKVBytes         = 8 + 4 + 1
	minTensorInfoBytes = 8 + 4 + 4 + 8
)

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name string
	Type DType
	// Shape is ne in ggml order: Shape[0] is the number of elements in a row
	// (the fastest-varying index), e.g. a weight multiplying n_in inputs into
	// n_out outputs has Shape [n_in, n_out].
	Shape []uint64
	// Offset is the position of the data relative to File.DataOffset.
	Offset uint64
	// Size is the number of bytes of data.
	Size uint64
}

// Elements is the number of values in the tensor.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Dim returns ne[i], which is 1 beyond the stored dimensions as in ggml.
func (t TensorInfo) Dim(i int) uint64 {
	if i < len(t.Shape) {
		return t.Shape[i]
	}
	return 1
}

// File is a parsed GGUF file. Metadata and tensor descriptors are in memory;
// tensor data is read on demand, so the file stays open until Close.
type File struct {
	Path       string
	Version    uint32
	Alignment  uint64
	DataOffset uint64 // absolute file offset where tensor data begins
	FileSize   int64
	Tensors    []TensorInfo

	kvs         []KV
	kvIndex     map[string]int
	tensorIndex map[string]int
	ra          io.ReaderAt
	closer      io.Closer
}

// Open parses the GGUF file at path. It validates the whole layout (header,
// metadata, tensor descriptors, that all tensor data lies inside the file)
// but reads no tensor data.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fileErr(path, err, "cannot open: %v", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fileErr(path, err, "cannot stat: %v", err)
	}
	if st.IsDir() {
		fh.Close()
		return nil, fileErr(path, ErrNotGGUF, "is a directory; pass a .gguf model file")
	}
	f, err := Parse(fh, st.Size(), path)
	if err != nil {
		fh.Close()
		return nil, err
	}
	f.closer = fh
	return f, nil
}

// Parse reads a GGUF file from r, which holds size bytes; name is used in
// error messages. The returned File reads tensor data from r.
func Parse(r io.ReaderAt, size int64, name string) (*File, error) {
	// The header is read sequentially; a large buffer pays off for the
	// token lists of real models but is wasted on small files.
	bufSize := int(min(max(size, 4096), 1<<20))
	d := &decoder{
		br:   bufio.NewReaderSize(io.NewSectionReader(r, 0, size), bufSize),
		size: size,
		path: name,
	}
	f := &File{Path: name, FileSize: size, ra: r, kvIndex: map[string]int{}, tensorIndex: map[string]int{}}
	if err := f.parseHeader(d); err != nil {
		return nil, err
	}
	return f, nil
}

// Close releases the file handle.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	err := f.closer.Close()
	f.closer = nil
	return err
}

func (f *File) parseHeader(d *decoder) error {
	magic, err := d.bytes(4, "the magic number")
	if err != nil {
		if errors.Is(err, ErrTruncated) {
			return fileErr(d.path, ErrNotGGUF, "not a GGUF file (only %d bytes); pass a .gguf model file", d.size)
		}
		return err
	}
	if string(magic) != ggufMagic {
		return fileErr(d.path, ErrNotGGUF, "not a GGUF file (magic %q, want %q); pass a .gguf model file", magic, ggufMagic)
	}
	if f.Version, err = d.u32("the version"); err != nil {
		return err
	}
	switch {
	case f.Version&0xFFFF == 0 && f.Version != 0:
		return fileErr(d.path, ErrVersion, "GGUF version %#x looks byte-swapped: the file is big-endian; use a little-endian conversion of the model", f.Version)
	case f.Version < 2 || f.Version > 3:
		return fileErr(d.path, ErrVersion, "GGUF version %d is not supported (calft reads versions 2 and 3); %s", f.Version, adviceReconvert)
	}
	// The tensor count is bounded once the metadata is read, when the
	// bytes left for tensor descriptors are known.
	tensorCountAt := d.off
	nTensors, err := d.u64("the tensor count")
	if err != nil {
		return err
	}
	nKV, err := d.count("the metadata count", minKVBytes)
	if err != nil {
		return err
	}
	if err := f.parseKVs(d, nKV); err != nil {
		return err
	}
	if err := f.readAlignment(); err != nil {
		return err
	}
	if nTensors > d.remaining()/minTensorInfoBytes {
		return fileErr(d.path, ErrCorrupt, "the tensor count at byte %d is %d, more than the %d-byte file can hold; %s", tensorCountAt, nTensors, d.size, adviceRefetch)
	}
	if err := f.parseTensorInfos(d, nTensors); err != nil {
		return err
	}
	return f.placeTensorData(d)
}

func (f *File) parseKVs(d *decoder, n uint64) error {
	f.kvs = make([]KV, 0, n)
	for i := uint64(0); i < n; i++ {
		at := d.off
		key, err := d.str("a metadata key")
		if err != nil {
			return err
		}
		if key == "" {
			// gguf.cpp asserts on empty keys: the process would abort.
			return fileErr(d.path, ErrCorrupt, "metadata entry %d (byte %d) has an empty key; %s", i, at, adviceRefetch)
		}
		if _, dup := f.kvIndex[key]; dup {
			return fileErr(d.path, ErrCorrupt, "metadata key %q appears twice; %s", key, adviceReconvert)
		}
		t, err := d.u32("the type of key " + quote(key))
		if err != nil {
			return err
		}
		v, err := d.value(ValueType(t), key, 0)
		if err != nil {
			return err
		}
		f.kvIndex[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{Key: key, Value: v})
	}
	return nil
}

// readAlignment applies general.alignment. gguf.cpp reads it with the u32
// getter, which aborts on any other type, so the type is checked here.
func (f *File) readAlignment() error {
	f.Alignment = defaultAlignment
	v, ok := f.Get("general.alignment")
	if !ok {
		return nil
	}
	a, isU32 := v.Data.(uint32)
	if v.Type != TypeUint32 || !isU32 {
		return fileErr(f.Path, ErrKeyType, "general.alignment has type %s, but llama.cpp requires u32 (it aborts otherwise); %s", v.TypeName(), adviceReconvert)
	}
	if a == 0 || a&(a-1) != 0 {
		return fileErr(f.Path, ErrCorrupt, "general.alignment is %d, not a power of two; %s", a, adviceReconvert)
	}
	f.Alignment = uint64(a)
	return nil
}

func (f *File) parseTensorInfos(d *decoder, n uint64) error {
	f.Tensors = make([]TensorInfo, 0, n)
	for i := uint64(0); i < n; i++ {
		name, err := d.str("the name of tensor " + itoa(i))
		if err != nil {
			return err
		}
		if len(name) > maxTensorName {
			return fileErr(d.path, ErrCorrupt, "tensor name %q is %d bytes; llama.cpp allows at most %d; %s", name, len(name), maxTensorName, adviceReconvert)
		}
		if _, dup := f.tensorIndex[name]; dup {
			return fileErr(d.path, ErrCorrupt, "tensor %q appears twice; %s", name, adviceReconvert)
		}
		t := TensorInfo{Name: name}
		nDims, err := d.u32("the dimension count of tensor " + quote(name))
		if err != nil {
			return err
		}
		if nDims > maxDims {
			return fileErr(d.path, ErrCorrupt, "tensor %q has %d dimensions; ggml supports at most %d; %s", name, nDims, maxDims, adviceRefetch)
		}
		t.Shape = make([]uint64, nDims)
		for j := range t.Shape {
			if t.Shape[j], err = d.u64("the shape of tensor " + quote(name)); err != nil {
				return err
			}
			// A zero dimension makes gguf.cpp divide by zero while checking
			// the element count; a value above 2^63 is negative to ggml.
			if t.Shape[j] == 0 || t.Shape[j] > math.MaxInt64 {
				return fileErr(d.path, ErrCorrupt, "tensor %q has invalid dimension %d = %d; %s", name, j, t.Shape[j], adviceRefetch)
			}
		}
		elems, ok := checkedProduct(t.Shape)
		if !ok {
			return fileErr(d.path, ErrCorrupt, "tensor %q has shape %v, too many elements; %s", name, t.Shape, adviceRefetch)
		}
		typ, err := d.u32("the type of tensor " + quote(name))
		if err != nil {
			return err
		}
		t.Type = DType(typ)
		if !t.Type.Known() {
			return fileErr(d.path, ErrCorrupt, "tensor %q has unknown ggml type %d; the file needs a newer llama.cpp than calft uses, or it is damaged", name, typ)
		}
		if t.Dim(0)%t.Type.BlockSize() != 0 {
			return fileErr(d.path, ErrCorrupt, "tensor %q of type %s has rows of %d elements, not a multiple of the block size %d; %s", name, t.Type, t.Dim(0), t.Type.BlockSize(), adviceRefetch)
		}
		hi, lo := bits.Mul64(elems/t.Type.BlockSize(), t.Type.BlockBytes())
		if hi != 0 || lo > math.MaxInt64 {
			return fileErr(d.path, ErrCorrupt, "tensor %q is too large (%v of %s); %s", name, t.Shape, t.Type, adviceRefetch)
		}
		t.Size = lo
		if t.Offset, err = d.u64("the data offset of tensor " + quote(name)); err != nil {
			return err
		}
		f.tensorIndex[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	return nil
}

// placeTensorData computes where the data section starts and checks that
// every tensor sits where llama.cpp expects it: gguf.cpp requires each
// offset to equal the padded sizes of the tensors before it, in order.
func (f *File) placeTensorData(d *decoder) error {
	f.DataOffset = alignUp(uint64(d.off), f.Alignment)
	var expect uint64
	for _, t := range f.Tensors {
		if t.Offset != expect {
			return fileErr(f.Path, ErrCorrupt, "tensor %q has data offset %d, expected %d (llama.cpp requires tensor data packed in descriptor order); %s", t.Name, t.Offset, expect, adviceReconvert)
		}
		end := f.DataOffset + t.Offset + t.Size
		if end < f.DataOffset || end > uint64(f.FileSize) {
			return fileErr(f.Path, ErrTruncated, "truncated: tensor %q needs bytes %d to %d but the file ends at byte %d; %s", t.Name, f.DataOffset+t.Offset, end, f.FileSize, adviceRefetch)
		}
		expect = alignUp(t.Offset+t.Size, f.Alignment)
	}
	return nil
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) / a * a }

func checkedProduct(dims []uint64) (uint64, bool) {
	n := uint64(1)
	for _, d := range dims {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		n = lo
	}
	return n, true
}
