package ggml

// #include <stdlib.h>
// #include "ggml.h"
import "C"

import "unsafe"

// Graph is a computation graph built in a Context.
type Graph struct {
	g   *C.struct_ggml_cgraph
	ctx *Context
	// sched is the scheduler that placed the graph, beside a device (see Allocator).
	sched *Scheduler
}

// NewGraph makes a graph with room for size nodes; grads enables automatic differentiation.
func (ctx *Context) NewGraph(size int, grads bool) *Graph {
	return &Graph{g: C.ggml_new_graph_custom(ctx.c, C.size_t(size), C.bool(grads)), ctx: ctx}
}

// Expand adds t and everything it depends on to the graph, in dependency order.
func (g *Graph) Expand(t Tensor) { C.ggml_build_forward_expand(g.g, t.t) }

// BuildBackward appends the backward pass for the tensor marked SetLoss; gradient
// nodes are created in gctx.
func (g *Graph) BuildBackward(gctx *Context) {
	C.ggml_build_backward_expand(gctx.c, g.g, nil)
}

// BuildBackwardInto is BuildBackward with persistent gradient accumulators: the gradient
// of each param p is added into accs[p] on every compute, until Reset zeroes them. This
// is how gradients accumulate over micro-batches and survive across graphs.
func (g *Graph) BuildBackwardInto(gctx *Context, accs map[Tensor]Tensor) {
	n := g.NNodes()
	arr := (**C.struct_ggml_tensor)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	s := unsafe.Slice(arr, n)
	for i := range n {
		if acc, ok := accs[g.Node(i)]; ok {
			s[i] = acc.t
		}
	}
	C.ggml_build_backward_expand(gctx.c, g.g, arr)
}

// Grad returns the gradient node of t, or the zero Tensor when t gets none.
func (g *Graph) Grad(t Tensor) Tensor { return Tensor{C.ggml_graph_get_grad(g.g, t.t)} }

// Reset zeroes the gradients and sets the loss gradient to 1, before a backward compute.
func (g *Graph) Reset() { C.ggml_graph_reset(g.g) }

// NNodes is the number of computed nodes.
func (g *Graph) NNodes() int { return int(C.ggml_graph_n_nodes(g.g)) }

// Node returns node i (negative i counts from the end).
func (g *Graph) Node(i int) Tensor { return Tensor{C.ggml_graph_node(g.g, C.int(i))} }

// Op is the name of the operation that produces t ("NONE" for a leaf).
func (t Tensor) Op() string { return C.GoString(C.ggml_op_desc(t.t)) }

// MaxSrc is the most inputs a node has.
const MaxSrc = C.GGML_MAX_SRC

// Src returns input i of the node (zero Tensor when absent).
func (t Tensor) Src(i int) Tensor { return Tensor{t.t.src[i]} }

// GradAcc returns the persistent gradient accumulator of t (the loss has one), or the
// zero Tensor.
func (g *Graph) GradAcc(t Tensor) Tensor { return Tensor{C.ggml_graph_get_grad_acc(g.g, t.t)} }
