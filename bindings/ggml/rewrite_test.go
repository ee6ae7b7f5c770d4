package ggml

import (
	"bytes"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestRewriteOutProds builds each product RewriteOutProds replaces twice, computes one
// graph as autodiff would have it and the other rewritten, and compares the values.
func TestRewriteOutProds(t *testing.T) {
	be := newCPU(t)
	const K, N, T, r = 96, 80, 24, 8
	leaves := NewContext(16*TensorOverhead(), true)
	defer leaves.Close()
	w := leaves.NewTensor(TypeF32, K, N)     // a frozen matrix
	wt32 := leaves.NewTensor(TypeF32, N, K)  // its transpose, exact
	wt16 := leaves.NewTensor(TypeBF16, N, K) // and rounded
	dy := leaves.NewTensor(TypeF32, N, T)    // gradient of W·x
	b := leaves.NewTensor(TypeF32, r, N)     // a LoRA B
	u := leaves.NewTensor(TypeF32, r, T)     // A·x
	a := leaves.NewTensor(TypeF32, K, r)     // a LoRA A
	du := leaves.NewTensor(TypeF32, r, T)    // gradient of A·x
	buf, err := be.AllocTensors(leaves)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(x Tensor) []float32 {
		v := make([]float32, x.NElements())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		x.SetF32(v)
		return v
	}
	wv := fill(w)
	for _, x := range []Tensor{dy, b, u, a, du} {
		fill(x)
	}
	tv := make([]float32, K*N)
	for k := range K {
		for n := range N {
			tv[n+k*N] = wv[k+n*K]
		}
	}
	wt32.SetF32(tv)
	bf := make([]byte, 2*len(tv))
	for i, f := range tv { // round to nearest even
		bits := math.Float32bits(f)
		bits += 0x7fff + (bits>>16)&1
		bf[2*i], bf[2*i+1] = byte(bits>>16), byte(bits>>24)
	}
	wt16.SetBytes(bf, 0)

	cases := []struct {
		name  string
		build func(ctx *Context) Tensor
		fp    FrozenProducts
		op    string  // the op the node has after the rewrite
		tol   float64 // max |Δ| / max |value|
	}{
		{"dx through a frozen matrix, F32 copy", func(c *Context) Tensor { return c.OutProd(w, c.Transpose(dy)) }, FrozenProducts{Transposed: map[Tensor]Tensor{w: wt32}}, "MUL_MAT", 1e-6},
		{"dx through a frozen matrix, BF16 copy", func(c *Context) Tensor { return c.OutProd(w, c.Transpose(dy)) }, FrozenProducts{Transposed: map[Tensor]Tensor{w: wt16}}, "MUL_MAT", 1e-2},
		{"dx through a frozen matrix, F32 tiles", func(c *Context) Tensor { return c.OutProd(w, c.Transpose(dy)) }, FrozenProducts{Tiled: map[Tensor]bool{w: true}, TileType: TypeF32}, "MUL_MAT", 1e-6},
		{"dx through a frozen matrix, BF16 tiles", func(c *Context) Tensor { return c.OutProd(w, c.Transpose(dy)) }, FrozenProducts{Tiled: map[Tensor]bool{w: true}, TileType: TypeBF16}, "MUL_MAT", 1e-2},
		{"du through a LoRA B (short rows)", func(c *Context) Tensor { return c.OutProd(b, c.Transpose(dy)) }, FrozenProducts{}, "MUL_MAT", 1e-6},
		{"dB (short rows against long ones)", func(c *Context) Tensor { return c.OutProd(u, dy) }, FrozenProducts{}, "CONT", 1e-6},
		{"dx through a LoRA A (small inner dimension)", func(c *Context) Tensor { return c.OutProd(a, c.Transpose(du)) }, FrozenProducts{}, "CUSTOM", 1e-6},
		{"B·u forward (small inner dimension)", func(c *Context) Tensor { return c.MulMat(b, u) }, FrozenProducts{}, "CUSTOM", 1e-6},
		{"W·x forward in BF16", func(c *Context) Tensor { return c.MulMat(w, a) }, FrozenProducts{Forward: map[Tensor]bool{w: true}}, "MUL_MAT", 1e-2},
	}
	// A gradient that is itself a transposed view is left to out_prod (mul_mat needs its
	// second operand's rows packed).
	{
		ctx := NewContext(64*TensorOverhead()+GraphOverhead(64, false), true)
		y := ctx.NewTensor(TypeF32, T, N) // (never computed: only the decision is checked)
		strided := ctx.Transpose(y)       // [N, T] with rows T apart
		out := ctx.OutProd(w, ctx.Transpose(strided))
		g := ctx.NewGraph(64, false)
		g.Expand(out)
		if n := g.RewriteOutProds(ctx, FrozenProducts{Transposed: map[Tensor]Tensor{w: wt32}}, true); n != 0 || out.Op() != "OUT_PROD" {
			t.Errorf("a strided gradient was rewritten (%d nodes, %s)", n, out.Op())
		}
		ctx.Close()
	}
	for _, c := range cases {
		var got [2][]float32
		for i, rewrite := range []bool{false, true} {
			ctx := NewContext(64*TensorOverhead()+GraphOverhead(64, false), true)
			out := c.build(ctx).SetOutput()
			g := ctx.NewGraph(64, false)
			g.Expand(out)
			if rewrite {
				if n := g.RewriteOutProds(ctx, c.fp, true); n != 1 || out.Op() != c.op {
					t.Fatalf("%s: %d nodes rewritten, node is %s; want 1 and %s", c.name, n, out.Op(), c.op)
				}
			}
			al := be.NewAllocator()
			if err := al.Alloc(g); err != nil {
				t.Fatal(err)
			}
			if err := be.Compute(g); err != nil {
				t.Fatal(err)
			}
			got[i] = out.F32()
			al.Close()
			ctx.Close()
		}
		var diff, scale float64
		for i := range got[0] {
			diff = math.Max(diff, math.Abs(float64(got[0][i]-got[1][i])))
			scale = math.Max(scale, math.Abs(float64(got[0][i])))
		}
		t.Logf("%s: max |Δ| / max |value| = %.2e", c.name, diff/scale)
		if diff/scale > c.tol || scale == 0 {
			t.Errorf("%s: rewritten product differs by %.2e (scale %.3g), want ≤ %.0e", c.name, diff/scale, scale, c.tol)
		}
	}
}

// TestTiledTransposedProduct checks the tiled product Wᵀ·dy against ggml's out_prod on
// the same (dequantized) matrix, for the stored types of real bases, with several tiles.
func TestTiledTransposedProduct(t *testing.T) {
	be := newCPU(t)
	const nIn, nOut, T = 4096, 4608, 8 // 8M/4096 = 2048 rows a tile: three tiles
	rng := rand.New(rand.NewPCG(3, 3))
	w := make([]float32, nIn*nOut)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	dy := make([]float32, nOut*T)
	for i := range dy {
		dy[i] = float32(rng.NormFloat64())
	}
	for _, c := range []struct {
		typ, tile Type
		tol       float64
	}{
		{TypeF32, TypeF32, 1e-5}, {TypeF16, TypeF32, 1e-5}, {TypeBF16, TypeF32, 1e-5}, {TypeQ8_0, TypeF32, 1e-5},
		{TypeQ4_0, TypeF32, 1e-5}, {TypeQ4_K, TypeF32, 1e-5}, {TypeQ6_K, TypeF32, 1e-5}, {TypeQ4_K, TypeBF16, 1e-2},
	} {
		data, err := Quantize(c.typ, w, nIn)
		if err != nil {
			t.Fatal(err)
		}
		ctx := NewContext(128*TensorOverhead()+GraphOverhead(128, false), true)
		wq := ctx.NewTensor(c.typ, nIn, nOut)
		wf := ctx.NewTensor(TypeF32, nIn, nOut)
		d := ctx.NewTensor(TypeF32, nOut, T)
		buf, err := be.AllocTensors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wq.SetBytes(data, 0)
		d.SetF32(dy)
		g0 := ctx.NewGraph(128, false)
		g0.Expand(ctx.Cpy(ctx.Cast(wq, TypeF32), wf)) // the dequantized values, for the reference
		ref := ctx.OutProd(wf, ctx.Transpose(d))
		g0.Expand(ref)
		got := ctx.TiledTransposedProduct(wq, d, c.tile, false) // ggml's ops
		g0.Expand(got)
		gotCPU := ctx.TiledTransposedProduct(wq, d, c.tile, true) // calft's CPU kernel
		g0.Expand(gotCPU)
		al := be.NewAllocator()
		if err := al.Alloc(g0); err != nil {
			t.Fatal(err)
		}
		if err := be.Compute(g0); err != nil {
			t.Fatal(err)
		}
		e := maxRelErr(got.F32(), ref.F32())
		t.Logf("%s W, %s tiles: max |Δ| / max |ref| = %.2e", c.typ, c.tile, e)
		if e > c.tol {
			t.Errorf("%s W, %s tiles: error %.2e > %.0e", c.typ, c.tile, e, c.tol)
		}
		// The CPU kernel rounds the same values the same way: the products agree exactly.
		if e := maxRelErr(gotCPU.F32(), got.F32()); e != 0 {
			t.Errorf("%s W, %s tiles: the CPU kernel's tiles differ from ggml's by %.2e", c.typ, c.tile, e)
		}
		al.Close()
		buf.Close()
		ctx.Close()
	}
}

// TestDequantize checks calft's dequantizing kernels against ggml's cast, for the stored
// types of real bases, plain and transposed, into F32 and BF16: equal bit for bit.
func TestDequantize(t *testing.T) {
	be := newCPU(t)
	const nIn, nOut = 512, 200 // 200 rows: six groups of 32 and a partial one
	rng := rand.New(rand.NewPCG(5, 5))
	w := make([]float32, nIn*nOut)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	for _, typ := range []Type{TypeF32, TypeF16, TypeBF16, TypeQ8_0, TypeQ4_0, TypeQ4_K, TypeQ5_K, TypeQ6_K} {
		data, err := Quantize(typ, w, nIn)
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []Type{TypeF32, TypeBF16} {
			ctx := NewContext(32*TensorOverhead()+GraphOverhead(32, false), true)
			wq := ctx.NewTensor(typ, nIn, nOut)
			buf, err := be.AllocTensors(ctx)
			if err != nil {
				t.Fatal(err)
			}
			wq.SetBytes(data, 0)
			g := ctx.NewGraph(32, false)
			ref := ctx.Cast(ctx.Cast(wq, TypeF32), tt)
			refT := ctx.Cont(ctx.Transpose(ref))
			plain := ctx.Dequantize(wq, tt, false)
			tr := ctx.Dequantize(wq, tt, true)
			for _, x := range []Tensor{ref, refT, plain, tr} {
				g.Expand(x.SetOutput()) // outputs: the allocator must not reuse their memory
			}
			al := be.NewAllocator()
			if err := al.Alloc(g); err != nil {
				t.Fatal(err)
			}
			if err := be.Compute(g); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(plain.Bytes(), ref.Bytes()) {
				t.Errorf("%s → %s: the kernel's values differ from ggml's cast", typ, tt)
			}
			if !bytes.Equal(tr.Bytes(), refT.Bytes()) {
				t.Errorf("%s → %s transposed: the kernel's values differ from ggml's cast and transpose", typ, tt)
			}
			al.Close()
			buf.Close()
			ctx.Close()
		}
	}
}

// BenchmarkForwardProduct times y = W·x for a frozen [2048, 8192] matrix over 704 rows
// (llama1b's feed-forward, a benchmark sequence): ggml's product on the stored type,
// and the BF16 product of the matrix dequantized whole by calft's kernel, both counted.
func BenchmarkForwardProduct(b *testing.B) {
	be, err := NewBackend("cpu", runtime.NumCPU())
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	const nIn, nOut, T = 2048, 8192, 704
	rng := rand.New(rand.NewPCG(7, 7))
	w := make([]float32, nIn*nOut)
	for i := range w {
		w[i] = float32(rng.NormFloat64() * 0.05)
	}
	for _, typ := range []Type{TypeF16, TypeQ8_0, TypeQ4_0, TypeQ4_K, TypeQ5_K, TypeQ6_K} {
		data, err := Quantize(typ, w, nIn)
		if err != nil {
			b.Fatal(err)
		}
		for _, bf16 := range []bool{false, true} {
			name := typ.String() + "/native"
			if bf16 {
				name = typ.String() + "/bf16"
			}
			b.Run(name, func(b *testing.B) {
				ctx := NewContext(32*TensorOverhead()+GraphOverhead(32, false), true)
				defer ctx.Close()
				wq := ctx.NewTensor(typ, nIn, nOut)
				x := ctx.NewTensor(TypeF32, nIn, T)
				buf, err := be.AllocTensors(ctx)
				if err != nil {
					b.Fatal(err)
				}
				defer buf.Close()
				wq.SetBytes(data, 0)
				buf.Clear(0)
				g := ctx.NewGraph(32, false)
				src := wq
				if bf16 {
					src = ctx.Dequantize(wq, TypeBF16, false)
				}
				g.Expand(ctx.MulMat(src, x))
				al := be.NewAllocator()
				defer al.Close()
				if err := al.Alloc(g); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					if err := be.Compute(g); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*nIn*nOut*T*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func maxRelErr(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / m
}
