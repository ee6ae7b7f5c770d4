package llava

import (
	"fmt"
	"math"

	"github.com/calft/calft/bindings/ggml"
)

// Adapter supplies low-rank updates W·x + scale·B·(A·x) for linear weights, looked up by
// the weight's GGUF name (package lora implements it). A is [n_in, r], B is [r, n_out],
// llama.cpp's adapter layout.
type Adapter interface {
	LoRA(weight string) (a, b ggml.Tensor, scale float32, ok bool)
}

// Dropper is an adapter that applies dropout to the LoRA input in training graphs.
type Dropper interface {
	Drop(ctx *ggml.Context, x ggml.Tensor) ggml.Tensor
}

// Layer holds one decoder block's frozen weights. Biases are the zero Tensor when absent.
type Layer struct {
	AttnNorm, Wq, Wk, Wv, Wo ggml.Tensor
	Bq, Bk, Bv, Bo           ggml.Tensor
	FFNNorm, Gate, Up, Down  ggml.Tensor
}

// Weights are the decoder's frozen tensors, named as in the GGUF.
type Weights struct {
	TokEmbd, OutNorm, Output ggml.Tensor // Output is TokEmbd when tied
	Layers                   []Layer
}

// Inputs are the graph's input tensors for one batch shape; Set fills them.
type Inputs struct {
	Rows    int
	TokIDs  ggml.Tensor // I32 [T]
	TokMask ggml.Tensor // F32 [1, T]
	Embd    ggml.Tensor // F32 [n_embd, T]
	Pos     ggml.Tensor // I32 [T]
	KQMask  ggml.Tensor // F32 [T, T]
	// KQMaskNoImg is the mask of the image-absent pass (text rows do not see image rows);
	// the zero Tensor when the graph has no such pass.
	KQMaskNoImg ggml.Tensor
	OutRows     ggml.Tensor // I32 [n_out], zero Tensor when every row gets logits
	NOut        int
}

// NewInputs declares the inputs for a batch of T rows, of which nOut get logits
// (nOut ≤ 0: all rows, in order). noImgPass adds the image-absent pass's mask.
func NewInputs(ctx *ggml.Context, hp HParams, T, nOut int, noImgPass bool) *Inputs {
	in := &Inputs{Rows: T, NOut: T}
	in.TokIDs = ctx.NewTensor(ggml.TypeI32, T).SetName("inp_tokens").SetInput()
	in.TokMask = ctx.NewTensor(ggml.TypeF32, 1, T).SetName("inp_tok_mask").SetInput()
	in.Embd = ctx.NewTensor(ggml.TypeF32, hp.NEmbd, T).SetName("inp_embd").SetInput()
	in.Pos = ctx.NewTensor(ggml.TypeI32, T).SetName("inp_pos").SetInput()
	in.KQMask = ctx.NewTensor(ggml.TypeF32, T, T).SetName("inp_kq_mask").SetInput()
	if noImgPass {
		in.KQMaskNoImg = ctx.NewTensor(ggml.TypeF32, T, T).SetName("inp_kq_mask_noimg").SetInput()
	}
	if nOut > 0 {
		in.OutRows = ctx.NewTensor(ggml.TypeI32, nOut).SetName("inp_out_rows").SetInput()
		in.NOut = nOut
	}
	return in
}

// Set copies a batch into the input tensors. outRows lists the packed rows whose logits
// the graph computes (it must have NOut entries; nil when every row gets logits).
func (in *Inputs) Set(hp HParams, b *Batch, outRows []int32) error {
	if b.Rows() != in.Rows {
		return fmt.Errorf("batch has %d rows, graph was built for %d", b.Rows(), in.Rows)
	}
	h, err := b.layout(hp, false)
	if err != nil {
		return err
	}
	if !in.KQMaskNoImg.Nil() {
		hn, err := b.layout(hp, true)
		if err != nil {
			return err
		}
		in.KQMaskNoImg.SetF32(hn.kqMask)
	}
	in.TokIDs.SetI32(h.tokIDs)
	in.TokMask.SetF32(h.tokMask)
	in.Embd.SetF32(h.embd)
	in.Pos.SetI32(h.pos)
	if in.KQMask.HasBuffer() { // a graph of the image-absent pass alone does not read it
		in.KQMask.SetF32(h.kqMask)
	}
	if !in.OutRows.Nil() {
		if len(outRows) != in.NOut {
			return fmt.Errorf("%d output rows given, graph was built for %d", len(outRows), in.NOut)
		}
		for _, r := range outRows {
			if r < 0 || int(r) >= in.Rows {
				return fmt.Errorf("output row %d outside the batch of %d rows", r, in.Rows)
			}
		}
		in.OutRows.SetI32(outRows)
	}
	return nil
}

// Decoder builds the text decoder's graph over frozen weights and an optional adapter.
type Decoder struct {
	HP      HParams
	W       *Weights
	Adapter Adapter // nil: no LoRA
	// Train builds a training graph: the adapter's dropout (when it has one) applies.
	Train bool
	// Transposed, when set, lets a training graph's backward pass run dx = Wᵀ·dy as a
	// matrix product (see Transposed); nil keeps ggml's autodiff products.
	Transposed *Transposed
	// NoImage, when set, are the frozen weights of CAL's image-absent pass (see
	// NoImageWeights); nil runs that pass on W.
	NoImage *NoImageWeights
}

// noImageLayer is block il's weights for the image-absent pass.
func (d *Decoder) noImageLayer(il int) *Layer {
	if d.NoImage != nil {
		return &d.NoImage.W.Layers[il]
	}
	return &d.W.Layers[il]
}

// linear is W·x (+ the adapter's low-rank update when it has one for W).
// With drop, the adapter's dropout applies to its input.
func (d *Decoder) linear(ctx *ggml.Context, w, x ggml.Tensor, drop bool) ggml.Tensor {
	y := ctx.MulMat(w, x)
	if d.Adapter != nil {
		if a, b, scale, ok := d.Adapter.LoRA(w.Name()); ok {
			xl := x
			if dr, ok := d.Adapter.(Dropper); ok && drop {
				xl = dr.Drop(ctx, x)
			}
			y = ctx.Add(y, ctx.Scale(ctx.MulMat(b, ctx.MulMat(a, xl)), scale))
		}
	}
	return y
}

func addBias(ctx *ggml.Context, x, b ggml.Tensor) ggml.Tensor {
	if b.Nil() {
		return x
	}
	return ctx.Add(x, b)
}

// Forward returns the logits [n_vocab, NOut] of the batch described by in. With noImg
// it is the image-absent pass: every position unchanged, image rows hidden from text.
func (d *Decoder) Forward(ctx *ggml.Context, in *Inputs, noImg bool) ggml.Tensor {
	mask := in.KQMask
	if noImg {
		if in.KQMaskNoImg.Nil() {
			panic("llava: image-absent pass requested from inputs built without its mask")
		}
		mask = in.KQMaskNoImg
	}
	// Dropout belongs to the training pass; the image-absent pass that only measures Δ
	// runs the adapter as it is.
	drop := d.Train && !noImg
	x := d.embed(ctx, in)
	for il := range d.W.Layers {
		l := &d.W.Layers[il]
		if noImg {
			l = d.noImageLayer(il)
		}
		q, k, v := d.qkv(ctx, l, x, in.Pos, drop)
		x = d.attnOut(ctx, l, x, d.attention(ctx, q, k, v, mask), drop)
		x = d.ffn(ctx, l, x, drop)
	}
	if !in.OutRows.Nil() {
		// Only the rows whose next token is scored need the (large) vocabulary product.
		x = ctx.GetRows(x, in.OutRows)
	}
	return d.linear(ctx, d.W.Output, d.outNorm(ctx, x), drop)
}

// embed is the input rows: token rows look up their embedding, image rows take theirs
// from the input, so one differentiable expression serves both: embed(ids)·tokMask + embd.
func (d *Decoder) embed(ctx *ggml.Context, in *Inputs) ggml.Tensor {
	return ctx.Add(ctx.Mul(ctx.GetRows(d.W.TokEmbd, in.TokIDs), in.TokMask), in.Embd)
}

// qkv is a block's queries, keys and values of rows x at positions pos, after RoPE:
// [hd, n_head, n] and [hd, n_kv, n].
func (d *Decoder) qkv(ctx *ggml.Context, l *Layer, x, pos ggml.Tensor, drop bool) (q, k, v ggml.Tensor) {
	hp := d.HP
	n := x.Ne()[1]
	cur := ctx.Mul(ctx.RMSNorm(x, hp.RMSEps), l.AttnNorm)
	q = ctx.Reshape(addBias(ctx, d.linear(ctx, l.Wq, cur, drop), l.Bq), hp.HeadDim, hp.NHead, n)
	k = ctx.Reshape(addBias(ctx, d.linear(ctx, l.Wk, cur, drop), l.Bk), hp.HeadDim, hp.NHeadKV, n)
	v = ctx.Reshape(addBias(ctx, d.linear(ctx, l.Wv, cur, drop), l.Bv), hp.HeadDim, hp.NHeadKV, n)
	q = ctx.Rope(q, pos, hp.RopeDims, hp.RopeMode, hp.NCtxTrain, hp.RopeBase, hp.RopeScale)
	k = ctx.Rope(k, pos, hp.RopeDims, hp.RopeMode, hp.NCtxTrain, hp.RopeBase, hp.RopeScale)
	return q, k, v
}

// attnOut adds the attention output's projection to the residual stream x.
func (d *Decoder) attnOut(ctx *ggml.Context, l *Layer, x, att ggml.Tensor, drop bool) ggml.Tensor {
	return ctx.Add(x, addBias(ctx, d.linear(ctx, l.Wo, att, drop), l.Bo))
}

// ffn adds the block's SwiGLU feed-forward to the residual stream x.
func (d *Decoder) ffn(ctx *ggml.Context, l *Layer, x ggml.Tensor, drop bool) ggml.Tensor {
	cur := ctx.Mul(ctx.RMSNorm(x, d.HP.RMSEps), l.FFNNorm)
	h := ctx.SwiGLU(d.linear(ctx, l.Gate, cur, drop), d.linear(ctx, l.Up, cur, drop))
	return ctx.Add(x, d.linear(ctx, l.Down, h, drop))
}

// outNorm is the final norm before the output layer.
func (d *Decoder) outNorm(ctx *ggml.Context, x ggml.Tensor) ggml.Tensor {
	return ctx.Mul(ctx.RMSNorm(x, d.HP.RMSEps), d.W.OutNorm)
}

// attention is softmax(k·q·scale + mask)·v over all heads, written with ops that have a
// backward pass (no flash attention). q: [hd, n_head, T], k, v: [hd, n_kv, T].
func (d *Decoder) attention(ctx *ggml.Context, q, k, v, mask ggml.Tensor) ggml.Tensor {
	hp := d.HP
	scale := float32(1 / math.Sqrt(float64(hp.HeadDim)))
	T := q.Ne()[2]
	// q is made contiguous: ggml's CPU matrix kernel (llamafile's sgemm) takes strided
	// rows of its first operand but needs a contiguous second one, and falls back to a
	// path several times slower without it.
	q = ctx.Cont(ctx.Permute(q, 0, 2, 1, 3)) // [hd, T, n_head]
	k = ctx.Permute(k, 0, 2, 1, 3)           // [hd, T, n_kv]
	// kq[kv, q, h]: mul_mat broadcasts each KV head over its group of query heads.
	kq := ctx.MulMat(k, q)
	kq = ctx.SoftMaxExt(kq, mask, scale)
	vt := ctx.Cont(ctx.Permute(v, 1, 2, 0, 3)) // [T, hd, n_kv]
	out := ctx.MulMat(vt, kq)                  // [hd, T, n_head]
	out = ctx.Permute(out, 0, 2, 1, 3)         // [hd, n_head, T]
	return ctx.Reshape(ctx.Cont(out), hp.NEmbd, T)
}
