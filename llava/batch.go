package llava

import (
	"fmt"
	"math"
	"slices"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/bindings/ggml"
)

// ImageRow marks a sequence row fed from an embedding instead of a token id.
const ImageRow int32 = -1

// Sequence is one sample as the decoder sees it: rows in order, each a token id or an
// image-embedding row, at the positions llama.cpp would give them.
type Sequence struct {
	Tokens []int32   // token id per row, or ImageRow
	Embd   []float32 // the image rows' embeddings, NEmbdInp floats each (with deepstack slices), in row order
	Pos    []int32   // position per row; nil means 0, 1, 2, …
	// PosHW, for models with M-RoPE (Qwen2-VL), are each row's height and width
	// positions, two per row (row i's at 2i and 2i+1); Pos is then the time
	// position. nil: both equal the row's position, as for text rows. See
	// GridPositions.
	PosHW []int32
	// NonCausal: each image row attends to every image row of its run (consecutive
	// image rows: one mtmd image chunk), later ones included, as llama.cpp decodes a
	// Gemma 3 image (mtmd_decode_use_non_causal); text rows stay causal.
	NonCausal bool
}

// Len is the number of rows.
func (s *Sequence) Len() int { return len(s.Tokens) }

// Position is row i's position: Pos[i], or i when Pos is nil.
func (s *Sequence) Position(i int) int32 {
	if s.Pos != nil {
		return s.Pos[i]
	}
	return int32(i)
}

// PositionHW is row i's height and width positions (M-RoPE): PosHW's, or its position.
func (s *Sequence) PositionHW(i int) (h, w int32) {
	if s.PosHW != nil {
		return s.PosHW[2*i], s.PosHW[2*i+1]
	}
	p := s.Position(i)
	return p, p
}

// NImageRows counts the rows fed from embeddings.
func (s *Sequence) NImageRows() int {
	n := 0
	for _, t := range s.Tokens {
		if t == ImageRow {
			n++
		}
	}
	return n
}

// Check reports rows the model cannot take: token ids outside the vocabulary, a wrong
// number of embedding floats, positions of the wrong count.
func (s *Sequence) Check(hp arch.HParams) error {
	for i, t := range s.Tokens {
		if t != ImageRow && (t < 0 || int(t) >= hp.NVocab) {
			return fmt.Errorf("row %d: token id %d outside the vocabulary of %d", i, t, hp.NVocab)
		}
	}
	if want := s.NImageRows() * hp.NEmbdInp(); len(s.Embd) != want {
		return fmt.Errorf("%d image rows need %d embedding floats, got %d (projector width ≠ the model's input width %d?)",
			s.NImageRows(), want, len(s.Embd), hp.NEmbdInp())
	}
	if s.Pos != nil && len(s.Pos) != len(s.Tokens) {
		return fmt.Errorf("%d positions for %d rows", len(s.Pos), len(s.Tokens))
	}
	if s.PosHW != nil && !hp.MRoPE() {
		return fmt.Errorf("has M-RoPE positions, but the %s model's RoPE takes one position per row", hp.Arch)
	}
	if s.PosHW != nil && len(s.PosHW) != 2*len(s.Tokens) {
		return fmt.Errorf("%d height/width positions for %d rows (want 2 per row)", len(s.PosHW), len(s.Tokens))
	}
	return nil
}

// Batch is several sequences packed row after row into one graph; a block-diagonal
// causal mask keeps them apart.
type Batch struct {
	Seqs []Sequence
}

// Rows is the total number of rows.
func (b *Batch) Rows() int {
	n := 0
	for i := range b.Seqs {
		n += b.Seqs[i].Len()
	}
	return n
}

// Offset returns the first packed row of sequence i.
func (b *Batch) Offset(i int) int {
	n := 0
	for j := 0; j < i; j++ {
		n += b.Seqs[j].Len()
	}
	return n
}

// HasImages reports whether any row is an image row.
func (b *Batch) HasImages() bool {
	for i := range b.Seqs {
		if b.Seqs[i].NImageRows() > 0 {
			return true
		}
	}
	return false
}

// hostInputs are the host-side values of a graph's inputs for one batch.
type hostInputs struct {
	tokIDs  []int32   // [T]; 0 at image rows
	tokMask []float32 // [T]; 1 at token rows, 0 at image rows
	embd    []float32 // [NEmbdInp×T]; image embeddings, 0 at token rows
	pos     []int32   // [T], or [4T] with M-RoPE: time, height, width, 0, section by section
	kqMask  []float32 // [T×T] row q, column k: 0 where q may attend k, −inf elsewhere
	// kqMaskSWA is kqMask restricted to keys fewer than hp.SWA positions back (as
	// llama.cpp masks p_q − p_k ≥ n_swa); nil when hp.SWA is 0.
	kqMaskSWA []float32
}

// layout fills the host inputs. With hideImages, a text row attends to no image row of
// its sequence (the image-absent pass); image rows keep their usual view (causal, or
// their whole run with NonCausal), which cannot reach the text after them.
func (b *Batch) layout(hp arch.HParams, hideImages bool) (*hostInputs, error) {
	T, w := b.Rows(), hp.NEmbdInp()
	in := &hostInputs{
		tokIDs:  make([]int32, T),
		tokMask: make([]float32, T),
		embd:    make([]float32, w*T),
		pos:     make([]int32, posPerRow(&hp)*T),
		kqMask:  make([]float32, T*T),
	}
	negInf := float32(math.Inf(-1))
	for i := range in.kqMask {
		in.kqMask[i] = negInf
	}
	if hp.SWA > 0 {
		in.kqMaskSWA = make([]float32, T*T)
		for i := range in.kqMaskSWA {
			in.kqMaskSWA[i] = negInf
		}
	}
	row := 0
	for si := range b.Seqs {
		s := &b.Seqs[si]
		if err := s.Check(hp); err != nil {
			return nil, fmt.Errorf("sequence %d: %w", si, err)
		}
		start := row
		img := 0
		runEnd := 0 // with NonCausal, the end of the image run holding row i
		for i, t := range s.Tokens {
			r := start + i
			in.pos[r] = s.Position(i)
			if hp.MRoPE() {
				in.pos[T+r], in.pos[2*T+r] = s.PositionHW(i)
			}
			if t == ImageRow {
				copy(in.embd[r*w:(r+1)*w], s.Embd[img*w:(img+1)*w])
				img++
			} else {
				in.tokIDs[r] = t
				in.tokMask[r] = 1
			}
			last := i
			if s.NonCausal && t == ImageRow {
				if runEnd <= i {
					for runEnd = i; runEnd < s.Len() && s.Tokens[runEnd] == ImageRow; runEnd++ {
					}
				}
				last = runEnd - 1
			}
			for j := 0; j <= last; j++ {
				if hideImages && t != ImageRow && s.Tokens[j] == ImageRow {
					continue
				}
				in.kqMask[r*T+start+j] = 0
				if in.kqMaskSWA != nil && s.Position(i)-s.Position(j) < int32(hp.SWA) {
					in.kqMaskSWA[r*T+start+j] = 0
				}
			}
		}
		row += s.Len()
	}
	return in, nil
}

// posPerRow is the number of positions RoPE takes per row: 4 with M-RoPE (the fourth
// is always 0), else 1.
func posPerRow(hp *arch.HParams) int {
	if hp.MRoPE() {
		return 4
	}
	return 1
}

// Grid is the layout of one image's rows on M-RoPE's grid: NX columns, NY rows, the
// rows in raster order (mtmd's nx and ny of an image chunk).
type Grid struct{ NX, NY int }

// GridPositions gives the positions of a sequence of rows (token ids or ImageRow) as
// llama.cpp's mtmd helper lays them out for M-RoPE: text rows advance one position
// each; the rows of image k (a run of grids[k].NX·NY image rows) all take time
// position p (the next free one), height p+row and width p+column, and the text after
// it continues at p + max(NX, NY). It returns Pos (the time positions) and PosHW.
func GridPositions(tokens []int32, grids []Grid) (pos, hw []int32, err error) {
	pos = make([]int32, len(tokens))
	hw = make([]int32, 2*len(tokens))
	p, img := int32(0), 0
	for i := 0; i < len(tokens); {
		if tokens[i] != ImageRow {
			pos[i], hw[2*i], hw[2*i+1] = p, p, p
			p++
			i++
			continue
		}
		if img >= len(grids) {
			return nil, nil, fmt.Errorf("row %d: more images than the %d grids given", i, len(grids))
		}
		g := grids[img]
		n := g.NX * g.NY
		if g.NX <= 0 || g.NY <= 0 || i+n > len(tokens) || slices.ContainsFunc(tokens[i:i+n], func(t int32) bool { return t != ImageRow }) {
			return nil, nil, fmt.Errorf("row %d: image %d's %dx%d grid does not match its run of image rows", i, img, g.NX, g.NY)
		}
		for y := 0; y < g.NY; y++ {
			for x := 0; x < g.NX; x++ {
				r := i + y*g.NX + x
				pos[r], hw[2*r], hw[2*r+1] = p, p+int32(y), p+int32(x)
			}
		}
		p += int32(max(g.NX, g.NY))
		i += n
		img++
	}
	if img != len(grids) {
		return nil, nil, fmt.Errorf("%d grids for %d images", len(grids), img)
	}
	return pos, hw, nil
}

// setIfAllocated fills an optional input tensor that a graph may leave out.
func setIfAllocated(t ggml.Tensor, v []float32) {
	if !t.Nil() && t.HasBuffer() {
		t.SetF32(v)
	}
}
