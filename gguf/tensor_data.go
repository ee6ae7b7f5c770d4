package gguf

import (
	"errors"
	"io"
)

func (f *File) tensorOrErr(name string) (TensorInfo, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return TensorInfo{}, fileErr(f.Path, ErrTensorMissing, "has no tensor %q", name)
	}
	return t, nil
}

// TensorReader returns a reader over the named tensor's raw bytes, for
// tensors too large to read at once.
func (f *File) TensorReader(name string) (*io.SectionReader, error) {
	t, err := f.tensorOrErr(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(f.ra, int64(f.DataOffset+t.Offset), int64(t.Size)), nil
}

// TensorData reads the named tensor's raw bytes.
func (f *File) TensorData(name string) ([]byte, error) {
	t, err := f.tensorOrErr(name)
	if err != nil {
		return nil, err
	}
	if f.ra == nil {
		return nil, fileErr(f.Path, io.ErrClosedPipe, "is closed")
	}
	buf := make([]byte, t.Size)
	n, err := f.ra.ReadAt(buf, int64(f.DataOffset+t.Offset))
	if n == len(buf) {
		return buf, nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// The file shrank after Open validated its size.
		return nil, fileErr(f.Path, ErrTruncated, "truncated: tensor %q ends past the end of the file; %s", name, adviceRefetch)
	}
	return nil, fileErr(f.Path, err, "cannot read tensor %q: %v", name, err)
}

// TensorF32 reads the named tensor and converts it to float32. It handles
// F32, F16, BF16, Q8_0, Q4_0 and Q4_1 tensors.
func (f *File) TensorF32(name string) ([]float32, error) {
	t, err := f.tensorOrErr(name)
	if err != nil {
		return nil, err
	}
	switch t.Type {
	case F32, F16, BF16, Q8_0, Q4_0, Q4_1:
	default:
		return nil, fileErr(f.Path, ErrTensorType, "tensor %q has type %s, which calft cannot convert to float32 (it handles F32, F16, BF16, Q8_0, Q4_0, Q4_1); use a model quantized to one of those", name, t.Type)
	}
	data, err := f.TensorData(name)
	if err != nil {
		return nil, err
	}
	vals, err := Dequantize(t.Type, data)
	if err != nil {
		return nil, fileErr(f.Path, ErrCorrupt, "tensor %q: %v", name, err)
	}
	return vals, nil
}
