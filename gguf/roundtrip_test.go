package gguf

import (
	"bytes"
	"math"
	"path/filepath"
	"reflect"
	"testing"
)

// allKindsWriter builds a file with every metadata type (scalars, arrays of
// every element type, empty and nested arrays) and tensors of several types.
func allKindsWriter(t *testing.T) *Writer {
	t.Helper()
	w := NewWriter()
	w.Set("general.architecture", StringValue("test"))
	w.Set("u8", Uint8Value(200))
	w.Set("i8", Int8Value(-100))
	w.Set("u16", Uint16Value(60000))
	w.Set("i16", Int16Value(-30000))
	w.Set("u32", Uint32Value(4000000000))
	w.Set("i32", Int32Value(-2000000000))
	w.Set("f32", Float32Value(3.25))
	w.Set("bool.true", BoolValue(true))
	w.Set("bool.false", BoolValue(false))
	w.Set("string", StringValue("héllo ▁wörld"))
	w.Set("string.empty", StringValue(""))
	w.Set("u64", Uint64Value(math.MaxUint64))
	w.Set("i64", Int64Value(math.MinInt64))
	w.Set("f64", Float64Value(-1e300))
	w.Set("arr.u8", ArrayValue([]uint8{0, 1, 255}))
	w.Set("arr.i8", ArrayValue([]int8{-128, 0, 127}))
	w.Set("arr.u16", ArrayValue([]uint16{1, 65535}))
	w.Set("arr.i16", ArrayValue([]int16{-32768, 32767}))
	w.Set("arr.u32", ArrayValue([]uint32{7, 8, 9}))
	w.Set("arr.i32", ArrayValue([]int32{-1, 2, -3}))
	w.Set("arr.f32", ArrayValue([]float32{0.5, -1.5, float32(math.Inf(1))}))
	w.Set("arr.bool", ArrayValue([]bool{true, false, true}))
	w.Set("arr.string", ArrayValue([]string{"a", "", "▁b"}))
	w.Set("arr.u64", ArrayValue([]uint64{math.MaxUint64, 0}))
	w.Set("arr.i64", ArrayValue([]int64{math.MinInt64, math.MaxInt64}))
	w.Set("arr.f64", ArrayValue([]float64{1e-300, -2}))
	w.Set("arr.empty", ArrayValue([]float32{}))
	w.Set("arr.nested", NestedArrayValue([]Value{
		ArrayValue([]string{"x", "y"}),
		ArrayValue([]uint32{}),
		NestedArrayValue([]Value{ArrayValue([]int8{1})}),
	}))

	f32 := []float32{1, -2, 3.5, 0, 1e-3, -7, 8, 9}
	mustAdd := func(name string, dt DType, shape []uint64, vals []float32) {
		t.Helper()
		if err := w.AddTensorF32(name, dt, shape, vals); err != nil {
			t.Fatal(err)
		}
	}
	mustAdd("t.f32", F32, []uint64{4, 2}, f32)
	mustAdd("t.f16", F16, []uint64{8}, f32)
	mustAdd("t.bf16", BF16, []uint64{2, 2, 2}, f32)
	ramp := make([]float32, 64)
	for i := range ramp {
		ramp[i] = float32(i)/8 - 4
	}
	mustAdd("t.q8_0", Q8_0, []uint64{32, 2}, ramp)
	mustAdd("t.q4_0", Q4_0, []uint64{64}, ramp)
	// A k-quant this package cannot convert still round-trips as raw bytes.
	raw := make([]byte, Q6_K.BlockBytes())
	for i := range raw {
		raw[i] = byte(i)
	}
	if err := w.AddTensor("t.q6_k", Q6_K, []uint64{256}, raw); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("t.i32.4d", I32, []uint64{1, 2, 1, 3}, make([]byte, 24)); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestRoundTripEveryKind(t *testing.T) {
	for _, align := range []uint32{0, 1, 8, 64, 4096} {
		w := allKindsWriter(t)
		want := uint64(defaultAlignment)
		if align != 0 {
			w.SetAlignment(align)
			want = uint64(align)
		}
		path := filepath.Join(t.TempDir(), "all.gguf")
		if err := w.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		if f.Alignment != want || f.DataOffset%want != 0 || f.Version != 3 {
			t.Errorf("align %d: got alignment %d, data offset %d, version %d", align, f.Alignment, f.DataOffset, f.Version)
		}
		if !reflect.DeepEqual(f.KVs(), w.kvs) {
			t.Errorf("align %d: metadata differs after round trip:\n got %v\nwant %v", align, f.KVs(), w.kvs)
		}
		if len(f.Tensors) != len(w.tensors) {
			t.Fatalf("got %d tensors, want %d", len(f.Tensors), len(w.tensors))
		}
		for i, pt := range w.tensors {
			got := f.Tensors[i]
			if got.Name != pt.info.Name || got.Type != pt.info.Type || !reflect.DeepEqual(got.Shape, pt.info.Shape) || got.Size != pt.info.Size {
				t.Errorf("tensor %d: got %+v, want %+v", i, got, pt.info)
			}
			if (f.DataOffset+got.Offset)%want != 0 {
				t.Errorf("tensor %q at %d is not aligned to %d", got.Name, f.DataOffset+got.Offset, want)
			}
			data, err := f.TensorData(got.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, pt.data) {
				t.Errorf("tensor %q data differs", got.Name)
			}
		}
		f.Close()
	}
}

func TestTensorF32Conversions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "all.gguf")
	if err := allKindsWriter(t).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exact := []float32{1, -2, 3.5, 0, 1e-3, -7, 8, 9}
	for _, name := range []string{"t.f32", "t.bf16", "t.f16"} {
		got, err := f.TensorF32(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			// bfloat16 keeps 8 significant bits, half 11: both within 1/256.
			if math.Abs(float64(v-exact[i])) > math.Abs(float64(exact[i]))/256 {
				t.Errorf("%s[%d] = %v, want %v", name, i, v, exact[i])
			}
		}
	}
	// Q8_0 with amax 4 has step d = 4/127: the error is at most half a step
	// (plus the rounding of d to f16).
	got, err := f.TensorF32("t.q8_0")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		want := float32(i)/8 - 4
		if math.Abs(float64(v-want)) > 0.5*4/127+1e-3 {
			t.Errorf("q8_0[%d] = %v, want %v", i, v, want)
		}
	}
	if _, err := f.TensorF32("t.q6_k"); err == nil {
		t.Error("converting Q6_K should be refused")
	}
	if _, err := f.TensorF32("nope"); err == nil {
		t.Error("missing tensor should be an error")
	}
}

func TestWriteToMatchesWriteFile(t *testing.T) {
	w := allKindsWriter(t)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(bytes.NewReader(buf.Bytes()), int64(buf.Len()), "mem.gguf")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Tensors) != len(w.tensors) {
		t.Fatal("tensor count differs")
	}
}
