package ggml

// #include "ggml.h"
import "C"

// Operations. Each returns a new node of ctx's graph; nothing is computed until a backend
// runs the graph. Shapes follow ggml: ne[0] is the innermost dimension, and MulMat(a, b)
// is aᵀ·b in row-major terms (a: [k, m], b: [k, n] → [m, n]).

// MulMat is the matrix product a: [k, m], b: [k, n] → [m, n], broadcasting over dims 2, 3.
func (ctx *Context) MulMat(a, b Tensor) Tensor { return Tensor{C.ggml_mul_mat(ctx.c, a.t, b.t)} }

// OutProd is the outer product a: [m, k], b: [n, k] → [m, n].
func (ctx *Context) OutProd(a, b Tensor) Tensor { return Tensor{C.ggml_out_prod(ctx.c, a.t, b.t)} }

// Add is a + b with b broadcast (repeated) to a's shape.
func (ctx *Context) Add(a, b Tensor) Tensor { return Tensor{C.ggml_add(ctx.c, a.t, b.t)} }

// Sub is a − b with b broadcast.
func (ctx *Context) Sub(a, b Tensor) Tensor { return Tensor{C.ggml_sub(ctx.c, a.t, b.t)} }

// Mul is the element-wise product with b broadcast.
func (ctx *Context) Mul(a, b Tensor) Tensor { return Tensor{C.ggml_mul(ctx.c, a.t, b.t)} }

// Div is the element-wise quotient with b broadcast.
func (ctx *Context) Div(a, b Tensor) Tensor { return Tensor{C.ggml_div(ctx.c, a.t, b.t)} }

// Scale multiplies by a constant.
func (ctx *Context) Scale(a Tensor, s float32) Tensor {
	return Tensor{C.ggml_scale(ctx.c, a.t, C.float(s))}
}

// ScaleBias is a·s + b for constants s and b (its backward scales by s).
func (ctx *Context) ScaleBias(a Tensor, s, b float32) Tensor {
	return Tensor{C.ggml_scale_bias(ctx.c, a.t, C.float(s), C.float(b))}
}

// GeGLUSplit is gelu(a)·b with ggml's GELU (tanh approximation; on the CPU read from an
// F16 table), the op llama.cpp's gemma3 feed-forward runs. It has no backward pass.
func (ctx *Context) GeGLUSplit(a, b Tensor) Tensor {
	return Tensor{C.ggml_geglu_split(ctx.c, a.t, b.t)}
}

// Sqr squares element-wise.
func (ctx *Context) Sqr(a Tensor) Tensor { return Tensor{C.ggml_sqr(ctx.c, a.t)} }

// Sqrt is the element-wise square root.
func (ctx *Context) Sqrt(a Tensor) Tensor { return Tensor{C.ggml_sqrt(ctx.c, a.t)} }

// Log is the element-wise natural logarithm.
func (ctx *Context) Log(a Tensor) Tensor { return Tensor{C.ggml_log(ctx.c, a.t)} }

// Exp is the element-wise exponential.
func (ctx *Context) Exp(a Tensor) Tensor { return Tensor{C.ggml_exp(ctx.c, a.t)} }

// Neg negates element-wise.
func (ctx *Context) Neg(a Tensor) Tensor { return Tensor{C.ggml_neg(ctx.c, a.t)} }

// Sum adds every element into a scalar.
func (ctx *Context) Sum(a Tensor) Tensor { return Tensor{C.ggml_sum(ctx.c, a.t)} }

// SumRows adds along dim 0: [n, ...] → [1, ...].
func (ctx *Context) SumRows(a Tensor) Tensor { return Tensor{C.ggml_sum_rows(ctx.c, a.t)} }

// Mean averages along dim 0.
func (ctx *Context) Mean(a Tensor) Tensor { return Tensor{C.ggml_mean(ctx.c, a.t)} }

// ArgMax is the index of the largest element of each row (I32, no gradient).
func (ctx *Context) ArgMax(a Tensor) Tensor { return Tensor{C.ggml_argmax(ctx.c, a.t)} }

// Repeat tiles a to b's shape.
func (ctx *Context) Repeat(a, b Tensor) Tensor { return Tensor{C.ggml_repeat(ctx.c, a.t, b.t)} }

// Concat joins a and b along dim (no gradient).
func (ctx *Context) Concat(a, b Tensor, dim int) Tensor {
	return Tensor{C.ggml_concat(ctx.c, a.t, b.t, C.int(dim))}
}

// Clamp limits every element to [lo, hi] (no gradient). ggml clamps IN PLACE: the
// result is a view of a, whose values change too.
func (ctx *Context) Clamp(a Tensor, lo, hi float32) Tensor {
	return Tensor{C.ggml_clamp(ctx.c, a.t, C.float(lo), C.float(hi))}
}

// RMSNorm divides each row by its root mean square (plus eps).
func (ctx *Context) RMSNorm(a Tensor, eps float32) Tensor {
	return Tensor{C.ggml_rms_norm(ctx.c, a.t, C.float(eps))}
}

// SiLU is x·sigmoid(x).
func (ctx *Context) SiLU(a Tensor) Tensor { return Tensor{C.ggml_silu(ctx.c, a.t)} }

// SwiGLU is silu(a)·b, the fused form that has a backward pass.
func (ctx *Context) SwiGLU(a, b Tensor) Tensor { return Tensor{C.ggml_swiglu_split(ctx.c, a.t, b.t)} }

// GetRows gathers rows of a: [n, r, b] by the I32 indices idx: [k, b] → [n, k, b].
func (ctx *Context) GetRows(a, idx Tensor) Tensor { return Tensor{C.ggml_get_rows(ctx.c, a.t, idx.t)} }

// SoftMaxExt is softmax(a·scale + mask) along dim 0; mask may be the zero Tensor.
func (ctx *Context) SoftMaxExt(a, mask Tensor, scale float32) Tensor {
	return Tensor{C.ggml_soft_max_ext(ctx.c, a.t, mask.t, C.float(scale), 0)}
}

// RoPE modes.
const (
	RopeNormal = C.GGML_ROPE_TYPE_NORMAL // rotates adjacent pairs (llama)
	RopeNeox   = C.GGML_ROPE_TYPE_NEOX   // rotates the two halves (qwen2, neox)
	RopeMRoPE  = C.GGML_ROPE_TYPE_MROPE  // NeoX halves, sections of pairs per position (qwen2vl)
	RopeIMRoPE = C.GGML_ROPE_TYPE_IMROPE // NeoX halves, pairs cycling through the positions (qwen3vl)
)

// RopeParams are ggml_rope_ext's settings besides the positions: the rotated
// dimensions, the mode (RopeNormal or RopeNeox), and the frequency base, scale and
// YaRN settings (ExtFactor 0 turns YaRN off).
type RopeParams struct {
	Dims, Mode, NCtxOrig                      int
	FreqBase, FreqScale                       float32
	ExtFactor, AttnFactor, BetaFast, BetaSlow float32
}

// RopeExt rotates a: [head_dim, n_head, n_tokens] by the I32 positions pos: [n_tokens].
// freqs, when not the zero Tensor, holds F32 per-frequency divisors [dims/2] (Llama
// 3.x's rope_freqs.weight). Its backward is the rotation by the negated angles.
func (ctx *Context) RopeExt(a, pos, freqs Tensor, p RopeParams) Tensor {
	return Tensor{C.ggml_rope_ext(ctx.c, a.t, pos.t, freqs.t, C.int(p.Dims), C.int(p.Mode), C.int(p.NCtxOrig),
		C.float(p.FreqBase), C.float(p.FreqScale), C.float(p.ExtFactor), C.float(p.AttnFactor),
		C.float(p.BetaFast), C.float(p.BetaSlow))}
}

// RopeMulti is ggml_rope_multi (Qwen2-VL's M-RoPE; p.Mode RopeMRoPE): a is [head_dim,
// n_head, n_tokens], pos holds 4·n_tokens I32 positions section by section (every
// token's first position, then every token's second, …), and rotated pair k takes the
// position of the section k mod Σsections falls in. Its backward is ggml_rope_multi_back.
func (ctx *Context) RopeMulti(a, pos, freqs Tensor, sections [4]int, p RopeParams) Tensor {
	var s [4]C.int
	for i, v := range sections {
		s[i] = C.int(v)
	}
	return Tensor{C.ggml_rope_multi(ctx.c, a.t, pos.t, freqs.t, C.int(p.Dims), &s[0], C.int(p.Mode), C.int(p.NCtxOrig),
		C.float(p.FreqBase), C.float(p.FreqScale), C.float(p.ExtFactor), C.float(p.AttnFactor),
		C.float(p.BetaFast), C.float(p.BetaSlow))}
}

// Cpy copies a into b (converting the type) and returns the node that does it.
func (ctx *Context) Cpy(a, b Tensor) Tensor { return Tensor{C.ggml_cpy(ctx.c, a.t, b.t)} }

// Cont makes a contiguous copy.
func (ctx *Context) Cont(a Tensor) Tensor { return Tensor{C.ggml_cont(ctx.c, a.t)} }

// Reshape views a contiguous tensor with new dimensions.
func (ctx *Context) Reshape(a Tensor, ne ...int) Tensor {
	switch len(ne) {
	case 1:
		return Tensor{C.ggml_reshape_1d(ctx.c, a.t, C.int64_t(ne[0]))}
	case 2:
		return Tensor{C.ggml_reshape_2d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]))}
	case 3:
		return Tensor{C.ggml_reshape_3d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]))}
	case 4:
		return Tensor{C.ggml_reshape_4d(ctx.c, a.t, C.int64_t(ne[0]), C.int64_t(ne[1]), C.int64_t(ne[2]), C.int64_t(ne[3]))}
	}
	panic("ggml: Reshape takes 1 to 4 dimensions")
}

// View1D views n elements of a starting at a byte offset.
func (ctx *Context) View1D(a Tensor, n, offset int) Tensor {
	return Tensor{C.ggml_view_1d(ctx.c, a.t, C.int64_t(n), C.size_t(offset))}
}

// View2D views [ne0, ne1] of a with row stride nb1 bytes, from a byte offset.
func (ctx *Context) View2D(a Tensor, ne0, ne1, nb1, offset int) Tensor {
	return Tensor{C.ggml_view_2d(ctx.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.size_t(nb1), C.size_t(offset))}
}

// View3D views [ne0, ne1, ne2] of a with strides nb1, nb2 bytes, from a byte offset.
func (ctx *Context) View3D(a Tensor, ne0, ne1, ne2, nb1, nb2, offset int) Tensor {
	return Tensor{C.ggml_view_3d(ctx.c, a.t, C.int64_t(ne0), C.int64_t(ne1), C.int64_t(ne2),
		C.size_t(nb1), C.size_t(nb2), C.size_t(offset))}
}

// Permute moves dim i of a to position axes[i].
func (ctx *Context) Permute(a Tensor, ax0, ax1, ax2, ax3 int) Tensor {
	return Tensor{C.ggml_permute(ctx.c, a.t, C.int(ax0), C.int(ax1), C.int(ax2), C.int(ax3))}
}

// Transpose swaps dims 0 and 1 (a view).
func (ctx *Context) Transpose(a Tensor) Tensor { return Tensor{C.ggml_transpose(ctx.c, a.t)} }

// AdamWStep updates param a in place from grad and moments m, v; p holds the 7 AdamW
// parameters {lr, beta1, beta2, eps, weight decay, 1/(1-beta1^t), 1/(1-beta2^t)}.
func (ctx *Context) AdamWStep(a, grad, m, v, p Tensor) Tensor {
	return Tensor{C.ggml_opt_step_adamw(ctx.c, a.t, grad.t, m.t, v.t, p.t)}
}

// Cast converts a to type typ (quantized to F32 included, on the CPU).
func (ctx *Context) Cast(a Tensor, typ Type) Tensor {
	return Tensor{C.ggml_cast(ctx.c, a.t, C.enum_ggml_type(typ))}
}

// GetRowsBack scatters the rows of a [n, k] to the rows idx [k] of a tensor shaped like
// like [n, r], zero elsewhere (rows named twice add up): the backward of GetRows.
func (ctx *Context) GetRowsBack(a, idx, like Tensor) Tensor {
	return Tensor{C.ggml_get_rows_back(ctx.c, a.t, idx.t, like.t)}
}

// SoftMax is softmax along dim 0.
func (ctx *Context) SoftMax(a Tensor) Tensor { return Tensor{C.ggml_soft_max(ctx.c, a.t)} }
