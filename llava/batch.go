package llava

import (
	"fmt"
	"math"

	"github.com/calft/calft/arch"
)

// ImageRow marks a sequence row fed from an embedding instead of a token id.
const ImageRow int32 = -1

// Sequence is one sample as the decoder sees it: rows in order, each a token id or an
// image-embedding row, at the positions llama.cpp would give them.
type Sequence struct {
	Tokens []int32   // token id per row, or ImageRow
	Embd   []float32 // the image rows' embeddings, NEmbd floats each, in row order
	Pos    []int32   // position per row; nil means 0, 1, 2, …
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
	if want := s.NImageRows() * hp.NEmbd; len(s.Embd) != want {
		return fmt.Errorf("%d image rows need %d embedding floats, got %d (projector width ≠ n_embd %d?)",
			s.NImageRows(), want, len(s.Embd), hp.NEmbd)
	}
	if s.Pos != nil && len(s.Pos) != len(s.Tokens) {
		return fmt.Errorf("%d positions for %d rows", len(s.Pos), len(s.Tokens))
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
	embd    []float32 // [NEmbd×T]; image embeddings, 0 at token rows
	pos     []int32   // [T]
	kqMask  []float32 // [T×T] row q, column k: 0 where q may attend k, −inf elsewhere
}

// layout fills the host inputs. With hideImages, a text row attends to no image row of
// its sequence (the image-absent pass); image rows keep their usual causal view, which
// cannot reach the text.
func (b *Batch) layout(hp arch.HParams, hideImages bool) (*hostInputs, error) {
	T := b.Rows()
	in := &hostInputs{
		tokIDs:  make([]int32, T),
		tokMask: make([]float32, T),
		embd:    make([]float32, hp.NEmbd*T),
		pos:     make([]int32, T),
		kqMask:  make([]float32, T*T),
	}
	negInf := float32(math.Inf(-1))
	for i := range in.kqMask {
		in.kqMask[i] = negInf
	}
	row := 0
	for si := range b.Seqs {
		s := &b.Seqs[si]
		if err := s.Check(hp); err != nil {
			return nil, fmt.Errorf("sequence %d: %w", si, err)
		}
		start := row
		img := 0
		for i, t := range s.Tokens {
			r := start + i
			in.pos[r] = s.Position(i)
			if t == ImageRow {
				copy(in.embd[r*hp.NEmbd:(r+1)*hp.NEmbd], s.Embd[img*hp.NEmbd:(img+1)*hp.NEmbd])
				img++
			} else {
				in.tokIDs[r] = t
				in.tokMask[r] = 1
			}
			for j := 0; j <= i; j++ {
				if hideImages && t != ImageRow && s.Tokens[j] == ImageRow {
					continue
				}
				in.kqMask[r*T+start+j] = 0
			}
		}
		row += s.Len()
	}
	return in, nil
}
