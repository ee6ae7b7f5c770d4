package ggml

import (
	"math"
	"strings"
	"testing"
)

// newCPU starts a CPU backend for a test and frees it afterwards.
func newCPU(t *testing.T) *Backend {
	t.Helper()
	be, err := NewBackend("cpu", 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return be
}

// allocGraph gives ctx's leaves a buffer of their own and places g's computed nodes in
// an allocator's, both freed when the test ends.
func allocGraph(t *testing.T, be *Backend, ctx *Context, g *Graph) {
	t.Helper()
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(buf.Close)
	al := be.NewAllocator()
	t.Cleanup(al.Close)
	if err := al.Alloc(g); err != nil {
		t.Fatal(err)
	}
}

func TestMulMatOnBackend(t *testing.T) {
	be := newCPU(t)
	ctx := NewContext(16*TensorOverhead()+GraphOverhead(16, false), true)
	defer ctx.Close()
	a := ctx.NewTensor(TypeF32, 3, 2) // two rows of length 3
	b := ctx.NewTensor(TypeF32, 3, 1) // one column of length 3
	y := ctx.MulMat(a, b)
	g := ctx.NewGraph(16, false)
	g.Expand(y)
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	a.SetF32([]float32{1, 2, 3, 4, 5, 6})
	b.SetF32([]float32{1, 0, -1})
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	got := y.F32()
	if y.Ne() != [4]int{2, 1, 1, 1} || got[0] != -2 || got[1] != -2 {
		t.Fatalf("mul_mat: ne %v values %v, want [2 1 1 1] [-2 -2]", y.Ne(), got)
	}
}

// TestBackwardOfSquaredNorm checks the autodiff path: d/dx Σ (W·x)² = 2·Wᵀ·W·x.
func TestBackwardOfSquaredNorm(t *testing.T) {
	be := newCPU(t)
	ctx := NewContext(64*TensorOverhead()+GraphOverhead(64, true), true)
	defer ctx.Close()
	w := ctx.NewTensor(TypeF32, 2, 2)
	x := ctx.NewTensor(TypeF32, 2).SetParam()
	loss := ctx.Sum(ctx.Sqr(ctx.MulMat(w, x))).SetLoss()
	g := ctx.NewGraph(64, true)
	g.Expand(loss)
	g.BuildBackward(ctx)
	allocGraph(t, be, ctx, g)
	w.SetF32([]float32{1, 2, 3, 4}) // rows (1,2) and (3,4)
	x.SetF32([]float32{1, -1})
	g.Reset()
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	// W·x = (-1, -1); loss = 2; grad = 2·Wᵀ·(W·x) = 2·(1·-1+3·-1, 2·-1+4·-1) = (-8, -12)
	if l := loss.F32()[0]; math.Abs(float64(l-2)) > 1e-6 {
		t.Fatalf("loss %v, want 2", l)
	}
	gr := g.Grad(x).F32()
	if math.Abs(float64(gr[0]+8)) > 1e-5 || math.Abs(float64(gr[1]+12)) > 1e-5 {
		t.Fatalf("grad %v, want [-8 -12]", gr)
	}
}

// TestOutOfMemoryIsAnError: an allocation the machine cannot hold comes back as an error
// that says how much was asked for, not as a crash.
func TestOutOfMemoryIsAnError(t *testing.T) {
	be, err := NewBackend("cpu", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx := NewContext(4*TensorOverhead()+GraphOverhead(4, false), true)
	defer ctx.Close()
	huge := ctx.NewTensor(TypeF32, 1<<22, 1<<22) // 64 TB
	if _, err := be.AllocTensors(ctx); err == nil || !strings.Contains(err.Error(), "out of memory") || !strings.Contains(err.Error(), "GB") {
		t.Errorf("weights: %v", err)
	}
	small := NewContext(8*TensorOverhead()+GraphOverhead(8, false), true)
	defer small.Close()
	a := small.NewTensor(TypeF32, 1<<22, 1)
	b := small.NewTensor(TypeF32, 1<<22, 1)
	buf, err := be.AllocTensors(small)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	g := small.NewGraph(8, false)
	g.Expand(small.OutProd(a, b)) // [4M, 4M] F32: 64 TB of intermediate
	al := be.NewAllocator()
	defer al.Close()
	if err := al.Alloc(g); err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Errorf("graph: %v", err)
	}
	_ = huge
}

// TestDropUnread checks that the forward values no gradient reads leave the graph and
// that the gradient stays the same: for loss = Σ (W·x + c)·dy, dx = Wᵀ·dy reads neither
// W·x nor anything computed from it.
func TestDropUnread(t *testing.T) {
	be := newCPU(t)
	ctx := NewContext(64*TensorOverhead()+GraphOverhead(64, true), true)
	defer ctx.Close()
	w := ctx.NewTensor(TypeF32, 2, 2)
	x := ctx.NewTensor(TypeF32, 2).SetParam()
	c := ctx.NewTensor(TypeF32, 2)
	dy := ctx.NewTensor(TypeF32, 2)
	seed := ctx.Sum(ctx.Mul(ctx.Add(ctx.MulMat(w, x), c), dy)).SetLoss()
	g := ctx.NewGraph(64, true)
	g.Expand(seed)
	forward := g.Nodes()
	g.BuildBackward(ctx)
	if n := g.DropUnread(forward); n != len(forward) {
		t.Fatalf("dropped %d of the %d forward nodes, want all", n, len(forward))
	}
	for _, n := range g.Nodes() {
		if n.Op() == "MUL_MAT" {
			t.Fatal("the forward product W·x is still in the graph")
		}
	}
	allocGraph(t, be, ctx, g)
	w.SetF32([]float32{1, 2, 3, 4}) // rows (1,2) and (3,4)
	x.SetF32([]float32{1, -1})
	c.SetF32([]float32{5, 6})
	dy.SetF32([]float32{1, 10})
	g.GradAcc(seed).SetF32([]float32{1})
	if err := be.Compute(g); err != nil {
		t.Fatal(err)
	}
	// Wᵀ·dy = (1·1 + 3·10, 2·1 + 4·10) = (31, 42)
	if gr := g.Grad(x).F32(); gr[0] != 31 || gr[1] != 42 {
		t.Fatalf("grad %v, want [31 42]", gr)
	}
}
