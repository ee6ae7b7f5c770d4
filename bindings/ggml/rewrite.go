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
// // calft_store writes n F32 values into dst as F32 or BF16 (ggml's rounding).
// static void calft_store(const float * src, void * dst, enum ggml_type type, int64_t n) {
//     if (type == GGML_TYPE_BF16) {
//         ggml_fp32_to_bf16_row(src, (ggml_bf16_t *) dst, n);
//     } else {
//         memcpy(dst, src, n * sizeof(float));
//     }
// }
//
// // calft_dequant_rows writes the rows of src[0] (W [n_in, n_out], any type with a
// // to_float) into dst [n_in, n_out] F32 or BF16: the whole of a frozen matrix in the
// // type of a fast product, a row at a time (threads take every nth row).
// static void calft_dequant_rows(struct ggml_tensor * dst, int ith, int nth, void * ud) {
//     (void) ud;
//     const struct ggml_tensor * w = dst->src[0];
//     const int64_t n_in = w->ne[0], n_out = w->ne[1];
//     const ggml_to_float_t to_float = ggml_get_type_traits(w->type)->to_float;
//     float * row = malloc(n_in * sizeof(float));
//     for (int64_t o = ith; o < n_out; o += nth) {
//         const void * src = (const char *) w->data + o * w->nb[1];
//         if (w->type == GGML_TYPE_F32) {
//             memcpy(row, src, n_in * sizeof(float));
//         } else {
//             to_float(src, row, n_in);
//         }
//         calft_store(row, (char *) dst->data + o * dst->nb[1], dst->type, n_in);
//     }
//     free(row);
// }
//
// // calft_dequant_transposed writes Wᵀ of src[0] (W [n_in, n_out], any type with a
// // to_float) into dst [n_out, n_in] F32 or BF16: groups of 32 rows of W are dequantized
// // into a scratch block and written across dst's rows, 32 contiguous values (one or two
// // cache lines) per row of dst; threads take every nth group.
// static void calft_dequant_transposed(struct ggml_tensor * dst, int ith, int nth, void * ud) {
//     (void) ud;
//     enum { G = 32 };
//     const struct ggml_tensor * w = dst->src[0];
//     const int64_t n_in = w->ne[0], n_out = w->ne[1];
//     const ggml_to_float_t to_float = ggml_get_type_traits(w->type)->to_float;
//     float * block = malloc(G * n_in * sizeof(float));
//     float col[G];
//     for (int64_t o0 = (int64_t) ith * G; o0 < n_out; o0 += (int64_t) nth * G) {
//         const int64_t ng = n_out - o0 < G ? n_out - o0 : G;
//         for (int64_t r = 0; r < ng; r++) {
//             const void * src = (const char *) w->data + (o0 + r) * w->nb[1];
//             if (w->type == GGML_TYPE_F32) {
//                 memcpy(block + r * n_in, src, n_in * sizeof(float));
//             } else {
//                 to_float(src, block + r * n_in, n_in);
//             }
//         }
//         const size_t es = ggml_type_size(dst->type);
//         for (int64_t i = 0; i < n_in; i++) {
//             for (int64_t r = 0; r < ng; r++) col[r] = block[r * n_in + i];
//             calft_store(col, (char *) dst->data + i * dst->nb[1] + o0 * es, dst->type, ng);
//         }
//     }
//     free(block);
// }
//
// // calft_dequant is W (a matrix of any type) dequantized into type tt (F32 or BF16) by
// // calft's CPU kernels, transposed or not.
// static struct ggml_tensor * calft_dequant(struct ggml_context * ctx, struct ggml_tensor * w,
//         enum ggml_type tt, int transposed) {
//     struct ggml_tensor * args[1] = { w };
//     if (transposed) {
//         return ggml_custom_4d(ctx, tt, w->ne[1], w->ne[0], 1, 1, args, 1, calft_dequant_transposed, GGML_N_TASKS_MAX, NULL);
//     }
//     return ggml_custom_4d(ctx, tt, w->ne[0], w->ne[1], 1, 1, args, 1, calft_dequant_rows, GGML_N_TASKS_MAX, NULL);
// }
//
// // calft_tile_rows is how many rows of W [n_in, n_out] one tile of the tiled transposed
// // product takes: about 8M elements, so a tile's F32 copy is 32 MB.
// static int64_t calft_tile_rows(const struct ggml_tensor * w) {
//     int64_t r = ((int64_t) 8 << 20) / w->ne[0];
//     if (r < 1) r = 1;
//     return r < w->ne[1] ? r : w->ne[1];
// }
//
// // calft_tiles is how many graph nodes calft_tiled_tprod adds for W.
// static int calft_tiles(const struct ggml_tensor * w) {
//     int64_t r = calft_tile_rows(w);
//     return (int) ((w->ne[1] + r - 1) / r);
// }
//
// // calft_tiled_tprod builds dx = Wᵀ·dy for a frozen W [n_in, n_out] of any type ggml can
// // copy to F32 (quantized, F16, BF16, F32) and dy [n_out, T] F32, without a full-size copy
// // of W: a tile of rows of W at a time is dequantized, transposed into type tt (F32, or
// // BF16 for twice mul_mat's rate), and multiplied with the matching rows of dy; the tiles'
// // products add up. With cpu a tile is dequantized and transposed in one pass
// // (calft_dequant_transposed) instead of ggml's cast, transpose and cast. Every new
// // node is stored in out, in order, except the last, whose op and sources are written
// // into into (the node being replaced); with into NULL the last is stored too and
// // returned.
// static struct ggml_tensor * calft_tiled_tprod(struct ggml_context * ctx, struct ggml_tensor * w,
//         struct ggml_tensor * dy, enum ggml_type tt, int cpu, struct ggml_tensor * into,
//         struct ggml_tensor ** out, int * n) {
//     const int64_t n_in = w->ne[0], n_out = w->ne[1], T = dy->ne[1], rows = calft_tile_rows(w);
//     const int tiles = calft_tiles(w);
//     struct ggml_tensor * acc = NULL, * last = NULL;
//     for (int t = 0; t < tiles; t++) {
//         const int64_t o0 = t * rows, nb = n_out - o0 < rows ? n_out - o0 : rows;
//         struct ggml_tensor * wv = ggml_view_2d(ctx, w, n_in, nb, w->nb[1], o0 * w->nb[1]);
//         out[(*n)++] = wv;
//         struct ggml_tensor * wc;
//         if (cpu) {
//             wc = calft_dequant(ctx, wv, tt, 1);
//         } else {
//             struct ggml_tensor * wf = wv;
//             if (w->type != GGML_TYPE_F32) {
//                 wf = ggml_cast(ctx, wv, GGML_TYPE_F32);
//                 out[(*n)++] = wf;
//             }
//             struct ggml_tensor * wt = ggml_transpose(ctx, wf);
//             out[(*n)++] = wt;
//             wc = tt == GGML_TYPE_F32 ? ggml_cont(ctx, wt) : ggml_cast(ctx, wt, tt);
//         }
//         out[(*n)++] = wc;
//         struct ggml_tensor * dv = ggml_view_2d(ctx, dy, nb, T, dy->nb[1], o0 * dy->nb[0]);
//         out[(*n)++] = dv;
//         struct ggml_tensor * dc = ggml_cont(ctx, dv);
//         out[(*n)++] = dc;
//         struct ggml_tensor * p = ggml_mul_mat(ctx, wc, dc);
//         if (t == tiles - 1) {
//             // The last product, or the last sum, is the result: not stored here.
//             if (acc == NULL) {
//                 last = p;
//             } else {
//                 out[(*n)++] = p;
//                 last = ggml_add(ctx, acc, p);
//             }
//         } else if (acc == NULL) {
//             out[(*n)++] = p;
//             acc = p;
//         } else {
//             out[(*n)++] = p;
//             acc = ggml_add(ctx, acc, p);
//             out[(*n)++] = acc;
//         }
//     }
//     if (into == NULL) {
//         out[(*n)++] = last;
//         return last;
//     }
//     into->op = last->op;
//     memcpy(into->op_params, last->op_params, sizeof(into->op_params));
//     for (int s = 0; s < GGML_MAX_SRC; s++) into->src[s] = last->src[s];
//     return into;
// }
//
// // calft_rewrite_out_prods rewrites the graph's 2-D F32 out_prod nodes (see
// // RewriteOutProds). It returns the number of rewritten nodes and stores in *bypassed
// // (n_bypassed entries, malloc'd) the transpose views that may have lost their reader.
// static int calft_rewrite_out_prods(struct ggml_context * ctx, struct ggml_cgraph * g,
//         struct ggml_tensor ** w, struct ggml_tensor ** wt, int nw,
//         struct ggml_tensor ** tiled, int ntiled, enum ggml_type tile_type,
//         struct ggml_tensor ** fwd, int nfwd, int cpu,
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
//         int jf = 0;
//         while (jf < nfwd && fwd[jf] != a) jf++;
//         if (cpu && jf < nfwd && node->op == GGML_OP_MUL_MAT && b->type == GGML_TYPE_F32 &&
//             a->ne[2] == 1 && a->ne[3] == 1 && room) {
//             // y = W·x through a frozen matrix: the product in BF16, W dequantized whole
//             // just before it (its buffer is free again after the product).
//             struct ggml_tensor * d = calft_dequant(ctx, a, GGML_TYPE_BF16, 0);
//             g->nodes[k++] = d;
//             node->src[0] = d;
//             g->nodes[k++] = node;
//             count++;
//             continue;
//         }
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
//         int jt = 0;
//         while (jt < ntiled && tiled[jt] != a) jt++;
//         if (jt < ntiled && dy != NULL && dy->type == GGML_TYPE_F32 && dy->nb[0] == sizeof(float) &&
//             a->ne[2] == 1 && a->ne[3] == 1 && a->ne[1] == dy->ne[0] && a->ne[0] == node->ne[0] &&
//             k + 10 * calft_tiles(a) + (n - i) <= g->size &&
//             ggml_get_mem_size(ctx) - ggml_used_mem(ctx) >= (size_t) (12 * calft_tiles(a) + 4) * ggml_tensor_overhead()) {
//             // dx through a frozen matrix without a copy: the tiled product.
//             calft_tiled_tprod(ctx, a, dy, tile_type, cpu, node, g->nodes, &k);
//             g->nodes[k++] = node;
//             (*bypassed)[(*n_bypassed)++] = b;
//             count++;
//             continue;
//         }
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
//   - dx through a W that has a transposed copy Wt in fp.Transposed (any type mul_mat
//     accepts): mul_mat(Wt, dy), the same value up to Wt's rounding;
//   - dx through a W in fp.Tiled (any type, quantized included): the tiled product
//     (TiledTransposedProduct), a tile of W's rows dequantized at a time;
//   - with cpu, y = W·x through a W in fp.Forward: the product in BF16 of W dequantized
//     whole just before it;
//   - out_prod(A, dyᵀ) with rows of A shorter than 64: mul_mat(cont(Aᵀ), dy);
//   - out_prod(A, B) with rows of A shorter than 64 and B's at least 4 times longer:
//     cont(transpose(out_prod(B, A)));
//   - with cpu, out_prod(A, xᵀ) and mul_mat(S, x) whose inner dimension is at most 32
//     (LoRA's products through A in the backward pass and through B in the forward
//     pass): a CPU kernel of calft's that runs along the long dimension instead;
//   - with cpu, TableGeGLU's nodes take the values of ggml's table geglu (UseTableGeGLU).
//
// New nodes are created in ctx. The transpose views no longer read leave the graph, so
// the allocator can reuse what they viewed. Call it after the backward pass is built (it
// rewrites forward nodes whose values autodiff no longer needs) and before the graph is
// allocated; it returns how many nodes it rewrote.
func (g *Graph) RewriteOutProds(ctx *Context, fp FrozenProducts, cpu bool) int {
	transposed := fp.Transposed
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
	nt := len(fp.Tiled)
	tiled := (**C.struct_ggml_tensor)(C.malloc(C.size_t(nt+1) * ptrSize))
	defer C.free(unsafe.Pointer(tiled))
	ts := unsafe.Slice(tiled, nt)
	i = 0
	for k := range fp.Tiled {
		ts[i] = k.t
		i++
	}
	tt := fp.TileType
	if tt != TypeBF16 {
		tt = TypeF32
	}
	nf := len(fp.Forward)
	fwd := (**C.struct_ggml_tensor)(C.malloc(C.size_t(nf+1) * ptrSize))
	defer C.free(unsafe.Pointer(fwd))
	fs := unsafe.Slice(fwd, nf)
	i = 0
	for k := range fp.Forward {
		fs[i] = k.t
		i++
	}
	if cpu {
		g.UseTableGeGLU()
	}
	count := C.calft_rewrite_out_prods(ctx.c, g.g, w, wt, C.int(n), tiled, C.int(nt), C.enum_ggml_type(tt), fwd, C.int(nf), cpuFlag, &bypassed, &nBypassed)
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

// FrozenProducts say how a training graph's backward pass multiplies with the frozen
// matrices (dx = Wᵀ·dy): with a ready transposed copy, or tiled.
type FrozenProducts struct {
	Transposed map[Tensor]Tensor // W → its transposed copy
	Tiled      map[Tensor]bool   // W without a copy: dequantized a tile of rows at a time
	TileType   Type              // the tiles' type: F32 (exact) or BF16 (twice as fast)
	// Forward are frozen matrices whose forward products y = W·x run in BF16 on the CPU:
	// W dequantized whole into the compute buffer just before each product (for
	// quantized types whose own products ggml runs at a fraction of BF16's rate).
	Forward map[Tensor]bool
}

// TiledTransposedProduct is Wᵀ·dy for a frozen W [n_in, n_out] of any type and dy
// [n_out, T] F32, computed a tile of W's rows at a time (see RewriteOutProds) without a
// full-size copy of W. tt is the tiles' type, F32 or BF16.
// With cpu, each tile is dequantized and transposed by one CPU kernel of calft's.
func (ctx *Context) TiledTransposedProduct(w, dy Tensor, tt Type, cpu bool) Tensor {
	if tt != TypeBF16 {
		tt = TypeF32
	}
	cpuFlag := C.int(0)
	if cpu {
		cpuFlag = 1
	}
	tiles := int(C.calft_tiles(w.t))
	nodes := (**C.struct_ggml_tensor)(C.malloc(C.size_t(10*tiles+2) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(nodes))
	var n C.int
	return Tensor{C.calft_tiled_tprod(ctx.c, w.t, dy.t, C.enum_ggml_type(tt), cpuFlag, nil, nodes, &n)}
}

// isSmallInner reports whether t is RewriteOutProds's small-inner-dimension product.
func (t Tensor) isSmallInner() bool { return C.calft_is_small_inner(t.t) != 0 }

// Dequantize is W [n_in, n_out] of any type with a dequantizer in type tt (F32 or BF16),
// by calft's CPU kernels: [n_in, n_out], or Wᵀ [n_out, n_in] when transposed. It runs
// on the CPU backend only (a custom op).
func (ctx *Context) Dequantize(w Tensor, tt Type, transposed bool) Tensor {
	if tt != TypeBF16 {
		tt = TypeF32
	}
	tr := C.int(0)
	if transposed {
		tr = 1
	}
	return Tensor{C.calft_dequant(ctx.c, w.t, C.enum_ggml_type(tt), tr)}
}
