package train

import (
	"fmt"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/llava"
)

// FastWeights are the copies of the frozen weights a training run keeps to go faster:
// transposed matrices for the backward pass (llava.Transposed) and quantized matrices
// for CAL's image-absent pass (llava.NoImageWeights); and, without transposed copies, the
// type of the tiles the backward pass dequantizes frozen matrices into.
type FastWeights struct {
	Transposed *llava.Transposed
	NoImage    *llava.NoImageWeights
	TileType   ggml.Type // 0: ggml's autodiff products
}

// NewFastWeights makes what the backward mode asks for — bf16 or f32 transposed
// copies, tiled (BF16 tiles) or tiled-f32, or autodiff (ggml's out_prod, which needs
// F32 or quantized weights) — and the image-absent pass's copies: "auto" makes Q8_0
// copies when the block matrices are F32.
func NewFastWeights(be *ggml.Backend, m *llava.Model, backward, noImage string, cal bool) (*FastWeights, error) {
	fw := &FastWeights{TileType: tileType(backward)}
	switch backward {
	case "bf16", "f32":
		var err error
		if fw.Transposed, err = llava.NewTransposed(be, &m.W, llava.BackwardTypes[backward]); err != nil {
			return nil, err
		}
	case "tiled", "tiled-f32", "autodiff":
	default:
		return nil, fmt.Errorf("backward weights %q: use auto, bf16, f32, tiled, tiled-f32 or autodiff", backward)
	}
	switch noImage {
	case "auto", "q8_0":
		if cal && wantNoImageCopies(m, noImage) {
			var err error
			if fw.NoImage, err = llava.NewNoImageWeights(be, &m.W); err != nil {
				fw.Close()
				return nil, err
			}
		}
	case "f32":
	default:
		fw.Close()
		return nil, fmt.Errorf("no-image weights %q: use auto, q8_0 or f32", noImage)
	}
	return fw, nil
}

// Apply makes the decoder use the copies.
func (fw *FastWeights) Apply(d *llava.Decoder) {
	d.Transposed, d.NoImage, d.TileType = fw.Transposed, fw.NoImage, fw.TileType
}

// String says what was made and its memory.
func (fw *FastWeights) String() string {
	s := "backward: ggml's out_prod (no transposed copies)"
	if fw.TileType != 0 {
		s = fmt.Sprintf("backward: frozen matrices dequantized a tile at a time (%s tiles, no copies)", fw.TileType)
	}
	if fw.Transposed != nil {
		s = fmt.Sprintf("backward: %s transposed copies of the frozen matrices (%d MB)", fw.Transposed.Type, fw.Transposed.Bytes()>>20)
	}
	if fw.NoImage != nil {
		s += fmt.Sprintf("; image-absent pass: q8_0 copies (%d MB)", fw.NoImage.Bytes()>>20)
	}
	return s
}

// Close frees the copies.
func (fw *FastWeights) Close() {
	fw.Transposed.Close()
	fw.NoImage.Close()
}
