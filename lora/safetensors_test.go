package lora

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stFile builds a safetensors file from a header and data, as a writer might get it wrong.
func stFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func f32Bytes(v ...float32) []byte {
	var out []byte
	for _, x := range v {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(x))
	}
	return out
}

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	ts := []STensor{
		{Name: "b", Shape: []int{2, 3}, Data: []float32{1, -2, 3.5, 0, 1e-3, 65504}},
		{Name: "a", Shape: []int{1}, Data: []float32{0.25}},
		{Name: "empty", Shape: []int{0, 4}, Data: nil},
	}
	for _, dt := range []string{STF32, STF16, STBF16} {
		if err := WriteSafetensors(path, ts, dt, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		if n := binary.LittleEndian.Uint64(raw); n%8 != 0 {
			t.Errorf("%s: header of %d bytes is not padded to 8", dt, n)
		}
		got, meta, err := ReadSafetensors(path)
		if err != nil {
			t.Fatal(err)
		}
		if meta["format"] != "pt" || len(got) != 3 || got[0].Name != "a" || got[1].Name != "b" || !slices.Equal(got[1].Shape, []int{2, 3}) {
			t.Fatalf("%s: %+v %v", dt, got, meta)
		}
		tol := map[string]float64{STF32: 0, STF16: 1e-3, STBF16: 1e-2}[dt]
		for i, v := range got[1].Data {
			if w := float64(ts[0].Data[i]); math.Abs(float64(v)-w) > tol*math.Max(1, math.Abs(w)) {
				t.Errorf("%s: value %d is %g, wrote %g", dt, i, v, w)
			}
		}
	}
}

// TestSafetensorsMalformed: every kind of broken file gives an error that names the file
// and the problem, never a panic.
func TestSafetensorsMalformed(t *testing.T) {
	dir := t.TempDir()
	good := stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1, 2))
	nan16 := stFile(`{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, []byte{0, 0x3c, 0, 0x7e})
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"truncated header", good[:20], "exceeds the"},
		{"truncated data", good[:len(good)-3], "truncated"},
		{"huge header length", append(huge, '{', '}'), "exceeds the limit"},
		{"not json", stFile(`hello world`, nil), "not a JSON object"},
		{"bad json", stFile(`{"w":{"dtype":"F32",`, nil), "unexpected EOF"},
		{"trailing garbage", stFile(`{}{}`, nil), "after its JSON object"},
		{"array header", stFile(`[1,2]`, nil), "not a JSON object"},
		{"wrong dtype", stFile(`{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)), `dtype "I64"`},
		{"missing dtype", stFile(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `dtype ""`},
		{"missing shape", stFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), "shape"},
		{"negative dim", stFile(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "does not fit"},
		{"enormous shape", stFile(`{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}`, make([]byte, 4)), "does not fit"},
		{"fractional dim", stFile(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w"`},
		{"offsets out of range", stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}`, f32Bytes(1, 2)), "outside"},
		{"offsets reversed", stFile(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, f32Bytes(1, 2)), "outside"},
		{"one offset", stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}}`, f32Bytes(1, 2)), "two data_offsets"},
		{"size mismatch", stFile(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, f32Bytes(1, 2)), "needs 4 bytes"},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32Bytes(1, 2)), "overlap"},
		{"hole", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32Bytes(1, 2)), "unused"},
		{"trailing data", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32Bytes(1, 2)), "after the last tensor"},
		{"duplicate name", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32Bytes(1, 2)), "twice"},
		{"bad metadata", stFile(`{"__metadata__":{"format":3}}`, nil), "__metadata__"},
		{"nan f32", stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1, float32(math.NaN()))), "NaN"},
		{"inf f32", stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(float32(math.Inf(-1)), 1)), "Inf"},
		{"nan f16", nan16, "NaN"},
	}
	for _, c := range cases {
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := ReadSafetensors(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming the file and %q", c.name, err, c.want)
		} else if !errors.Is(err, ErrSafetensors) {
			t.Errorf("%s: %v is not an ErrSafetensors", c.name, err)
		}
	}
	path := filepath.Join(dir, "good.safetensors")
	os.WriteFile(path, good, 0o644)
	if ts, _, err := ReadSafetensors(path); err != nil || !slices.Equal(ts[0].Data, []float32{1, 2}) {
		t.Errorf("the good file: %v %v", ts, err)
	}
}

// FuzzReadSafetensors: no input makes the reader panic or accept non-finite values.
func FuzzReadSafetensors(f *testing.F) {
	f.Add(stFile(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32Bytes(1, 2)))
	f.Add(stFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[1,1],"data_offsets":[0,2]}}`, []byte{0x80, 0x3f}))
	f.Add(stFile(`{"a":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}}`, nil))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "f.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ts, _, err := ReadSafetensors(path)
		if err != nil {
			return
		}
		for _, st := range ts {
			n := 1
			for _, d := range st.Shape {
				n *= d
			}
			if n != len(st.Data) {
				t.Fatalf("%s: shape %v, %d values", st.Name, st.Shape, len(st.Data))
			}
			for _, v := range st.Data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s: accepted %v", st.Name, v)
				}
			}
		}
	})
}
