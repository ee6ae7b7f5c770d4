package gguf

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func openAllKinds(t *testing.T) *File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kinds.gguf")
	if err := allKindsWriter(t).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTypedGetters(t *testing.T) {
	f := openAllKinds(t)
	if v, err := f.Uint32("u32"); err != nil || v != 4000000000 {
		t.Errorf("Uint32 = %v, %v", v, err)
	}
	if v, err := f.Float32("f32"); err != nil || v != 3.25 {
		t.Errorf("Float32 = %v, %v", v, err)
	}
	if v, err := f.Bool("bool.true"); err != nil || !v {
		t.Errorf("Bool = %v, %v", v, err)
	}
	if v, err := f.Strings("arr.string"); err != nil || len(v) != 3 || v[2] != "▁b" {
		t.Errorf("Strings = %v, %v", v, err)
	}
	if v, err := f.Int32s("arr.i32"); err != nil || v[2] != -3 {
		t.Errorf("Int32s = %v, %v", v, err)
	}
	for key, want := range map[string]int64{"u8": 200, "i8": -100, "u16": 60000, "i16": -30000, "u32": 4000000000, "i32": -2000000000, "i64": -1 << 63} {
		if v, err := f.Integer(key); err != nil || v != want {
			t.Errorf("Integer(%s) = %v, %v; want %v", key, v, err, want)
		}
	}
	if _, err := f.Integer("u64"); !errors.Is(err, ErrKeyType) {
		t.Errorf("u64 above MaxInt64 as Integer: %v", err)
	}
	if v, err := f.Integers("arr.u16"); err != nil || v[1] != 65535 {
		t.Errorf("Integers = %v, %v", v, err)
	}
	// The returned slice is a copy.
	v, _ := f.Strings("arr.string")
	v[0] = "changed"
	if again, _ := f.Strings("arr.string"); again[0] != "a" {
		t.Error("Strings exposed the file's own slice")
	}
}

func TestGetterErrorsNameFileKeyAndTypes(t *testing.T) {
	f := openAllKinds(t)
	cases := []struct {
		get      func() error
		kind     error
		fragment []string
	}{
		{func() error { _, err := f.Uint32("i32"); return err }, ErrKeyType, []string{`"i32"`, "has type i32", "expected u32"}},
		{func() error { _, err := f.Float32("f64"); return err }, ErrKeyType, []string{"has type f64", "expected f32"}},
		{func() error { _, err := f.String("arr.string"); return err }, ErrKeyType, []string{"has type array[string]", "expected string"}},
		{func() error { _, err := f.Strings("arr.u8"); return err }, ErrKeyType, []string{"array[u8]", "expected array[string]"}},
		{func() error { _, err := f.Float32s("f32"); return err }, ErrKeyType, []string{"has type f32", "expected array[f32]"}},
		{func() error { _, err := f.Bool("u8"); return err }, ErrKeyType, []string{"expected bool"}},
		{func() error { _, err := f.Integer("f32"); return err }, ErrKeyType, []string{"expected an integer"}},
		{func() error { _, err := f.Uint32("nope"); return err }, ErrKeyMissing, []string{`"nope" is missing`}},
	}
	for i, c := range cases {
		err := c.get()
		if !errors.Is(err, c.kind) {
			t.Errorf("case %d: %v, want %v", i, err, c.kind)
			continue
		}
		if !strings.HasPrefix(err.Error(), f.Path+": ") {
			t.Errorf("case %d: %q does not name the file", i, err)
		}
		for _, frag := range c.fragment {
			if !strings.Contains(err.Error(), frag) {
				t.Errorf("case %d: %q lacks %q", i, err, frag)
			}
		}
	}
}

func TestUint32OrArray(t *testing.T) {
	w := NewWriter()
	w.Set("scalar", Uint32Value(4))
	w.Set("per.layer", ArrayValue([]int32{4, 4, 8}))
	w.Set("floats", ArrayValue([]float32{4, 4, 4}))
	w.Set("i32", Int32Value(4))
	path := filepath.Join(t.TempDir(), "l.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if v, err := f.Uint32OrArray("scalar", 3); err != nil || len(v) != 3 || v[2] != 4 {
		t.Errorf("scalar: %v, %v", v, err)
	}
	if v, err := f.Uint32OrArray("per.layer", 3); err != nil || v[2] != 8 {
		t.Errorf("array: %v, %v", v, err)
	}
	if _, err := f.Uint32OrArray("per.layer", 2); err == nil || !strings.Contains(err.Error(), "3 per-layer values but the model has 2 layers") {
		t.Errorf("length mismatch: %v", err)
	}
	// llama.cpp aborts on a float array here and rejects an i32 scalar.
	for _, key := range []string{"floats", "i32"} {
		if _, err := f.Uint32OrArray(key, 3); !errors.Is(err, ErrKeyType) {
			t.Errorf("%s: %v", key, err)
		}
	}
}
