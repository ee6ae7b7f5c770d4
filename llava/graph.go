package llava

import (
	"fmt"
	"strings"

	"github.com/calft/calft/arch"
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
	// Drop is dropout on the input x of weight (its masks are drawn per weight, so a
	// recomputed layer gets the masks its first computation had).
	Drop(ctx *ggml.Context, x ggml.Tensor, weight string) ggml.Tensor
}

// Inputs are the graph's input tensors for one batch shape; Set fills them.
type Inputs struct {
	Rows    int
	TokIDs  ggml.Tensor // I32 [T]
	TokMask ggml.Tensor // F32 [1, T]
	Embd    ggml.Tensor // F32 [n_embd_inp, T]: n_embd, or with deepstack slices (arch.HParams.NEmbdInp)
	Pos     ggml.Tensor // I32 [T], or [4T] with M-RoPE (section by section)
	KQMask  ggml.Tensor // F32 [T, T]
	// KQMaskNoImg is the mask of the image-absent pass (text rows do not see image rows);
	// the zero Tensor when the graph has no such pass.
	KQMaskNoImg ggml.Tensor
	OutRows     ggml.Tensor // I32 [n_out], zero Tensor when every row gets logits
	NOut        int
	// SWA is the model's sliding window (arch.HParams.SWA); when it is not 0, the
	// sliding layers read KQMaskSWA and KQMaskNoImgSWA: the masks above, restricted to
	// keys fewer than SWA positions back.
	SWA                       int
	KQMaskSWA, KQMaskNoImgSWA ggml.Tensor
}

// NewInputs declares the inputs for a batch of T rows, of which nOut get logits
// (nOut ≤ 0: all rows, in order). noImgPass adds the image-absent pass's mask.
func NewInputs(ctx *ggml.Context, hp arch.HParams, T, nOut int, noImgPass bool) *Inputs {
	in := &Inputs{Rows: T, NOut: T}
	in.TokIDs = ctx.NewTensor(ggml.TypeI32, T).SetName("inp_tokens").SetInput()
	in.TokMask = ctx.NewTensor(ggml.TypeF32, 1, T).SetName("inp_tok_mask").SetInput()
	in.Embd = ctx.NewTensor(ggml.TypeF32, hp.NEmbdInp(), T).SetName("inp_embd").SetInput()
	in.Pos = ctx.NewTensor(ggml.TypeI32, posPerRow(&hp)*T).SetName("inp_pos").SetInput()
	in.KQMask = ctx.NewTensor(ggml.TypeF32, T, T).SetName("inp_kq_mask").SetInput()
	if noImgPass {
		in.KQMaskNoImg = ctx.NewTensor(ggml.TypeF32, T, T).SetName("inp_kq_mask_noimg").SetInput()
	}
	if hp.SWA > 0 {
		in.SWA = hp.SWA
		in.KQMaskSWA = ctx.NewTensor(ggml.TypeF32, T, T).SetName("inp_kq_mask_swa").SetInput()
		if noImgPass {
			in.KQMaskNoImgSWA = ctx.NewTensor(ggml.TypeF32, T, T).SetName("inp_kq_mask_noimg_swa").SetInput()
		}
	}
	if nOut > 0 {
		in.OutRows = ctx.NewTensor(ggml.TypeI32, nOut).SetName("inp_out_rows").SetInput()
		in.NOut = nOut
	}
	return in
}

// Set copies a batch into the input tensors. outRows lists the packed rows whose logits
// the graph computes (it must have NOut entries; nil when every row gets logits).
func (in *Inputs) Set(hp arch.HParams, b *Batch, outRows []int32) error {
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
		setIfAllocated(in.KQMaskNoImgSWA, hn.kqMaskSWA)
	}
	setIfAllocated(in.KQMaskSWA, h.kqMaskSWA)
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
	HP      arch.HParams
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
	// TileType is the type of the tiles of frozen matrices without a transposed copy in
	// the backward pass's products (ggml.TiledTransposedProduct): F32 or BF16.
	TileType ggml.Type
	// CPU says the graphs run on ggml's CPU backend: calft's CPU kernels may replace
	// ggml's ops (the tiles are dequantized and transposed in one pass).
	CPU bool
	// ForwardBF16, on the CPU, runs the forward products of the frozen quantized or F16
	// matrices in BF16 (ggml.FrozenProducts.Forward) when training.
	ForwardBF16 bool
	// ExactGELU gives gemma3's feed-forward the values of the exact GELU(tanh) formula.
	// Otherwise, on the CPU, they are those of llama.cpp's geglu, which reads GELU from
	// an F16 table (see ggml.Context.TableGeGLU); the gradient is the exact formula's
	// either way. Finite differences need the smooth values.
	ExactGELU bool
	// Checkpoint, when set, is called with the full pass's input of each block il (and,
	// as il = NLayer, the last block's output) as the graph is built: a recomputing
	// trainer keeps them to rebuild one block at a time (see Layer).
	Checkpoint func(ctx *ggml.Context, il int, x ggml.Tensor)
	// Product, when set, is called with each product W·x of a frozen matrix w in block
	// il of the full pass (before the adapter's update is added), as the graph is built:
	// a recomputing trainer keeps some of them for its second forward pass.
	Product func(ctx *ggml.Context, il int, w, y ggml.Tensor)
}

// stream is one sequence of rows flowing through the blocks: the full pass, or the rows
// CAL's image-absent pass recomputes (see ForwardPair).
type stream struct {
	x, pos, mask ggml.Tensor
	w            *Weights // frozen weights of this pass
	drop         bool     // the adapter's dropout applies
	suffix       string   // added to node names: "" for the full pass
	// keysFrom, when set, is a stream of the same blocks whose keys and values this one
	// also attends to, in front of its own: the rows keyRows picks (all when Nil).
	keysFrom *stream
	keyRows  ggml.Tensor
	k, v     ggml.Tensor // the block's keys and values, for a stream reading them
	// maskSWA is the mask of sliding-window layers (arch.HParams.Sliding).
	maskSWA ggml.Tensor
	// deep is the rows' input [n_embd_inp, rows] when the model has deepstack slices
	// and the stream holds image rows (the full pass); Nil otherwise.
	deep ggml.Tensor
}

// blocks runs every stream through the decoder's blocks, one block at a time for all
// of them: the one layer loop of the plain forward pass and of the CAL pair.
func (d *Decoder) blocks(ctx *ggml.Context, streams ...*stream) {
	d.blockRange(ctx, 0, len(d.W.Layers), streams...)
}

// blockRange runs the streams through blocks [from, to), handing the full pass's input
// of each block, and its output of the last, to Checkpoint when it is set.
func (d *Decoder) blockRange(ctx *ggml.Context, from, to int, streams ...*stream) {
	for il := from; il < to; il++ {
		for _, s := range streams {
			if s.suffix == "" && d.Checkpoint != nil {
				d.Checkpoint(ctx, il, s.x)
			}
			d.block(ctx, il, s)
		}
	}
	for _, s := range streams {
		if s.suffix == "" && d.Checkpoint != nil {
			d.Checkpoint(ctx, to, s.x)
		}
	}
}

// block runs a stream's rows through block il.
func (d *Decoder) block(ctx *ggml.Context, il int, s *stream) {
	if d.HP.Arch == "gemma3" {
		d.gemma3Block(ctx, il, s)
		return
	}
	l := &s.w.Layers[il]
	q, k, v := d.qkv(ctx, il, s, l)
	k, v = d.joinKeys(ctx, s, k, v)
	att := d.attention(ctx, il, s, q, k, v)
	s.x = ctx.Add(s.x, d.bias(ctx, d.linear(ctx, il, s, l.Wo, att), l.Bo))
	s.x = d.name(ctx.Add(s.x, d.ffn(ctx, il, s, l)), il, "l_out", s)
	d.deepstack(ctx, il, s)
}

// joinKeys keeps a block's keys and values k, v for the streams that read them and
// returns the keys and values the stream's queries attend to: its own, after the other
// stream's when it reads one.
func (d *Decoder) joinKeys(ctx *ggml.Context, s *stream, k, v ggml.Tensor) (ggml.Tensor, ggml.Tensor) {
	s.k, s.v = k, v
	if from := s.keysFrom; from != nil {
		fk, fv := from.k, from.v
		if !s.keyRows.Nil() {
			fk, fv = keptRows(ctx, fk, s.keyRows), keptRows(ctx, fv, s.keyRows)
		}
		// No gradient flows through a stream that reads another's keys, so they may be
		// joined with concat, which has no backward.
		k, v = ctx.Concat(fk, k, 2), ctx.Concat(fv, v, 2)
	}
	return k, v
}

// Layer is block il of the full pass alone, from its input rows x [n_embd, T] with the
// batch's positions and mask in in: what a recomputing trainer differentiates one block
// at a time.
func (d *Decoder) Layer(ctx *ggml.Context, il int, x ggml.Tensor, in *Inputs) ggml.Tensor {
	s := d.fullStream(in, x)
	d.block(ctx, il, s)
	return s.x
}

// Final is the output norm of the scored rows of the last block's output x: Forward's
// result from the last checkpoint.
func (d *Decoder) Final(ctx *ggml.Context, x ggml.Tensor, in *Inputs) ggml.Tensor {
	if !in.OutRows.Nil() {
		x = ctx.GetRows(x, in.OutRows)
	}
	return d.name(d.outNorm(ctx, x), -1, "result_norm", &stream{})
}

// name sets a node's name after llama.cpp's ("blk.3.attn_q"), so profiles and errors
// read well; the image-absent stream's nodes carry its suffix.
func (d *Decoder) name(t ggml.Tensor, il int, what string, s *stream) ggml.Tensor {
	if il < 0 {
		return t.SetName(what + s.suffix)
	}
	return t.SetName(fmt.Sprintf("blk.%d.%s%s", il, what, s.suffix))
}

// linear is W·x (+ the adapter's low-rank update when it has one for W), named after W.
func (d *Decoder) linear(ctx *ggml.Context, il int, s *stream, w, x ggml.Tensor) ggml.Tensor {
	y := ctx.MulMat(w, x)
	if d.Product != nil && s.suffix == "" && il >= 0 {
		d.Product(ctx, il, w, y)
	}
	if d.Adapter != nil {
		if a, b, scale, ok := d.Adapter.LoRA(w.Name()); ok {
			xl := x
			if dr, ok := d.Adapter.(Dropper); ok && s.drop {
				xl = dr.Drop(ctx, x, w.Name())
			}
			y = ctx.Add(y, ctx.Scale(ctx.MulMat(b, ctx.MulMat(a, xl)), scale))
		}
	}
	return d.name(y, il, trimWeight(w.Name()), s)
}

// trimWeight turns "blk.3.attn_q.weight" into "attn_q" and "output.weight" into "output".
func trimWeight(name string) string {
	name = strings.TrimSuffix(name, ".weight")
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

func (d *Decoder) bias(ctx *ggml.Context, x, b ggml.Tensor) ggml.Tensor {
	if b.Nil() {
		return x
	}
	return ctx.Add(x, b)
}

// Forward returns the final hidden states, after the output norm, of the rows whose
// next token is scored [n_embd, NOut] (every row when in.OutRows is the zero Tensor).
// With noImg it is the image-absent pass: every position unchanged, image rows hidden
// from text. Head turns hidden states into logits.
func (d *Decoder) Forward(ctx *ggml.Context, in *Inputs, noImg bool) ggml.Tensor {
	s := d.fullStream(in, d.embed(ctx, in))
	if noImg {
		if in.KQMaskNoImg.Nil() {
			panic("llava: image-absent pass requested from inputs built without its mask")
		}
		// Dropout belongs to the training pass; the image-absent pass that only
		// measures Δ runs the adapter as it is.
		s.mask, s.w, s.drop, s.suffix = in.KQMaskNoImg, d.noImageWeights(), false, "-noimg"
		s.maskSWA = in.KQMaskNoImgSWA
	}
	d.blocks(ctx, s)
	x := s.x
	if !in.OutRows.Nil() {
		// Only the rows whose next token is scored need the (large) vocabulary product.
		x = ctx.GetRows(x, in.OutRows)
	}
	return d.name(d.outNorm(ctx, x), -1, "result_norm", s)
}

// noImageWeights are the frozen weights of CAL's image-absent pass.
func (d *Decoder) noImageWeights() *Weights {
	if d.NoImage != nil {
		return &d.NoImage.W
	}
	return d.W
}

// Head is the output layer: the vocabulary product of final hidden states, and the
// gradient of those states from their logits' (for the loss, which takes them a block of
// rows at a time). An adapter on the output layer itself is not supported.
type Head struct{ d *Decoder }

// Head returns the decoder's output layer.
func (d *Decoder) Head() Head { return Head{d} }

// Logits are W_out·h (+ the output bias) of hidden states h [n_embd, n]: [n_vocab, n].
func (h Head) Logits(ctx *ggml.Context, x ggml.Tensor) ggml.Tensor {
	d := h.d
	logits := ctx.MulMat(d.W.Output, x)
	return d.name(d.bias(ctx, logits, d.W.OutputB), -1, "result_output", &stream{})
}

// InputGrad is W_outᵀ·dz [n_embd, n] for logits' gradient dz [n_vocab, n], through the
// output layer's transposed copy when training keeps one, else tiled.
func (h Head) InputGrad(ctx *ggml.Context, dz ggml.Tensor) ggml.Tensor {
	return h.d.transposedProduct(ctx, h.d.W.Output, dz)
}

// transposedProduct is Wᵀ·dy for a frozen W: the matrix product with W's transposed
// copy when there is one, else the tiled product (a tile of W dequantized at a time).
func (d *Decoder) transposedProduct(ctx *ggml.Context, w, dy ggml.Tensor) ggml.Tensor {
	if d.Transposed != nil {
		if wt, ok := d.Transposed.Of[w]; ok {
			return ctx.MulMat(wt, dy)
		}
	}
	return ctx.TiledTransposedProduct(w, dy, d.TileType, d.CPU)
}

// TargetLogits are each row's logit of its target token [1, n]: the dot product of its
// hidden state h [n_embd, n] with the target's output row (+ its bias), without the
// vocabulary product.
func (d *Decoder) TargetLogits(ctx *ggml.Context, h, targets ggml.Tensor) ggml.Tensor {
	n := h.Ne()[1]
	z := ctx.Reshape(ctx.SumRows(ctx.Mul(h, ctx.GetRows(d.W.Output, targets))), 1, n)
	if !d.W.OutputB.Nil() {
		z = ctx.Add(z, ctx.Reshape(ctx.GetRows(ctx.Reshape(d.W.OutputB, 1, d.HP.NVocab), targets), 1, n))
	}
	return z
}

// embed is the input rows: token rows look up their embedding, image rows take theirs
// from the input, so one differentiable expression serves both: embed(ids)·tokMask + embd.
func (d *Decoder) embed(ctx *ggml.Context, in *Inputs) ggml.Tensor {
	tok := ctx.GetRows(d.W.TokEmbd, in.TokIDs)
	if d.HP.EmbdScale != 0 {
		tok = ctx.Scale(tok, d.HP.EmbdScale) // gemma3: token rows only
	}
	embd := in.Embd
	if d.HP.Deepstack > 0 { // the embedding is the first n_embd of each row's input
		embd = ctx.View2D(embd, d.HP.NEmbd, in.Rows, embd.Nb()[1], 0)
	}
	return ctx.Add(ctx.Mul(tok, in.TokMask), embd)
}

// deepstack adds, after block il, the slice il+1 of each row's input (Qwen3-VL's
// deepstack features; 0 at token rows), as llama.cpp's qwen3vl builder does for the rows
// of an image batch.
func (d *Decoder) deepstack(ctx *ggml.Context, il int, s *stream) {
	if s.deep.Nil() || il >= d.HP.Deepstack {
		return
	}
	n, nb := d.HP.NEmbd, s.deep.Nb()
	feat := ctx.View2D(s.deep, n, s.deep.Ne()[1], nb[1], (il+1)*n*nb[0])
	s.x = d.name(ctx.Add(s.x, feat), il, "deepstack_out", s)
}

// qkv is a block's queries, keys and values of the stream's rows, after RoPE:
// [hd, n_head, n] and [hd, n_kv, n].
func (d *Decoder) qkv(ctx *ggml.Context, il int, s *stream, l *Layer) (q, k, v ggml.Tensor) {
	hp := &d.HP
	n := s.x.Ne()[1]
	cur := d.name(ctx.Mul(ctx.RMSNorm(s.x, hp.RMSEps), l.AttnNorm), il, "attn_norm", s)
	q = ctx.Reshape(d.bias(ctx, d.linear(ctx, il, s, l.Wq, cur), l.Bq), hp.HeadDim, hp.NHead, n)
	k = ctx.Reshape(d.bias(ctx, d.linear(ctx, il, s, l.Wk, cur), l.Bk), hp.HeadDim, hp.NHeadKV, n)
	v = ctx.Reshape(d.bias(ctx, d.linear(ctx, il, s, l.Wv, cur), l.Bv), hp.HeadDim, hp.NHeadKV, n)
	if !l.QNorm.Nil() { // qwen3's per-head RMSNorm of queries and keys, before RoPE
		q = d.name(ctx.Mul(ctx.RMSNorm(q, hp.RMSEps), l.QNorm), il, "q_normed", s)
		k = d.name(ctx.Mul(ctx.RMSNorm(k, hp.RMSEps), l.KNorm), il, "k_normed", s)
	}
	q = d.name(d.rope(ctx, q, s.pos), il, "q_rope", s)
	k = d.name(d.rope(ctx, k, s.pos), il, "k_rope", s)
	return q, k, v
}

// rope rotates queries or keys [hd, n, T] by the rows' positions: ggml_rope_ext, or
// ggml_rope_multi with four positions per row for M-RoPE, as libllama's builders do.
func (d *Decoder) rope(ctx *ggml.Context, x, pos ggml.Tensor) ggml.Tensor {
	rp := d.ropeParams()
	if d.HP.MRoPE() {
		return ctx.RopeMulti(x, pos, d.W.RopeFreqs, d.HP.Rope.Sections, rp)
	}
	return ctx.RopeExt(x, pos, d.W.RopeFreqs, rp)
}

// ropeParams are the model's RoPE settings for ggml_rope_ext, as libllama passes them.
func (d *Decoder) ropeParams() ggml.RopeParams {
	r := d.HP.Rope
	mode := ggml.RopeNormal
	switch r.Type {
	case arch.RopeNeoX:
		mode = ggml.RopeNeox
	case arch.RopeMRoPE:
		mode = ggml.RopeMRoPE
	case arch.RopeIMRoPE:
		mode = ggml.RopeIMRoPE
	}
	return ggml.RopeParams{Dims: r.Dims, Mode: mode, NCtxOrig: r.NCtxOrig, FreqBase: r.Base, FreqScale: r.FreqScale,
		ExtFactor: r.ExtFactor, AttnFactor: r.AttnFactor, BetaFast: r.BetaFast, BetaSlow: r.BetaSlow}
}

// ffn is the block's SwiGLU feed-forward of the stream's rows (llama.cpp's build_ffn
// with parallel gate and up, each with its optional bias).
func (d *Decoder) ffn(ctx *ggml.Context, il int, s *stream, l *Layer) ggml.Tensor {
	cur := d.name(ctx.Mul(ctx.RMSNorm(s.x, d.HP.RMSEps), l.FFNNorm), il, "ffn_norm", s)
	up := d.bias(ctx, d.linear(ctx, il, s, l.Up, cur), l.UpB)
	gate := d.bias(ctx, d.linear(ctx, il, s, l.Gate, cur), l.GateB)
	h := d.name(ctx.SwiGLU(gate, up), il, "ffn_swiglu", s)
	return d.bias(ctx, d.linear(ctx, il, s, l.Down, h), l.DownB)
}

// outNorm is the final norm before the output layer.
func (d *Decoder) outNorm(ctx *ggml.Context, x ggml.Tensor) ggml.Tensor {
	return ctx.Mul(ctx.RMSNorm(x, d.HP.RMSEps), d.W.OutNorm)
}

// attention is softmax(k·q·scale + mask)·v over all heads, written with ops that have a
// backward pass (no flash attention). q: [hd, n_head, T], k, v: [hd, n_kv, Tk].
func (d *Decoder) attention(ctx *ggml.Context, il int, s *stream, q, k, v ggml.Tensor) ggml.Tensor {
	hp := &d.HP
	T := q.Ne()[2]
	// q is made contiguous: ggml's CPU matrix kernel (llamafile's sgemm) takes strided
	// rows of its first operand but needs a contiguous second one, and falls back to a
	// path several times slower without it.
	q = ctx.Cont(ctx.Permute(q, 0, 2, 1, 3)) // [hd, T, n_head]
	if hp.QScale != 0 {
		// After RoPE, as llama.cpp scales them (the same rounding), and here, where
		// the backward pass hands ggml_scale a contiguous gradient (it asserts one).
		q = ctx.Scale(q, hp.QScale)
	}
	k = ctx.Permute(k, 0, 2, 1, 3) // [hd, Tk, n_kv]
	// kq[kv, q, h]: mul_mat broadcasts each KV head over its group of query heads.
	kq := d.name(ctx.MulMat(k, q), il, "kq", s)
	kq = d.name(ctx.SoftMaxExt(kq, s.mask, hp.AttnScale()), il, "kq_soft_max", s)
	vt := ctx.Cont(ctx.Permute(v, 1, 2, 0, 3))      // [Tk, hd, n_kv]
	out := d.name(ctx.MulMat(vt, kq), il, "kqv", s) // [hd, T, n_head]
	out = ctx.Permute(out, 0, 2, 1, 3)              // [hd, n_head, T]
	return d.name(ctx.Reshape(ctx.Cont(out), hp.QDim(), T), il, "kqv_out", s)
}
