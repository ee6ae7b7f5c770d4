package ggml

// #include <math.h>
// #include <pthread.h>
// #include <string.h>
// #include "ggml.h"
// #include "ggml-impl.h"
// #if defined(__F16C__)
// #include <immintrin.h>
// #endif
//
// // A CONT node with this in op_params[0] is TableGeGLU's: src[0] the exact value, and
// // the gate and up tensors in the op_params after it (a CONT has none of its own).
// // They are not sources yet: the backward pass would ask for their gradients there.
// #define CALFT_TABLE_GEGLU 0x43414c47
// struct calft_geglu_mark { int32_t mark, pad; struct ggml_tensor * gate, * up; };
//
// static ggml_fp16_t calft_fp16(float x) {
// #if defined(__F16C__)
//     return _cvtss_sh(x, 0);
// #else
//     return ggml_fp32_to_fp16(x);
// #endif
// }
//
// // The table ggml's CPU backend builds at start-up (ggml-cpu.c), entry by entry the
// // same: GELU(tanh) in F32 of each F16 value, rounded to F16.
// static ggml_fp16_t calft_gelu_table[1 << 16];
// static pthread_once_t calft_gelu_once = PTHREAD_ONCE_INIT;
// static void calft_gelu_init(void) {
//     for (int i = 0; i < (1 << 16); i++) {
//         float f = ggml_fp16_to_fp32((ggml_fp16_t) i);
//         float g = 0.5f*f*(1.0f + tanhf(0.79788456080286535587989211986876f*f*(1.0f + 0.044715f*f*f)));
//         calft_gelu_table[i] = calft_fp16(g);
//     }
// }
//
// // calft_table_geglu is ggml-cpu's geglu of F32 rows (vec.h, with GGML_GELU_FP16):
// // dst = gelu(gate)·up, gelu read from the table at the gate rounded to F16, 0 at or
// // below −10 and the identity at or above 10. Threads take every nth row.
// static void calft_table_geglu(struct ggml_tensor * dst, int ith, int nth, void * ud) {
//     (void) ud;
//     const struct ggml_tensor * gate = dst->src[0], * up = dst->src[1];
//     const int64_t nc = dst->ne[0], nr = ggml_nrows(dst);
//     for (int64_t r = ith; r < nr; r += nth) {
//         const float * x = (const float *) gate->data + r*nc;
//         const float * u = (const float *) up->data + r*nc;
//         float * y = (float *) dst->data + r*nc;
//         for (int64_t i = 0; i < nc; i++) {
//             if (x[i] <= -10.0f) {
//                 y[i] = 0.0f;
//             } else if (x[i] >= 10.0f) {
//                 y[i] = x[i]*u[i];
//             } else {
//                 y[i] = ggml_fp16_to_fp32(calft_gelu_table[calft_fp16(x[i])])*u[i];
//             }
//         }
//     }
// }
//
// static struct ggml_tensor * calft_mark_table_geglu(struct ggml_context * ctx, struct ggml_tensor * exact,
//         struct ggml_tensor * gate, struct ggml_tensor * up) {
//     struct ggml_tensor * t = ggml_cont(ctx, exact);
//     struct calft_geglu_mark m = { CALFT_TABLE_GEGLU, 0, gate, up };
//     ggml_set_op_params(t, &m, sizeof(m));
//     return t;
// }
//
// static int calft_use_table_geglu(struct ggml_cgraph * g) {
//     int n = 0;
//     for (int i = 0; i < ggml_graph_n_nodes(g); i++) {
//         struct ggml_tensor * t = ggml_graph_node(g, i);
//         if (t->op != GGML_OP_CONT || ggml_get_op_params_i32(t, 0) != CALFT_TABLE_GEGLU) continue;
//         struct calft_geglu_mark m;
//         memcpy(&m, t->op_params, sizeof(m));
//         struct ggml_tensor * gate = m.gate, * up = m.up;
//         if (gate->type != GGML_TYPE_F32 || up->type != GGML_TYPE_F32 || !ggml_is_contiguous(gate) ||
//             !ggml_is_contiguous(up) || !ggml_are_same_shape(gate, t) || !ggml_are_same_shape(up, t)) continue;
//         pthread_once(&calft_gelu_once, calft_gelu_init);
//         struct ggml_custom_op_params p = { calft_table_geglu, GGML_N_TASKS_MAX, NULL };
//         memset(t->op_params, 0, sizeof(t->op_params));
//         ggml_set_op_params(t, &p, sizeof(p));
//         t->op = GGML_OP_CUSTOM;
//         for (int s = 0; s < GGML_MAX_SRC; s++) t->src[s] = NULL;
//         t->src[0] = gate;
//         t->src[1] = up;
//         n++;
//     }
//     return n;
// }
import "C"

// TableGeGLU is exact, the value of gelu(gate)·up written with differentiable ops (as
// llava.GeGLU is), as a node whose value UseTableGeGLU can later replace with that of
// llama.cpp's CPU geglu, which reads GELU from an F16 table: up to 9e-4 (relative) away
// from the exact formula, enough to keep a decoder 3e-4 from libllama's logits. The
// backward pass, built before the replacement, differentiates the exact formula (the
// table's own derivative is zero almost everywhere). Until replaced, and on backends
// other than the CPU (whose GELU is the formula), its value is exact's.
func (ctx *Context) TableGeGLU(exact, gate, up Tensor) Tensor {
	return Tensor{C.calft_mark_table_geglu(ctx.c, exact.t, gate.t, up.t)}
}

// UseTableGeGLU turns the graph's TableGeGLU nodes into a CPU kernel of calft's that
// computes ggml's table geglu (bit for bit: the same table, built the same way). Call it
// after the backward pass is built and before the graph is allocated, on graphs that run
// on the CPU backend only; it returns how many nodes it replaced.
func (g *Graph) UseTableGeGLU() int { return int(C.calft_use_table_geglu(g.g)) }
