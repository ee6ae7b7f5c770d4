package gguf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriterSetReplacesInPlaceAndDelete(t *testing.T) {
	w := NewWriter()
	w.Set("a", Uint32Value(1))
	w.Set("b", Uint32Value(2))
	w.Set("c", Uint32Value(3))
	w.Set("a", StringValue("x"))
	w.Delete("b")
	w.Delete("missing")
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	kvs := f.KVs()
	if len(kvs) != 2 || kvs[0].Key != "a" || kvs[1].Key != "c" {
		t.Fatalf("keys %v", kvs)
	}
	if s, err := f.String("a"); err != nil || s != "x" {
		t.Errorf("a = %q, %v", s, err)
	}
}

func TestWriterRejectsBadTensors(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("t", F32, []uint64{2}, make([]byte, 7)); err == nil {
		t.Error("wrong data size accepted")
	}
	if err := w.AddTensor("t", F32, []uint64{2}, make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		dt    DType
		shape []uint64
	}{
		{"t", F32, []uint64{2}},                     // duplicate
		{strings.Repeat("x", 64), F32, []uint64{1}}, // name too long
		{"u", F32, nil},                             // no dimensions
		{"u", F32, []uint64{1, 1, 1, 1, 1}},         // too many
		{"u", F32, []uint64{2, 0}},                  // zero dimension
		{"u", Q8_0, []uint64{16}},                   // not whole blocks
		{"u", DType(4), []uint64{32}},               // removed type
	} {
		if err := w.DeclareTensor(c.name, c.dt, c.shape); err == nil {
			t.Errorf("DeclareTensor(%q, %v, %v) accepted", c.name, c.dt, c.shape)
		}
	}
	w.Set("bad", Value{Type: TypeUint32, Data: "not a number"})
	if err := w.WriteFile(filepath.Join(t.TempDir(), "x.gguf")); err == nil {
		t.Error("a value whose type tag and data disagree was written")
	}
	w.Delete("bad")
	w.Set("general.alignment", Uint32Value(3))
	if err := w.WriteFile(filepath.Join(t.TempDir(), "x.gguf")); err == nil {
		t.Error("alignment 3 accepted")
	}
}

func TestWriteFileNeedsData(t *testing.T) {
	w := NewWriter()
	if err := w.DeclareTensor("t", F32, []uint64{4}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(filepath.Join(t.TempDir(), "x.gguf")); err == nil {
		t.Error("WriteFile wrote a declared tensor without data")
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestStreamWriter(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.gguf")
	w := NewWriter()
	w.Set("general.architecture", StringValue("x"))
	if err := w.DeclareTensor("a", F32, []uint64{3}); err != nil {
		t.Fatal(err)
	}
	if err := w.DeclareTensor("b", F16, []uint64{5, 2}); err != nil {
		t.Fatal(err)
	}
	s, err := w.Stream(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteTensor("b", make([]byte, 20)); err == nil {
		t.Error("out-of-order tensor accepted")
	}
	if err := s.WriteTensor("a", make([]byte, 11)); err == nil {
		t.Error("wrong size accepted")
	}
	a, _ := Quantize(F32, []float32{1, 2, 3})
	if err := s.WriteTensor("a", a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("the file appeared before Commit")
	}
	b, _ := Quantize(F16, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	if err := s.WriteTensor("b", b); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteTensor("c", b); err == nil {
		t.Error("undeclared tensor accepted")
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("directory holds %v, want only s.gguf", names)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	got, err := f.TensorF32("b")
	if err != nil || got[9] != 10 {
		t.Errorf("b = %v, %v", got, err)
	}
}

func TestStreamIncompleteLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.gguf")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := NewWriter()
	w.DeclareTensor("a", F32, []uint64{1})
	w.DeclareTensor("b", F32, []uint64{1})
	s, err := w.Stream(path)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteTensor("a", make([]byte, 4))
	if err := s.Commit(); err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("incomplete commit: %v", err)
	}
	s.Abort() // harmless after a failed Commit
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("temporary file left behind: %v", names)
	}
	if old, _ := os.ReadFile(path); string(old) != "old contents" {
		t.Error("the existing file was replaced by a failed write")
	}

	s, _ = w.Stream(path)
	s.Abort()
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("Abort left %v", names)
	}
}

func TestNewWriterFromCopiesMetadata(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src.gguf")
	if err := allKindsWriter(t).WriteFile(src); err != nil {
		t.Fatal(err)
	}
	f, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriterFrom(f)
	if len(w.kvs) != len(f.KVs()) || len(w.tensors) != 0 {
		t.Errorf("copied %d keys and %d tensors", len(w.kvs), len(w.tensors))
	}
}
