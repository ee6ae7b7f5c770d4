package gguf

import (
	"bufio"
	"fmt"
)

// StreamWriter writes a GGUF file whose tensor data arrives one tensor at a
// time, so an output larger than memory can be produced. The header (with
// every tensor's size) is written first; the file appears under its final
// name only when Commit succeeds.
type StreamWriter struct {
	path  string
	file  *atomicFile
	buf   *bufio.Writer
	cw    *countingWriter
	align uint64
	specs []TensorInfo
	next  int
}

// Stream starts writing the file at path. Tensors must then be supplied
// with WriteTensor in the order they were added, then Commit called (or
// Abort to give up). Data attached with AddTensor is not used by Stream.
func (w *Writer) Stream(path string) (*StreamWriter, error) {
	align, err := w.layout()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	af, err := createAtomic(path)
	if err != nil {
		return nil, err
	}
	buf := newBuffered(af)
	s := &StreamWriter{path: path, file: af, buf: buf, cw: &countingWriter{w: buf}, align: align}
	for _, t := range w.tensors {
		s.specs = append(s.specs, t.info)
	}
	if err := w.writeHeader(s.cw, align); err != nil {
		s.Abort()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// WriteTensor writes the data of the next tensor, which must be name.
func (s *StreamWriter) WriteTensor(name string, data []byte) error {
	if s.file == nil {
		return fmt.Errorf("%s: stream already finished", s.path)
	}
	if s.next >= len(s.specs) {
		return fmt.Errorf("%s: tensor %q was never declared (all %d declared tensors are written)", s.path, name, len(s.specs))
	}
	spec := s.specs[s.next]
	if spec.Name != name {
		return fmt.Errorf("%s: expected data for tensor %q next, got %q", s.path, spec.Name, name)
	}
	if uint64(len(data)) != spec.Size {
		return fmt.Errorf("%s: tensor %q needs %d bytes, got %d", s.path, name, spec.Size, len(data))
	}
	if err := writeTensorData(s.cw, data, s.align); err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.next++
	return nil
}

// Commit checks that every tensor was written, then makes the file durable
// and moves it into place.
func (s *StreamWriter) Commit() error {
	if s.file == nil {
		return fmt.Errorf("%s: stream already finished", s.path)
	}
	if s.next != len(s.specs) {
		missing := s.specs[s.next].Name
		s.Abort()
		return fmt.Errorf("%s: only %d of %d tensors were written (next missing: %q); file discarded", s.path, s.next, len(s.specs), missing)
	}
	if err := s.buf.Flush(); err != nil {
		s.Abort()
		return fmt.Errorf("%s: write failed: %w", s.path, err)
	}
	err := s.file.commit()
	s.file = nil
	return err
}

// Abort discards the partial file. It is safe to call after Commit.
func (s *StreamWriter) Abort() {
	if s.file != nil {
		s.file.abort()
		s.file = nil
	}
}
