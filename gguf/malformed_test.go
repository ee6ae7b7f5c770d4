package gguf

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validFile returns the bytes of a small well-formed file.
func validFile(t testing.TB) []byte {
	w := NewWriter()
	w.Set("general.architecture", StringValue("llama"))
	w.Set("k.u32", Uint32Value(7))
	w.Set("k.strings", ArrayValue([]string{"a", "bc", "def"}))
	w.Set("k.f32s", ArrayValue([]float32{1, 2}))
	w.Set("k.nested", NestedArrayValue([]Value{ArrayValue([]uint8{1, 2})}))
	if err := w.AddTensorF32("a", F32, []uint64{3, 2}, []float32{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensorF32("b", Q8_0, []uint64{32}, make([]float32, 32)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func parseBytes(b []byte) (*File, error) {
	return Parse(bytes.NewReader(b), int64(len(b)), "bad.gguf")
}

// mustFail parses b and requires an *Error of the given kind whose text
// names the file and contains every fragment.
func mustFail(t *testing.T, b []byte, kind error, fragments ...string) {
	t.Helper()
	_, err := parseBytes(b)
	if err == nil {
		t.Fatalf("parse succeeded, want %v", kind)
	}
	var fe *Error
	if !errors.As(err, &fe) || !errors.Is(err, kind) {
		t.Fatalf("got %v (%T), want kind %v", err, err, kind)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "bad.gguf: ") {
		t.Errorf("error does not start with the file name: %q", msg)
	}
	for _, frag := range fragments {
		if !strings.Contains(msg, frag) {
			t.Errorf("error %q lacks %q", msg, frag)
		}
	}
}

func TestTruncatedAtEveryOffset(t *testing.T) {
	b := validFile(t)
	if _, err := parseBytes(b); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(b); n++ {
		_, err := parseBytes(b[:n])
		if err == nil {
			// Only the zero padding after the last tensor may be cut.
			f, _ := parseBytes(b)
			last := f.Tensors[len(f.Tensors)-1]
			if uint64(n) >= f.DataOffset+last.Offset+last.Size {
				continue
			}
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
		if n >= 4 && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: unexpected error kind: %v", n, err)
		}
	}
}

func TestTruncationMessage(t *testing.T) {
	b := validFile(t)
	f, err := parseBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	// The last cut inside the header that reads as a plain truncation.
	cut := int(f.DataOffset) - 1
	for ; cut > 0; cut-- {
		if _, err := parseBytes(b[:cut]); errors.Is(err, ErrTruncated) && strings.Contains(err.Error(), "truncated at byte") {
			break
		}
	}
	mustFail(t, b[:cut], ErrTruncated, fmt.Sprintf("truncated at byte %d of %d", cut, cut), "fetch it again")
	mustFail(t, b[:30], ErrCorrupt, "more than the 30-byte file can hold", "fetch it again")
	mustFail(t, b[:len(b)-40], ErrTruncated, "tensor \"b\"", "fetch it again")
}

func TestRandomCorruptionNeverPanics(t *testing.T) {
	b := validFile(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		c := bytes.Clone(b)
		for k := 0; k < 1+rng.IntN(4); k++ {
			c[rng.IntN(len(c))] = byte(rng.IntN(256))
		}
		if rng.IntN(4) == 0 {
			c = c[:rng.IntN(len(c))]
		}
		f, err := parseBytes(c)
		if err == nil {
			for _, tn := range f.Tensors {
				if _, err := f.TensorData(tn.Name); err != nil {
					t.Fatalf("parsed file could not read tensor %q: %v", tn.Name, err)
				}
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(validFile(f))
	f.Add([]byte("GGUF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if fl, err := parseBytes(b); err == nil {
			for _, tn := range fl.Tensors {
				if _, err := fl.TensorData(tn.Name); err != nil {
					t.Fatalf("tensor %q unreadable after a successful parse: %v", tn.Name, err)
				}
			}
		}
	})
}

// raw builds hostile files byte by byte.
type raw struct {
	bytes.Buffer
	e encoder
}

func newRaw(version uint32, nTensors, nKV uint64) *raw {
	r := &raw{}
	r.e = encoder{w: &r.Buffer}
	r.e.raw([]byte("GGUF"))
	r.e.u32(version)
	r.e.u64(nTensors)
	r.e.u64(nKV)
	return r
}

func (r *raw) kvU32(key string, v uint32) *raw {
	r.e.str(key)
	r.e.u32(uint32(TypeUint32))
	r.e.u32(v)
	return r
}

func (r *raw) tensor(name string, dt DType, offset uint64, dims ...uint64) *raw {
	r.e.str(name)
	r.e.u32(uint32(len(dims)))
	for _, d := range dims {
		r.e.u64(d)
	}
	r.e.u32(uint32(dt))
	r.e.u64(offset)
	return r
}

// data pads to 32 bytes and appends n bytes of tensor data.
func (r *raw) data(n int) []byte {
	for r.Len()%32 != 0 {
		r.WriteByte(0)
	}
	r.Write(make([]byte, n))
	return r.Bytes()
}

func TestMalformedHeaders(t *testing.T) {
	mustFail(t, []byte("GGML\x03\x00\x00\x00"), ErrNotGGUF, "not a GGUF file", "GGML", "pass a .gguf model file")
	mustFail(t, []byte("GG"), ErrNotGGUF, "not a GGUF file")
	mustFail(t, newRaw(1, 0, 0).Bytes(), ErrVersion, "version 1")
	mustFail(t, newRaw(4, 0, 0).Bytes(), ErrVersion, "version 4")
	mustFail(t, newRaw(0x03000000, 0, 0).Bytes(), ErrVersion, "big-endian")
	mustFail(t, newRaw(3, math.MaxUint64, 0).Bytes(), ErrCorrupt, "tensor count")
	mustFail(t, newRaw(3, 0, 1<<40).Bytes(), ErrCorrupt, "metadata count")
	if _, err := parseBytes(newRaw(2, 0, 0).Bytes()); err != nil {
		t.Errorf("an empty version-2 file should parse: %v", err)
	}
}

func TestMalformedMetadata(t *testing.T) {
	// A string length far beyond the file.
	r := newRaw(3, 0, 1)
	r.e.u64(1 << 50)
	r.Write(make([]byte, 32))
	mustFail(t, r.Bytes(), ErrTruncated, "claims")

	r = newRaw(3, 0, 1)
	r.e.str("")
	r.e.u32(uint32(TypeUint8))
	r.e.u8(1)
	mustFail(t, r.Bytes(), ErrCorrupt, "empty key")

	r = newRaw(3, 0, 2).kvU32("dup", 1).kvU32("dup", 2)
	mustFail(t, r.Bytes(), ErrCorrupt, `"dup" appears twice`)

	r = newRaw(3, 0, 1)
	r.e.str("k")
	r.e.u32(13)
	r.e.u64(0)
	mustFail(t, r.Bytes(), ErrCorrupt, "unknown value type 13")

	r = newRaw(3, 0, 1)
	r.e.str("arr")
	r.e.u32(uint32(TypeArray))
	r.e.u32(uint32(TypeUint32))
	r.e.u64(1 << 60)
	mustFail(t, r.Bytes(), ErrCorrupt, "length of array")

	r = newRaw(3, 0, 1)
	r.e.str("arr")
	r.e.u32(uint32(TypeArray))
	r.e.u32(77)
	mustFail(t, r.Bytes(), ErrCorrupt, "unknown element type 77")

	// Arrays nested deeper than the bound.
	r = newRaw(3, 0, 1)
	r.e.str("deep")
	r.e.u32(uint32(TypeArray))
	for i := 0; i < 20; i++ {
		r.e.u32(uint32(TypeArray))
		r.e.u64(1)
	}
	r.Write(make([]byte, 64))
	mustFail(t, r.Bytes(), ErrCorrupt, "nests arrays")

	r = newRaw(3, 0, 1)
	r.e.str("general.alignment")
	r.e.u32(uint32(TypeUint64))
	r.e.u64(32)
	mustFail(t, r.Bytes(), ErrKeyType, "general.alignment", "u64", "u32")

	mustFail(t, newRaw(3, 0, 1).kvU32("general.alignment", 48).Bytes(), ErrCorrupt, "power of two")
	mustFail(t, newRaw(3, 0, 1).kvU32("general.alignment", 0).Bytes(), ErrCorrupt, "power of two")
}

func TestMalformedTensorInfos(t *testing.T) {
	mustFail(t, newRaw(3, 1, 0).tensor("t", DType(4), 0, 32).data(64), ErrCorrupt, "unknown ggml type 4")
	mustFail(t, newRaw(3, 1, 0).tensor("t", DType(40), 0, 32).data(64), ErrCorrupt, "unknown ggml type 40")
	mustFail(t, newRaw(3, 1, 0).tensor("t", Q8_0, 0, 31).data(64), ErrCorrupt, "block size 32")
	mustFail(t, newRaw(3, 1, 0).tensor("t", F32, 0, 1, 0).data(64), ErrCorrupt, "invalid dimension 1 = 0")
	mustFail(t, newRaw(3, 1, 0).tensor("t", F32, 0, 1<<63).data(64), ErrCorrupt, "invalid dimension")
	mustFail(t, newRaw(3, 1, 0).tensor("t", F32, 0, 1<<40, 1<<40).data(64), ErrCorrupt, "too many elements")
	mustFail(t, newRaw(3, 1, 0).tensor("t", F32, 0, 1, 1, 1, 1, 1).data(64), ErrCorrupt, "5 dimensions")
	mustFail(t, newRaw(3, 1, 0).tensor(strings.Repeat("n", 64), F32, 0, 1).data(64), ErrCorrupt, "at most 63")
	mustFail(t, newRaw(3, 2, 0).tensor("t", F32, 0, 1).tensor("t", F32, 32, 1).data(64), ErrCorrupt, `tensor "t" appears twice`)
	mustFail(t, newRaw(3, 2, 0).tensor("a", F32, 0, 1).tensor("b", F32, 0, 1).data(64), ErrCorrupt, `"b" has data offset 0, expected 32`)
	mustFail(t, newRaw(3, 1, 0).tensor("t", F32, 0, 100).data(64), ErrTruncated, `tensor "t" needs bytes`, "fetch it again")
	if _, err := parseBytes(newRaw(3, 2, 0).tensor("a", F32, 0, 1).tensor("b", F32, 32, 8).data(64)); err != nil {
		t.Errorf("well-formed hand-built file failed: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil || !strings.Contains(err.Error(), "missing.gguf") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNotGGUF) {
		t.Errorf("directory: %v", err)
	}
	p := filepath.Join(dir, "x.gguf")
	if err := os.WriteFile(p, validFile(t)[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p); !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), p+": ") {
		t.Errorf("truncated file: %v", err)
	}
}
