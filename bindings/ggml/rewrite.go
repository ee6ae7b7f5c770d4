package ggml

// #include <stdlib.h>
// #include <string.h>
// #include "ggml.h"
// #include "ggml-impl.h"
//
// static int calft_is_matrix(const struct ggml_tensor * t) {
//     return t->type == GGML_TYPE_F32 && t->ne[2] == 1 && t->ne[3] == 1;
// }
//
// // calft_small_inner computes dst[n, t] = Σ_j a[n, j]·x[j, t] for an inner dimension
// // r ≤ 32 (a LoRA rank), with a: [N, r] rows contiguous, x: [r, T] any strides, dst
// // [N, T] contiguous. ggml's kernels vectorize along the inner dimension, which for
// // r = 16 is one vector and a horizontal sum per output; this one runs along n instead
// // (r multiply-adds of a column of a into a block of dst held in L1).
// static void calft_small_inner(struct ggml_tensor * dst, int ith, int nth, void * ud) {
//     (void) ud;
//     const struct ggml_tensor * a = dst->src[0];
//     const struct ggml_tensor * x = dst->src[1];
//     const int64_t N = dst->ne[0], T = dst->ne[1], r = a->ne[1];
//     const int64_t t0 = T * ith / nth, t1 = T * (ith + 1) / nth;
//     enum { BN = 256 };
//     float xs[32], acc[BN];
//     for (int64_t t = t0; t < t1; t++) {
//         float * d = (float *) ((char *) dst->data + t * dst->nb[1]);
//         for (int64_t j = 0; j < r; j++) {
//             xs[j] = *(const float *) ((const char *) x->data + j * x->nb[0] + t * x->nb[1]);
//         }
//         for (int64_t n0 = 0; n0 < N; n0 += BN) {
//             const int64_t nn = N - n0 < BN ? N - n0 : BN;
//             for (int64_t i = 0; i < nn; i++) acc[i] = 0.0f;
//             for (int64_t j = 0; j < r; j++) {
//                 const float * aj = (const float *) ((const char *) a->data + j * a->nb[1]) + n0;
//                 const float s = xs[j];
//                 for (int64_t i = 0; i < nn; i++) acc[i] += s * aj[i];
//             }
//             memcpy(d + n0, acc, nn * sizeof(float));
//         }
//     }
// }
//
// static int calft_is_small_inner(const struct ggml_tensor * t) {
//     if (t->op != GGML_OP_CUSTOM) return 0;
//     struct ggml_custom_op_params p;
//     memcpy(&p, t->op_params, sizeof(p));
//     return p.fun == calft_small_inner;
// }
//
// static void calft_make_small_inner(struct ggml_tensor * node, struct ggml_tensor * a, struct ggml_tensor * x) {
//     struct ggml_custom_op_params p = { calft_small_inner, GGML_N_TASKS_MAX, NULL };
//     memset(node->op_params, 0, sizeof(node->op_params));
//     ggml_set_op_params(node, &p, sizeof(p));
//     node->op = GGML_OP_CUSTOM;
//     for (int s = 0; s < GGML_MAX_SRC; s++) node->src[s] = NULL;
//     node->src[0] = a;
//     node->src[1] = x;
// }
//
// // calft_rewrite_out_prods rewrites the graph's 2-D F32 out_prod nodes (see
// // RewriteOutProds). It returns the number of rewritten nodes and stores in *bypassed
// // (n_bypassed entries, malloc'd) the transpose views that may have lost their reader.
// static int calft_rewrite_out_prods(struct ggml_context * ctx, struct ggml_cgraph * g,
//         struct ggml_tensor ** w, struct ggml_tensor ** wt, int nw, int cpu,
//         struct ggml_tensor *** bypassed, int * n_bypassed) {
//     int n = g->n_nodes, k = 0, count = 0;
//     struct ggml_tensor ** old = malloc(n * sizeof(*old));
//     memcpy(old, g->nodes, n * sizeof(*old));
//     *bypassed = malloc(n * sizeof(**bypassed));
//     *n_bypassed = 0;
//     for (int i = 0; i < n; i++) {
//         struct ggml_tensor * node = old[i];
//         struct ggml_tensor * a = node->src[0], * b = node->src[1];
//         int room = k + 2 + (n - i) <= g->size &&
//             ggml_get_mem_size(ctx) - ggml_used_mem(ctx) >= 4 * ggml_tensor_overhead();
//         if (cpu && node->op == GGML_OP_MUL_MAT && calft_is_matrix(node) && calft_is_matrix(a) &&
//             calft_is_matrix(b) && room && a->ne[0] <= 32 && a->ne[1] >= 64 && ggml_is_contiguous(a)) {
//             // mul_mat(S, u) with a short inner dimension (a LoRA B): the small-inner
//             // kernel over cont(Sᵀ).
//             struct ggml_tensor * at = ggml_transpose(ctx, a);
//             struct ggml_tensor * c = ggml_cont(ctx, at);
//             g->nodes[k++] = at;
//             g->nodes[k++] = c;
//             calft_make_small_inner(node, c, b);
//             g->nodes[k++] = node;
//             count++;
//             continue;
//         }
//         if (node->op != GGML_OP_OUT_PROD || !calft_is_matrix(node) || !calft_is_matrix(b)) {
//             g->nodes[k++] = node;
//             continue;
//         }
//         struct ggml_tensor * dy = b->op == GGML_OP_TRANSPOSE ? b->src[0] : NULL;
//         int j = 0;
//         while (j < nw && w[j] != a) j++;
//         if (dy != NULL && dy->type == GGML_TYPE_F32 && dy->nb[0] == sizeof(float) && j < nw &&
//             wt[j]->ne[0] == dy->ne[0] && wt[j]->ne[1] == node->ne[0]) {
//             // dx through a frozen matrix: mul_mat(Wᵀ, dy) with the ready copy.
//             node->op = GGML_OP_MUL_MAT;
//             node->src[0] = wt[j];
//             node->src[1] = dy;
//             (*bypassed)[(*n_bypassed)++] = b;
//             count++;
//         } else if (cpu && dy != NULL && dy->type == GGML_TYPE_F32 && calft_is_matrix(a) &&
//                    a->ne[1] <= 32 && a->ne[0] >= 64 && a->nb[0] == sizeof(float)) {
//             // out_prod(A, xᵀ) with a short inner dimension (dx through a LoRA A): the
//             // small-inner kernel on A and x as they are.
//             calft_make_small_inner(node, a, dy);
//             (*bypassed)[(*n_bypassed)++] = b;
//             count++;
//         } else if (room && calft_is_matrix(a) && a->ne[0] < 64 && ggml_is_contiguous(a) &&
//                    dy != NULL && dy->type == GGML_TYPE_F32 && ggml_is_contiguous(dy)) {
//             // out_prod(A, dyᵀ) with short rows of A: mul_mat(cont(Aᵀ), dy).
//             struct ggml_tensor * at = ggml_transpose(ctx, a);
//             struct ggml_tensor * c = ggml_cont(ctx, at);
//             g->nodes[k++] = at;
//             g->nodes[k++] = c;
//             node->op = GGML_OP_MUL_MAT;
//             node->src[0] = c;
//             node->src[1] = dy;
//             (*bypassed)[(*n_bypassed)++] = b;
//             count++;
//         } else if (room && calft_is_matrix(a) && a->ne[0] < 64 && dy == NULL &&
//                    ggml_is_contiguous(b) && b->ne[0] >= 4 * a->ne[0]) {
//             // out_prod(A, B) with short rows of A and long rows of B: the transpose of
//             // out_prod(B, A), whose rows are long.
//             struct ggml_tensor * p = ggml_out_prod(ctx, b, a);
//             struct ggml_tensor * pt = ggml_transpose(ctx, p);
//             g->nodes[k++] = p;
//             g->nodes[k++] = pt;
//             node->op = GGML_OP_CONT;
//             node->src[0] = pt;
//             node->src[1] = NULL;
//             count++;
//         }
//         g->nodes[k++] = node;
//     }
//     g->n_nodes = k;
//     free(old);
//     return count;
// }
//
// // calft_drop_unused removes the given view nodes from the graph when no node reads
// // them any more, so that the graph allocator can free what they view.
// static void calft_drop_unused(struct ggml_cgraph * g, struct ggml_tensor ** drop, int n) {
//     int k = 0;
//     for (int i = 0; i < g->n_nodes; i++) {
//         struct ggml_tensor * node = g->nodes[i];
//         int dropped = 0;
//         for (int j = 0; j < n && !dropped; j++) {
//             if (drop[j] != node || (node->flags & GGML_TENSOR_FLAG_OUTPUT)) continue;
//             int used = 0;
//             for (int m = 0; m < g->n_nodes && !used; m++) {
//                 for (int s = 0; s < GGML_MAX_SRC; s++) {
//                     if (g->nodes[m]->src[s] == node) { used = 1; break; }
//                 }
//             }
//             dropped = !used;
//         }
//         if (!dropped) g->nodes[k++] = node;
//     }
//     g->n_nodes = k;
// }
import "C"

import "unsafe"

// RewriteOutProds replaces products that ggml's CPU backend runs slowly with equal
// expressions it runs fast. Autodiff differentiates y = mul_mat(W, x) as
// dx = out_prod(W, dyᵀ) and dW = out_prod(x, dy); the out_prod kernel adds rows of its
// first operand one at a time, a fraction of mul_mat's rate, and worse when those rows
// are short (a LoRA rank of 16); mul_mat in turn spends a horizontal sum per result
// element, which dominates when its inner dimension is a LoRA rank. Cases, all 2-D F32:
//   - dx through a W that has a transposed copy Wt in transposed (any type mul_mat
//     accepts): mul_mat(Wt, dy), the same value up to Wt's rounding;
//   - out_prod(A, dyᵀ) with rows of A shorter than 64: mul_mat(cont(Aᵀ), dy);
//   - out_prod(A, B) with rows of A shorter than 64 and B's at least 4 times longer:
//     cont(transpose(out_prod(B, A)));
//   - with cpu, out_prod(A, xᵀ) and mul_mat(S, x) whose inner dimension is at most 32
//     (LoRA's products through A in the backward pass and through B in the forward
//     pass): a CPU kernel of calft's that runs along the long dimension instead.
//
// New nodes are created in ctx. The transpose views no longer read leave the graph, so
// the allocator can reuse what they viewed. Call it after the backward pass is built (it
// rewrites forward nodes whose values autodiff no longer needs) and before the graph is
// allocated; it returns how many nodes it rewrote.
func (g *Graph) RewriteOutProds(ctx *Context, transposed map[Tensor]Tensor, cpu bool) int {
	n := len(transposed)
	ptrSize := C.size_t(unsafe.Sizeof(uintptr(0)))
	w := (**C.struct_ggml_tensor)(C.malloc(C.size_t(n+1) * ptrSize))
	wt := (**C.struct_ggml_tensor)(C.malloc(C.size_t(n+1) * ptrSize))
	defer C.free(unsafe.Pointer(w))
	defer C.free(unsafe.Pointer(wt))
	ws, wts := unsafe.Slice(w, n), unsafe.Slice(wt, n)
	i := 0
	for k, v := range transposed {
		ws[i], wts[i] = k.t, v.t
		i++
	}
	var bypassed **C.struct_ggml_tensor
	var nBypassed C.int
	cpuFlag := C.int(0)
	if cpu {
		cpuFlag = 1
	}
	count := C.calft_rewrite_out_prods(ctx.c, g.g, w, wt, C.int(n), cpuFlag, &bypassed, &nBypassed)
	defer C.free(unsafe.Pointer(bypassed))
	C.calft_drop_unused(g.g, bypassed, nBypassed)
	// The transposed copies the graph now reads become its leaves, like the weights.
	copies := map[Tensor]bool{}
	for _, v := range transposed {
		copies[v] = true
	}
	for i := 0; i < g.NNodes(); i++ {
		if src := g.Node(i).Src(0); copies[src] {
			g.Expand(src)
		}
	}
	return int(count)
}

// isSmallInner reports whether t is RewriteOutProds's small-inner-dimension product.
func (t Tensor) isSmallInner() bool { return C.calft_is_small_inner(t.t) != 0 }
