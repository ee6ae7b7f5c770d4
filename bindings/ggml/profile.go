package ggml

// #cgo CPPFLAGS: -I${SRCDIR}/../../third_party/ollama/ml/backend/ggml/ggml/src
// #include "ggml.h"
// #include "ggml-backend.h"
// #include "ggml-impl.h"
// static enum ggml_status calft_compute_range(ggml_backend_t be, struct ggml_cgraph * g, int i0, int i1) {
//     struct ggml_cgraph v = ggml_graph_view(g, i0, i1);
//     return ggml_backend_graph_compute(be, &v);
// }
import "C"

import (
	"fmt"
	"time"
)

// NodeTime is the time one node of a graph took.
type NodeTime struct {
	Node Tensor
	Dur  time.Duration
}

// ComputeProfiled runs g one node at a time on the backend and times each node. It
// gives the same results as Compute, more slowly (each node starts the thread pool).
func (be *Backend) ComputeProfiled(g *Graph) ([]NodeTime, error) {
	n := g.NNodes()
	out := make([]NodeTime, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if st := C.calft_compute_range(be.b, g.g, C.int(i), C.int(i+1)); st != C.GGML_STATUS_SUCCESS {
			return nil, fmt.Errorf("ggml: node %d failed with status %d", i, int(st))
		}
		out = append(out, NodeTime{Node: g.Node(i), Dur: time.Since(t0)})
	}
	return out, nil
}

// MatMulFLOPs is the multiply-add work of a MUL_MAT or OUT_PROD node (or of the
// product RewriteOutProds puts in their place), counted as
// 2·m·n·k (0 for other ops): the measure of "useful" work in a training step.
func (t Tensor) MatMulFLOPs() float64 {
	switch t.Op() {
	case "MUL_MAT":
		// a: [k, m, …], result: [m, n, b2, b3]: every result element is a k-long dot product.
		k := float64(t.Src(0).Ne()[0])
		return 2 * k * float64(t.NElements())
	case "OUT_PROD":
		// a: [m, k], b: [n, k], result [m, n, …]: every element sums k products.
		k := float64(t.Src(0).Ne()[1])
		return 2 * k * float64(t.NElements())
	case "CUSTOM":
		if t.isSmallInner() { // a: [m, k], x: [k, n], result [m, n]
			return 2 * float64(t.Src(0).Ne()[1]) * float64(t.NElements())
		}
	}
	return 0
}
