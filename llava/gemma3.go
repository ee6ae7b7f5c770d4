package llava

import (
	"math"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
)

// gemma3Block runs a stream's rows through block il of a gemma3 model, after llama.cpp's
// src/models/gemma3.cpp: RMSNorm before and after attention and the feed-forward,
// per-head RMSNorm of queries and keys before NeoX RoPE (base 10000 without scaling on
// sliding layers), sliding-window attention on sliding layers, and a GELU(tanh)-gated
// feed-forward written with ops that have a backward pass (see GeluTanh).
func (d *Decoder) gemma3Block(ctx *ggml.Context, il int, s *stream) {
	hp := &d.HP
	l := &s.w.Layers[il]
	n := s.x.Ne()[1]
	cur := d.name(ctx.Mul(ctx.RMSNorm(s.x, hp.RMSEps), l.AttnNorm), il, "attn_norm", s)
	q := ctx.Reshape(d.linear(ctx, il, s, l.Wq, cur), hp.HeadDim, hp.NHead, n)
	k := ctx.Reshape(d.linear(ctx, il, s, l.Wk, cur), hp.HeadDim, hp.NHeadKV, n)
	v := ctx.Reshape(d.linear(ctx, il, s, l.Wv, cur), hp.HeadDim, hp.NHeadKV, n)
	q = d.name(ctx.Mul(ctx.RMSNorm(q, hp.RMSEps), l.QNorm), il, "q_normed", s)
	k = d.name(ctx.Mul(ctx.RMSNorm(k, hp.RMSEps), l.KNorm), il, "k_normed", s)
	rp := ropeParamsFor(hp.RopeOf(il))
	q = d.name(ctx.RopeExt(q, s.pos, ggml.Tensor{}, rp), il, "q_rope", s)
	k = d.name(ctx.RopeExt(k, s.pos, ggml.Tensor{}, rp), il, "k_rope", s)
	k, v = d.joinKeys(ctx, s, k, v)
	as := s
	if hp.Sliding(il) {
		sw := *s
		sw.mask = s.maskSWA
		as = &sw
	}
	att := d.attention(ctx, il, as, q, k, v)
	o := d.linear(ctx, il, s, l.Wo, att)
	o = d.name(ctx.Mul(ctx.RMSNorm(o, hp.RMSEps), l.PostAttnNorm), il, "attn_post_norm", s)
	x := d.name(ctx.Add(o, s.x), il, "sa_out", s)
	cur = d.name(ctx.Mul(ctx.RMSNorm(x, hp.RMSEps), l.FFNNorm), il, "ffn_norm", s)
	up := d.linear(ctx, il, s, l.Up, cur)
	gate := d.linear(ctx, il, s, l.Gate, cur)
	act := GeGLU(ctx, gate, up)
	if !d.ExactGELU {
		act = ctx.TableGeGLU(act, gate, up)
	}
	f := d.linear(ctx, il, s, l.Down, d.name(act, il, "ffn_geglu", s))
	f = d.name(ctx.Mul(ctx.RMSNorm(f, hp.RMSEps), l.PostFFNNorm), il, "ffn_post_norm", s)
	s.x = d.name(ctx.Add(f, x), il, "l_out", s)
}

// ropeParamsFor are one layer's RoPE settings for ggml_rope_ext, as libllama passes them.
func ropeParamsFor(r arch.Rope) ggml.RopeParams {
	mode := ggml.RopeNormal
	if r.Type == arch.RopeNeoX {
		mode = ggml.RopeNeox
	}
	return ggml.RopeParams{Dims: r.Dims, Mode: mode, NCtxOrig: r.NCtxOrig, FreqBase: r.Base, FreqScale: r.FreqScale,
		ExtFactor: r.ExtFactor, AttnFactor: r.AttnFactor, BetaFast: r.BetaFast, BetaSlow: r.BetaSlow}
}

// GELU's tanh approximation: gelu(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
const (
	geluCoefA     = 0.044715
	geluSqrt2OvPi = 0.79788456080286535587989211986876
)

// GeGLU is gelu(gate)·up with GELU's tanh approximation, written with ops ggml can
// differentiate (it has no backward for gelu, tanh or geglu). With u = √(2/π)(x +
// 0.044715x³) = x·c(1 + 0.044715x²)/2, c = 2√(2/π):
//
//	gelu(x) = ½x(1 + tanh u) = x·σ(2u) = silu(2u) / (c(1 + 0.044715x²)),
//
// so gelu(x)·up = swiglu(x·den, up) / den with den = c(1 + 0.044715x²) ≥ c: no division
// by a small number and no overflow for any x (silu and its backward are finite
// everywhere). It is exact in real arithmetic; llama.cpp's CPU geglu differs by the F16
// table it reads gelu from (TestGeGLU measures it).
func GeGLU(ctx *ggml.Context, gate, up ggml.Tensor) ggml.Tensor {
	const c = 2 * geluSqrt2OvPi
	den := ctx.ScaleBias(ctx.Sqr(gate), c*geluCoefA, c)
	return ctx.Div(ctx.SwiGLU(ctx.Mul(gate, den), up), den)
}

// GeluTanh is gelu(x) with the tanh approximation in float64: the reference of the
// tests.
func GeluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(geluSqrt2OvPi*(x+geluCoefA*x*x*x)))
}
