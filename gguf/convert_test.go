package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

func TestFloat16KnownValues(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff},                  // largest finite half
		{65519, 0x7bff},                  // rounds down to it
		{65520, 0x7c00},                  // the midpoint rounds to even: infinity
		{1e6, 0x7c00},                    // overflow
		{float32(math.Inf(-1)), 0xfc00},  // infinity stays infinite
		{6.103515625e-05, 0x0400},        // smallest normal 2^-14
		{5.960464477539063e-08, 0x0001},  // smallest subnormal 2^-24
		{2.9802322387695312e-08, 0x0000}, // 2^-25: a tie, rounds to even 0
		{4.470348358154297e-08, 0x0001},  // 1.5·2^-25 rounds up
		{1e-10, 0x0000},                  // underflow
		{1.0 / 127, 0x2008},              // the Q8_0 scale of a block with amax 1
		{1 + 1.0/2048, 0x3c00},           // tie between 1 and 1+2^-10: even is 1
		{1 + 3.0/2048, 0x3c02},           // tie between 1+2^-10 and 1+2^-9: even is the latter
		{0.1, 0x2e66},
	}
	for _, c := range cases {
		if got := Float32ToFloat16(c.f); got != c.h {
			t.Errorf("Float32ToFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if h := Float32ToFloat16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN became %#04x", h)
	}
}

// Every half converts to float32 and back unchanged.
func TestFloat16RoundTripAllHalves(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := Float16ToFloat32(uint16(h))
		if f != f {
			if g := Float32ToFloat16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, g)
			}
			continue
		}
		if g := Float32ToFloat16(f); g != uint16(h) {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, g)
		}
	}
}

// For random floats the result is the nearest half, ties to even.
func TestFloat16IsNearestEven(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200000; i++ {
		f := math.Float32frombits(rng.Uint32())
		if f != f || math.Abs(float64(f)) >= 65520 {
			continue
		}
		h := Float32ToFloat16(f)
		got := float64(Float16ToFloat32(h))
		err := math.Abs(got - float64(f))
		for _, nb := range []uint16{h + 1, h - 1} {
			if nb&0x7c00 == 0x7c00 || (h&0x7fff == 0 && nb == h-1) {
				continue
			}
			alt := math.Abs(float64(Float16ToFloat32(nb)) - float64(f))
			if alt < err || (alt == err && h&1 == 1) {
				t.Fatalf("%g -> %#04x (%g) but %#04x (%g) is nearer or even", f, h, got, nb, Float16ToFloat32(nb))
			}
		}
	}
}

func TestBFloat16(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{1, 0x3f80},
		{-2, 0xc000},
		{math.Float32frombits(0x3f808000), 0x3f80}, // tie, even stays
		{math.Float32frombits(0x3f818000), 0x3f82}, // tie, rounds to even
		{math.Float32frombits(0x3f808001), 0x3f81}, // above the tie
		{float32(math.Inf(1)), 0x7f80},
	}
	for _, c := range cases {
		if got := Float32ToBFloat16(c.f); got != c.h {
			t.Errorf("Float32ToBFloat16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
		if back := BFloat16ToFloat32(c.h); Float32ToBFloat16(back) != c.h {
			t.Errorf("bf16 %#04x does not round-trip", c.h)
		}
	}
	if h := Float32ToBFloat16(float32(math.NaN())); h&0x7f80 != 0x7f80 || h&0x7f == 0 {
		t.Errorf("NaN became %#04x", h)
	}
}

func TestQ8_0HandComputed(t *testing.T) {
	x := make([]float32, 32)
	x[0], x[1], x[2], x[3] = 1, -0.25, 0.1, -1
	b, err := Quantize(Q8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 34 {
		t.Fatalf("block is %d bytes, want 34", len(b))
	}
	// d = 1/127 stored as f16 0x2008 = 2^-7·(1+8/1024) = 0.00787353515625;
	// q = round(x·127): 127, round(-31.75) = -32, round(12.7) = 13, -127.
	if d := binary.LittleEndian.Uint16(b); d != 0x2008 {
		t.Errorf("scale = %#04x, want 0x2008", d)
	}
	wantQ := []int8{127, -32, 13, -127}
	for i, q := range wantQ {
		if int8(b[2+i]) != q {
			t.Errorf("q[%d] = %d, want %d", i, int8(b[2+i]), q)
		}
	}
	y, err := Dequantize(Q8_0, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0.99993896484375, -0.251953125, 0.10235595703125, -0.99993896484375}
	for i, w := range want {
		if y[i] != w {
			t.Errorf("dequantized[%d] = %v, want %v", i, y[i], w)
		}
	}
	for i := 4; i < 32; i++ {
		if b[2+i] != 0 || y[i] != 0 {
			t.Errorf("zero input %d became q=%d y=%v", i, b[2+i], y[i])
		}
	}
	// An all-zero block has scale 0 and all-zero quants.
	z, _ := Quantize(Q8_0, make([]float32, 32))
	for i, v := range z {
		if v != 0 {
			t.Fatalf("zero block byte %d = %d", i, v)
		}
	}
}

func TestQ8_0RoundTripError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 32*64)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * float64(1+i/32))
	}
	b, err := Quantize(Q8_0, x)
	if err != nil {
		t.Fatal(err)
	}
	y, err := Dequantize(Q8_0, b)
	if err != nil {
		t.Fatal(err)
	}
	for blk := 0; blk < 64; blk++ {
		var amax float64
		for _, v := range x[blk*32 : blk*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		// half a quantization step, plus the f16 rounding of the scale
		// (relative 2^-11) times the largest quant.
		tol := amax/127/2 + amax/2048 + 1e-7
		for i := blk * 32; i < blk*32+32; i++ {
			if math.Abs(float64(x[i]-y[i])) > tol {
				t.Fatalf("element %d: %v -> %v (tolerance %g)", i, x[i], y[i], tol)
			}
		}
	}
	if _, err := Quantize(Q8_0, make([]float32, 33)); err == nil {
		t.Error("a partial block should be refused")
	}
}

func TestQ4_0HandComputed(t *testing.T) {
	x := make([]float32, 32)
	x[0], x[1], x[2], x[3] = -8, 7, 0.4, 0.6
	x[16], x[17] = 3, -3
	b, err := Quantize(Q4_0, x)
	if err != nil {
		t.Fatal(err)
	}
	// The largest magnitude is -8, so d = -8/-8 = 1; q = min(15, trunc(x+8.5)).
	if d := Float16ToFloat32(binary.LittleEndian.Uint16(b)); d != 1 {
		t.Fatalf("scale %v, want 1", d)
	}
	if b[2] != 0x0|0xb<<4 || b[3] != 0xf|0x5<<4 || b[4] != 0x8|0x8<<4 || b[5] != 0x9|0x8<<4 {
		t.Errorf("packed quants % x", b[2:6])
	}
	y, _ := Dequantize(Q4_0, b)
	want := map[int]float32{0: -8, 1: 7, 2: 0, 3: 1, 16: 3, 17: -3, 5: 0}
	for i, w := range want {
		if y[i] != w {
			t.Errorf("y[%d] = %v, want %v", i, y[i], w)
		}
	}
}

func TestQ4_1Dequantize(t *testing.T) {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint16(b[0:], Float32ToFloat16(0.5)) // d
	binary.LittleEndian.PutUint16(b[2:], Float32ToFloat16(-1))  // m
	b[4] = 0x3 | 0xa<<4
	y, err := Dequantize(Q4_1, b)
	if err != nil {
		t.Fatal(err)
	}
	if y[0] != 0.5 || y[16] != 4 || y[1] != -1 {
		t.Errorf("got y[0]=%v y[16]=%v y[1]=%v, want 0.5 4 -1", y[0], y[16], y[1])
	}
}

func TestDTypeTable(t *testing.T) {
	// Values checked against ggml.h and the block structs in ggml-common.h.
	cases := []struct {
		t            DType
		id           uint32
		block, bytes uint64
	}{
		{F32, 0, 1, 4}, {F16, 1, 1, 2}, {Q4_0, 2, 32, 18}, {Q4_1, 3, 32, 20},
		{Q5_0, 6, 32, 22}, {Q5_1, 7, 32, 24}, {Q8_0, 8, 32, 34}, {Q8_1, 9, 32, 36},
		{Q2_K, 10, 256, 84}, {Q3_K, 11, 256, 110}, {Q4_K, 12, 256, 144}, {Q5_K, 13, 256, 176},
		{Q6_K, 14, 256, 210}, {Q8_K, 15, 256, 292}, {IQ2_XXS, 16, 256, 66}, {IQ2_XS, 17, 256, 74},
		{IQ3_XXS, 18, 256, 98}, {IQ1_S, 19, 256, 50}, {IQ4_NL, 20, 32, 18}, {IQ3_S, 21, 256, 110},
		{IQ2_S, 22, 256, 82}, {IQ4_XS, 23, 256, 136}, {I8, 24, 1, 1}, {I16, 25, 1, 2},
		{I32, 26, 1, 4}, {I64, 27, 1, 8}, {F64, 28, 1, 8}, {IQ1_M, 29, 256, 56},
		{BF16, 30, 1, 2}, {TQ1_0, 34, 256, 54}, {TQ2_0, 35, 256, 66}, {MXFP4, 39, 32, 17},
	}
	for _, c := range cases {
		if uint32(c.t) != c.id || c.t.BlockSize() != c.block || c.t.BlockBytes() != c.bytes {
			t.Errorf("%s: id %d block %d bytes %d, want %d %d %d", c.t, uint32(c.t), c.t.BlockSize(), c.t.BlockBytes(), c.id, c.block, c.bytes)
		}
		if byName, ok := DTypeByName(c.t.String()); !ok || byName != c.t {
			t.Errorf("DTypeByName(%q) = %v, %v", c.t, byName, ok)
		}
	}
	if n, err := Q8_0.RowSize(64); err != nil || n != 68 {
		t.Errorf("Q8_0 row of 64 = %d, %v", n, err)
	}
	if _, err := Q8_0.RowSize(48); err == nil {
		t.Error("48 elements are not whole Q8_0 blocks")
	}
	for _, removed := range []DType{4, 5, 31, 32, 33, 36, 37, 38, 40} {
		if removed.Known() {
			t.Errorf("type %d should be unknown", removed)
		}
	}
}
