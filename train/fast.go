package train

import (
	"fmt"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/llava"
)

// FastWeights are the copies of the frozen weights a training run keeps to go faster:
// transposed matrices for the backward pass (llava.Transposed) and quantized matrices
// for CAL's image-absent pass (llava.NoImageWeights).
type FastWeights struct {
	Transposed *llava.Transposed
	NoImage    *llava.NoImageWeights
}

// NewFastWeights makes the copies the options ask for. "auto" makes them when the
// model's block matrices are F32 in memory (F32 files, and F16/BF16 ones widened for
// training): for a quantized base, BF16 copies would cost several times the base.
func NewFastWeights(be *ggml.Backend, m *llava.Model, backward, noImage string, cal bool) (*FastWeights, error) {
	f32 := len(m.W.Layers) > 0 && m.W.Layers[0].Wq.Type() == ggml.TypeF32
	fw := &FastWeights{}
	typ, want := ggml.TypeBF16, f32
	switch backward {
	case "auto":
	case "bf16", "f32":
		typ, want = llava.BackwardTypes[backward], true
	case "autodiff":
		want = false
	default:
		return nil, fmt.Errorf("backward weights %q: use auto, bf16, f32 or autodiff", backward)
	}
	if want {
		var err error
		if fw.Transposed, err = llava.NewTransposed(be, &m.W, typ); err != nil {
			return nil, err
		}
	}
	switch noImage {
	case "auto", "q8_0":
		if cal && (f32 || noImage == "q8_0") {
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
	d.Transposed, d.NoImage = fw.Transposed, fw.NoImage
}

// String says what was made and its memory.
func (fw *FastWeights) String() string {
	s := "backward: ggml's out_prod (no transposed copies)"
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
