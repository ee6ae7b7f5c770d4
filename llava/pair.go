package llava

import (
	"fmt"
	"math"
	"slices"

	"github.com/calft/calft/bindings/ggml"
)

// The image-absent pass that CAL needs differs from the full pass only in the text rows
// that come after an image: the text before the first image and the image rows
// themselves never see an image row that follows them, so hiding the image cannot
// change them. ForwardPair computes both passes in one graph and, for the second,
// recomputes only those rows ("hidden rows"); their queries attend to the unchanged
// rows' keys and values taken from the full pass, and to each other.

// PairInputs are the extra inputs of the shared image-absent pass.
type PairInputs struct {
	NH    int         // hidden rows in the graph (padded)
	HRows ggml.Tensor // I32 [NH] packed row of each hidden row (0 for padding)
	HPos  ggml.Tensor // I32 [NH] its position ([4NH] with M-RoPE, section by section)
	// NK is the number of full-pass rows whose keys and values the hidden rows read
	// (padded): the kept rows. 0 reads all T rows, most of which the mask then hides.
	NK    int
	KRows ggml.Tensor // I32 [NK] packed row of each kept row (0 for padding); zero Tensor when NK is 0
	// KQMaskH is F32 [NK+NH, NH] (T+NH when NK is 0): hidden queries over the full
	// pass's keys, then over the hidden keys.
	KQMaskH ggml.Tensor
	OutRows ggml.Tensor // I32 [NOut] row of each scored row in concat(full rows, hidden rows)
	// SWA and KQMaskHSWA: KQMaskH of the sliding-window layers, when the model has a
	// window (see Inputs.SWA).
	SWA        int
	KQMaskHSWA ggml.Tensor
}

// HiddenRows lists the packed rows an image-absent pass must recompute: text rows after
// the first image row of their sequence.
func (b *Batch) HiddenRows() []int32 {
	var out []int32
	row := 0
	for si := range b.Seqs {
		seen := false
		for _, t := range b.Seqs[si].Tokens {
			if t == ImageRow {
				seen = true
			} else if seen {
				out = append(out, int32(row))
			}
			row++
		}
	}
	return out
}

// KeptRows lists the packed rows whose keys and values an image-absent pass reads from
// the full pass: the text rows before the first image of sequences that have one. (The
// hidden rows recompute their own; image rows are hidden; other sequences are masked.)
func (b *Batch) KeptRows() []int32 {
	var out []int32
	row := 0
	for si := range b.Seqs {
		toks := b.Seqs[si].Tokens
		first := slices.Index(toks, ImageRow)
		for i := 0; i < first; i++ {
			out = append(out, int32(row+i))
		}
		row += len(toks)
	}
	return out
}

// NewPairInputs declares the inputs for nh hidden rows of a graph built by NewInputs,
// reading nk kept rows of the full pass (0: all of them).
func NewPairInputs(ctx *ggml.Context, in *Inputs, nh, nk int) *PairInputs {
	keys := in.Rows
	pi := &PairInputs{
		NH:      nh,
		NK:      nk,
		HRows:   ctx.NewTensor(ggml.TypeI32, nh).SetName("inp_hidden_rows").SetInput(),
		HPos:    ctx.NewTensor(ggml.TypeI32, nh*in.Pos.NElements()/in.Rows).SetName("inp_hidden_pos").SetInput(),
		OutRows: ctx.NewTensor(ggml.TypeI32, in.NOut).SetName("inp_out_rows_pair").SetInput(),
	}
	if nk > 0 {
		keys = nk
		pi.KRows = ctx.NewTensor(ggml.TypeI32, nk).SetName("inp_kept_rows").SetInput()
	}
	pi.KQMaskH = ctx.NewTensor(ggml.TypeF32, keys+nh, nh).SetName("inp_kq_mask_hidden").SetInput()
	if in.SWA > 0 {
		pi.SWA = in.SWA
		pi.KQMaskHSWA = ctx.NewTensor(ggml.TypeF32, keys+nh, nh).SetName("inp_kq_mask_hidden_swa").SetInput()
	}
	return pi
}

// Set fills the pair inputs for a batch; outRows are the scored rows (as for Inputs.Set).
func (pi *PairInputs) Set(b *Batch, outRows []int32) error {
	T := b.Rows()
	hidden := b.HiddenRows()
	if len(hidden) > pi.NH {
		return fmt.Errorf("batch has %d hidden rows, graph was built for %d", len(hidden), pi.NH)
	}
	seqOf := make([]int, T)
	isImage := make([]bool, T)
	pos := make([][3]int32, T)
	row := 0
	for si := range b.Seqs {
		s := &b.Seqs[si]
		for i, t := range s.Tokens {
			seqOf[row], isImage[row] = si, t == ImageRow
			pos[row][0] = s.Position(i)
			pos[row][1], pos[row][2] = s.PositionHW(i)
			row++
		}
	}
	slot := map[int32]int{}
	hr := make([]int32, pi.NH)
	hp := make([]int32, pi.HPos.NElements()) // M-RoPE: time, height, width, 0 sections
	for j, r := range hidden {
		hr[j] = r
		for c := 0; c < min(len(hp)/pi.NH, 3); c++ {
			hp[c*pi.NH+j] = pos[r][c]
		}
		slot[r] = j
	}
	// keySlot is the key column of each full-pass row the hidden rows may read.
	keys := T
	keySlot := map[int]int{}
	if pi.NK > 0 {
		kept := b.KeptRows()
		if len(kept) > pi.NK {
			return fmt.Errorf("batch has %d kept rows, graph was built for %d", len(kept), pi.NK)
		}
		kr := make([]int32, pi.NK)
		for i, r := range kept {
			kr[i] = r
			keySlot[int(r)] = i
		}
		pi.KRows.SetI32(kr)
		keys = pi.NK
	} else {
		for r := range T {
			keySlot[r] = r
		}
	}
	negInf := float32(math.Inf(-1))
	mask := make([]float32, (keys+pi.NH)*pi.NH)
	maskSWA := make([]float32, len(mask))
	for i := range mask {
		mask[i], maskSWA[i] = negInf, negInf
	}
	// allow lets hidden query j read column col, the key of packed row k.
	allow := func(j, col, k int) {
		mask[j*(keys+pi.NH)+col] = 0
		if pos[hidden[j]][0]-pos[k][0] < int32(pi.SWA) {
			maskSWA[j*(keys+pi.NH)+col] = 0
		}
	}
	for j := 0; j < pi.NH; j++ {
		if j >= len(hidden) {
			// padding attends to itself, to stay finite
			mask[j*(keys+pi.NH)+keys+j], maskSWA[j*(keys+pi.NH)+keys+j] = 0, 0
			continue
		}
		r := int(hidden[j])
		for k := r - 1; k >= 0 && seqOf[k] == seqOf[r]; k-- {
			if _, h := slot[int32(k)]; !h && !isImage[k] {
				allow(j, keySlot[k], k) // unchanged text before the image
			}
		}
		for j2, r2 := range hidden {
			if seqOf[int(r2)] == seqOf[r] && r2 <= int32(r) {
				allow(j, keys+j2, int(r2))
			}
		}
	}
	out := make([]int32, len(outRows))
	for i, r := range outRows {
		if j, ok := slot[r]; ok {
			out[i] = int32(T + j)
		} else {
			out[i] = r
		}
	}
	full := make([]int32, pi.OutRows.NElements())
	copy(full, out)
	pi.HRows.SetI32(hr)
	pi.HPos.SetI32(hp)
	pi.KQMaskH.SetF32(mask)
	setIfAllocated(pi.KQMaskHSWA, maskSWA)
	pi.OutRows.SetI32(full)
	return nil
}

// ForwardPair returns the full pass's final hidden states of the scored rows [n_embd,
// NOut] and each scored row's target logit in both passes [1, NOut] (targets: I32
// [NOut]): CAL needs no other logit of the image-absent pass, and the vocabulary
// product is a large part of a forward pass. The second pass recomputes only the hidden
// rows, in the same layer loop as the first.
//
// zImg is computed the same way as zNoImg, so that Δ compares like with like: with a
// quantized output layer the vocabulary product rounds its activations, a dot product
// with the dequantized row does not.
func (d *Decoder) ForwardPair(ctx *ggml.Context, in *Inputs, pi *PairInputs, targets ggml.Tensor) (h, zImg, zNoImg ggml.Tensor) {
	x := d.embed(ctx, in)
	full := d.fullStream(in, x)
	// Hidden rows are token rows: their input is the same in both passes.
	hidden := d.hiddenStream(pi, full, ctx.GetRows(x, pi.HRows))
	d.blocks(ctx, full, hidden)
	return d.pairOutputs(ctx, in, pi, full, hidden, targets)
}

func (d *Decoder) fullStream(in *Inputs, x ggml.Tensor) *stream {
	s := &stream{x: x, pos: in.Pos, mask: in.KQMask, maskSWA: in.KQMaskSWA, w: d.W, drop: d.Train}
	if d.HP.Deepstack > 0 {
		s.deep = in.Embd
	}
	return s
}

func (d *Decoder) hiddenStream(pi *PairInputs, full *stream, x ggml.Tensor) *stream {
	return &stream{x: x, pos: pi.HPos, mask: pi.KQMaskH, maskSWA: pi.KQMaskHSWA, w: d.noImageWeights(),
		suffix: "-noimg", keysFrom: full, keyRows: pi.KRows}
}

// pairOutputs are ForwardPair's results from the streams after the last block.
func (d *Decoder) pairOutputs(ctx *ggml.Context, in *Inputs, pi *PairInputs, full, hidden *stream, targets ggml.Tensor) (h, zImg, zNoImg ggml.Tensor) {
	h = d.name(d.outNorm(ctx, ctx.GetRows(full.x, in.OutRows)), -1, "result_norm", full)
	hNo := d.outNorm(ctx, ctx.GetRows(ctx.Concat(full.x, hidden.x, 1), pi.OutRows))
	return h, d.TargetLogits(ctx, h, targets), d.TargetLogits(ctx, hNo, targets)
}

// Lower is the bottom of a pass split at block upto: the embedding and blocks [0, upto)
// of the full pass and, with pi, of the rows CAL's image-absent pass recomputes (see
// ForwardPair). It returns both streams' rows at block upto, where Upper starts.
func (d *Decoder) Lower(ctx *ggml.Context, in *Inputs, pi *PairInputs, upto int) (x, xHidden ggml.Tensor) {
	e := d.embed(ctx, in)
	full := d.fullStream(in, e)
	if pi == nil {
		d.blockRange(ctx, 0, upto, full)
		return full.x, ggml.Tensor{}
	}
	hidden := d.hiddenStream(pi, full, ctx.GetRows(e, pi.HRows))
	d.blockRange(ctx, 0, upto, full, hidden)
	return full.x, hidden.x
}

// Upper is the top of a pass split at block from, given the rows Lower returned: with pi
// what ForwardPair returns, else Forward's final hidden states (zImg and zNoImg zero).
func (d *Decoder) Upper(ctx *ggml.Context, in *Inputs, pi *PairInputs, from int, x, xHidden, targets ggml.Tensor) (h, zImg, zNoImg ggml.Tensor) {
	full := d.fullStream(in, x)
	if pi == nil {
		d.blockRange(ctx, from, len(d.W.Layers), full)
		return d.Final(ctx, full.x, in), ggml.Tensor{}, ggml.Tensor{}
	}
	hidden := d.hiddenStream(pi, full, xHidden)
	d.blockRange(ctx, from, len(d.W.Layers), full, hidden)
	return d.pairOutputs(ctx, in, pi, full, hidden, targets)
}

// keptRows gathers the rows (dimension 2) of keys or values [hd, n_kv, T].
func keptRows(ctx *ggml.Context, t, rows ggml.Tensor) ggml.Tensor {
	if !t.IsContiguous() {
		t = ctx.Cont(t)
	}
	ne := t.Ne()
	n := rows.Ne()[0]
	return ctx.Reshape(ctx.GetRows(ctx.Reshape(t, ne[0]*ne[1], ne[2]), rows), ne[0], ne[1], n)
}
