package check_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/calft/calft/arch"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/gguf/check"
)

// projectorCase turns the tiny "mlp" mmproj into another projector type: its keys and
// the tensor mtmd reads the output width from (only shapes matter; these files are never
// handed to C).
type projectorCase struct {
	typ     string
	scale   uint32              // clip.vision.projector.scale_factor; 0 writes none
	tensors map[string][]uint64 // added tensors
	width   int                 // the output width mtmd would compute
	tokens  int                 // rows per image, 0 if it depends on the image
}

var projectorCases = []projectorCase{
	{"internvl", 2, map[string][]uint64{"mm.model.mlp.3.weight": {64, 64}}, 64, 4},
	// resampler (MiniCPM-V): TestResamplerProjector, on the tiny minicpmv mmproj.
	{"idefics3", 2, map[string][]uint64{"mm.model.fc.weight": {128, 64}}, 64, 4},
	{"pixtral", 0, map[string][]uint64{"mm.2.weight": {64, 64}}, 64, 0},
	{"qwen2vl_merger", 0, map[string][]uint64{"mm.2.bias": {64}}, 64, 0},
	{"qwen2.5vl_merger", 0, map[string][]uint64{"mm.2.bias": {64}}, 64, 0},
	// Two deepstack layers: the rows carry the main features and two more sets.
	{"qwen3vl_merger", 0, map[string][]uint64{"mm.2.bias": {64}, "v.deepstack.0.fc1.weight": {128, 128}, "v.deepstack.1.fc1.weight": {128, 128}}, 192, 0},
	{"gemma3", 2, map[string][]uint64{"mm.input_projection.weight": {64, 32}}, 64, 4},
	{"ldpv2", 0, map[string][]uint64{"mm.model.peg.0.bias": {64}}, 64, 0},
}

// projectorTexts are the architecture and vocabulary markers of each projector's text
// models (what check's family pairing requires); "" keeps the tiny llama.
var projectorTexts = map[string]struct {
	arch    string
	markers []string
}{
	"internvl":         {"qwen2", []string{"<img>", "</img>"}},
	"idefics3":         {"llama", []string{"<fake_token_around_image>", "<global-img>"}},
	"pixtral":          {"llama", []string{"[IMG_BREAK]", "[IMG_END]"}},
	"qwen2vl_merger":   {"qwen2vl", nil},
	"qwen2.5vl_merger": {"qwen2vl", nil},
	"qwen3vl_merger":   {"qwen3vl", nil},
	"gemma3":           {"gemma3", nil},
}

func (c projectorCase) write(t *testing.T, mmproj string, skip string) string {
	return rewrite(t, mmproj, func(w *gguf.Writer) {
		w.Set("clip.projector_type", gguf.StringValue(c.typ))
		if c.scale > 0 {
			w.Set("clip.vision.projector.scale_factor", gguf.Uint32Value(c.scale))
		}
		for name, shape := range c.tensors {
			if name == skip {
				continue
			}
			n := uint64(1)
			for _, d := range shape {
				n *= d
			}
			if err := w.AddTensorF32(name, gguf.F32, shape, make([]float32, n)); err != nil {
				t.Fatal(err)
			}
		}
	}, func(name string) bool { return !strings.HasPrefix(name, "mm.") }) // the "mlp" projector's
}

// Each projector type's output width is read where mtmd reads it; an mmproj is
// accepted with a text model of that width and refused, naming both widths, otherwise.
func TestProjectorWidths(t *testing.T) {
	base, mmproj := tinyModel(t)
	model, err := check.TextModel(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range projectorCases {
		t.Run(c.typ, func(t *testing.T) {
			mm, err := check.Mmproj(c.write(t, mmproj, ""))
			if err != nil {
				t.Fatal(err)
			}
			if mm.OutputWidth != c.width || mm.TokensPerImage != c.tokens {
				t.Fatalf("%d rows of width %d, want %d of %d", mm.TokensPerImage, mm.OutputWidth, c.tokens, c.width)
			}
			fits, other := *model, *model
			fits.NEmbd = c.width
			other.NEmbd = c.width + 128
			if strings.Contains(c.typ, "vl_merger") { // M-RoPE projectors need an M-RoPE text model
				fits.Rope.Type, other.Rope.Type = arch.RopeMRoPE, arch.RopeMRoPE
			}
			// The text model of the projector's family: its architecture, its image
			// markers in the vocabulary, Qwen3-VL's deepstack input.
			pair := projectorTexts[c.typ]
			if pair.arch != "" {
				fits.Arch, other.Arch = pair.arch, pair.arch
			}
			markers := map[string]bool{}
			for _, m := range pair.markers {
				markers[m] = true
			}
			fits.Vocab.Markers, other.Vocab.Markers = markers, markers
			if c.typ == "qwen3vl_merger" {
				fits.NEmbd, fits.Deepstack, other.Deepstack = c.width/3, 2, 2
			}
			if err := check.MmprojForModel(mm, &fits); err != nil {
				t.Errorf("with a text model of width %d: %v", c.width, err)
			}
			err = check.MmprojForModel(mm, &other)
			wantErr(t, err, gguf.ErrMismatch, c.typ, fmt.Sprintf("width %d", c.width), fmt.Sprintf("n_embd %d", other.NEmbd), base)
			for name := range c.tensors {
				if name[:2] == "v." {
					continue // deepstack layers are optional
				}
				_, err := check.Mmproj(c.write(t, mmproj, name))
				wantErr(t, err, gguf.ErrTensorMissing, name, c.typ)
			}
		})
	}
}

func TestProjectorShapeRules(t *testing.T) {
	_, mmproj := tinyModel(t)
	for _, c := range []struct {
		name string
		pc   projectorCase
		frag string
	}{
		// mtmd asserts a scale factor and divides by it.
		{"internvl no scale", projectorCase{"internvl", 0, map[string][]uint64{"mm.model.mlp.3.weight": {64, 64}}, 0, 0}, "scale_factor"},
		{"internvl scale 3", projectorCase{"internvl", 3, map[string][]uint64{"mm.model.mlp.3.weight": {64, 64}}, 0, 0}, "scale_factor"},
		{"idefics3 scale 1", projectorCase{"idefics3", 1, map[string][]uint64{"mm.model.fc.weight": {32, 64}}, 0, 0}, "at least 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := check.Mmproj(c.pc.write(t, mmproj, ""))
			if err == nil {
				t.Fatal("accepted")
			}
			wantErr(t, err, err.(*gguf.Error).Kind, c.frag)
		})
	}
}
