package ggml

// #include <stdlib.h>
// #include <string.h>
// #include "ggml.h"
// #include "ggml-impl.h"
//
// // calft_srcs_save copies g's first n nodes, and their sources, into nodes (n) and
// // srcs (n·GGML_MAX_SRC).
// static void calft_srcs_save(struct ggml_cgraph * g, int n, struct ggml_tensor ** nodes, struct ggml_tensor ** srcs) {
//     for (int i = 0; i < n; i++) {
//         nodes[i] = g->nodes[i];
//         for (int j = 0; j < GGML_MAX_SRC; j++) srcs[i * GGML_MAX_SRC + j] = g->nodes[i]->src[j];
//     }
// }
//
// // calft_srcs_restore writes the saved sources back into the n saved nodes, wherever
// // they now stand in the graph.
// static void calft_srcs_restore(int n, struct ggml_tensor * const * nodes, struct ggml_tensor * const * srcs) {
//     for (int i = 0; i < n; i++) {
//         for (int j = 0; j < GGML_MAX_SRC; j++) nodes[i]->src[j] = srcs[i * GGML_MAX_SRC + j];
//     }
// }
//
// // calft_keep_nodes keeps the nodes i of g with keep[i] set, in their order.
// static void calft_keep_nodes(struct ggml_cgraph * g, const char * keep) {
//     int k = 0;
//     for (int i = 0; i < g->n_nodes; i++) {
//         if (keep[i]) g->nodes[k++] = g->nodes[i];
//     }
//     g->n_nodes = k;
// }
//
// // calft_read_stored turns node into a copy of stored (same type and shape).
// static void calft_read_stored(struct ggml_tensor * node, struct ggml_tensor * stored) {
//     node->op = GGML_OP_DUP;
//     memset(node->op_params, 0, sizeof(node->op_params));
//     for (int s = 0; s < GGML_MAX_SRC; s++) node->src[s] = NULL;
//     node->src[0] = stored;
// }
import "C"

import (
	"fmt"
	"unsafe"
)

// Graph is a computation graph built in a Context.
type Graph struct {
	g   *C.struct_ggml_cgraph
	ctx *Context
	// sched is the scheduler that placed the graph, beside a device (see Allocator).
	sched *Scheduler
	// nodes and srcs are the nodes and their own sources (GGML_MAX_SRC per node), saved
	// before a scheduler first split the graph: see restoreSrcs.
	nodes, srcs []*C.struct_ggml_tensor
}

// restoreSrcs gives every node of g its own sources back, before a scheduler splits g
// (again) or calft walks its tensors. ggml's scheduler rewrites, in the caller's graph,
// each source read across backends (a CPU node reading a device tensor, a device node
// reading a CPU one) to point at a copy it makes in its own context, and frees that
// context, copies and all, when it next splits a graph. calft keeps its graphs and
// places them again after others: without this, such a node's source is freed memory,
// which the next split, calft_release_compute and the device's kernels then read and
// write. The sources are restored by node, not by position: a backend may reorder the
// nodes of the caller's graph when the scheduler splits it (Vulkan's graph_optimize
// does), and restoring by position then gave nodes other nodes' sources (on lavapipe:
// heap corruption within the first steps of one run in three). Nodes appended since
// the last save are saved as they are.
func (g *Graph) restoreSrcs() {
	n := g.NNodes()
	if len(g.nodes) > 0 {
		C.calft_srcs_restore(C.int(len(g.nodes)), &g.nodes[0], &g.srcs[0])
	}
	if n > len(g.nodes) {
		g.nodes = make([]*C.struct_ggml_tensor, n)
		g.srcs = make([]*C.struct_ggml_tensor, n*MaxSrc)
		C.calft_srcs_save(g.g, C.int(n), &g.nodes[0], &g.srcs[0])
	}
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

// Nodes are the graph's nodes now, in order.
func (g *Graph) Nodes() []Tensor {
	out := make([]Tensor, g.NNodes())
	for i := range out {
		out[i] = g.Node(i)
	}
	return out
}

// DropUnread removes the nodes of forward (nodes the graph had before its backward pass
// was built) whose values no other node reads, directly or through nodes dropped with
// them: in a graph that only differentiates, the forward results that autodiff never
// reads (the output of a block whose gradient is given, a product whose output only
// feeds an addition). Nodes marked as outputs, copies (they write into their
// destination) and every node added after forward are kept. It returns how many nodes it
// dropped. Call it after the backward pass is built, before the graph is allocated.
func (g *Graph) DropUnread(forward []Tensor) int {
	fw := make(map[*C.struct_ggml_tensor]bool, len(forward))
	for _, t := range forward {
		fw[t.t] = true
	}
	n := g.NNodes()
	read := map[*C.struct_ggml_tensor]bool{}
	keep := make([]C.char, n)
	dropped := 0
	// Nodes stand in dependency order: every reader of a node comes after it.
	for i := n - 1; i >= 0; i-- {
		t := g.Node(i).t
		if !fw[t] || read[t] || t.flags&C.GGML_TENSOR_FLAG_OUTPUT != 0 || t.op == C.GGML_OP_CPY {
			keep[i] = 1
			for j := 0; j < MaxSrc; j++ {
				if t.src[j] != nil {
					read[t.src[j]] = true
				}
			}
			if t.view_src != nil {
				read[t.view_src] = true
			}
			continue
		}
		dropped++
	}
	if dropped > 0 {
		C.calft_keep_nodes(g.g, &keep[0])
	}
	return dropped
}

// ReadStored makes node, a node of g, copy the value of stored instead of computing its
// op: stored has node's type and shape, lives outside g's compute buffer and was written
// by an earlier graph with the value node would compute (a recomputed block reads back
// the products its first computation kept). The nodes reading node are unchanged, so
// call it after the backward pass is built (autodiff differentiates node's op as it
// was) and before the graph's rewrites and allocation.
func (g *Graph) ReadStored(node, stored Tensor) error {
	if node.Type() != stored.Type() || node.Ne() != stored.Ne() || !stored.IsContiguous() {
		return fmt.Errorf("ggml: %s (%v %v) cannot read the stored %s (%v %v)", node.Name(), node.Type(), node.Ne(), stored.Name(), stored.Type(), stored.Ne())
	}
	C.calft_read_stored(node.t, stored.t)
	g.Expand(stored) // a leaf of g, like the weights
	return nil
}

// GradAcc returns the persistent gradient accumulator of t (the loss has one), or the
// zero Tensor.
func (g *Graph) GradAcc(t Tensor) Tensor { return Tensor{C.ggml_graph_get_grad_acc(g.g, t.t)} }
