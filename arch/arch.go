// Package arch describes the text decoders calft trains: for each architecture, the
// tensors its GGUF holds (names, shapes, which are optional, which may carry a LoRA
// adapter) and the hyper-parameters libllama reads for it, read here exactly once.
//
// Everything else reads these descriptions: the llama.cpp-compatibility checks
// (gguf/check), the loader and the decoder graph (llava), the generators of tiny and
// random models, the frozen weights' copies and the LoRA target list. A key or tensor
// the decoder does not implement is refused here, by name, so a file can never train
// on a graph that is not llama.cpp's.
package arch

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calft/calft/gguf"
)

// Arch is one text architecture as calft's decoder implements it, after the builder of
// the same name in llama.cpp's src/models/.
type Arch struct {
	Name string
	// Rope is how RoPE pairs a head's dimensions.
	Rope RopeType
	// Global are the tensors outside the blocks; Layer those of every block, named
	// without their "blk.N." prefix.
	Global, Layer []Tensor
	// Check, when set, refuses combinations of hyper-parameters and tensors that
	// llama.cpp's loader or builder for this architecture cannot run.
	Check func(f *gguf.File, hp *HParams) error
	// HParams, when set, reads the architecture's own keys after the generic ones.
	HParams func(r *keyReader, hp *HParams) error
}

// Tensor is one weight an architecture's GGUF holds.
type Tensor struct {
	Name string
	// Shape is the tensor's dimensions in ggml order (ne0 first).
	Shape func(hp *HParams) []int
	// Optional tensors may be absent; the decoder then leaves their op out, as
	// llama.cpp's builder does.
	Optional bool
	// Target is the LoRA target kind of a block matrix that may carry an adapter
	// ("attn_q", …); "" for every other tensor.
	Target string
	// Fill says how generators (tiny models, benchmark models) initialise it.
	Fill Fill
	// F32 tensors must be stored as F32 (norms, biases, rope factors), as real files
	// store them; ggml's element-wise ops read them as F32.
	F32 bool
}

// Fill is how a generator initialises a tensor.
type Fill int

// The fills: a linear map (std 1/√fan_in), one that writes into the residual stream
// (scaled down), the token embedding, a norm's weights (around 1), a bias, and RoPE
// frequency factors (≥ 1).
const (
	FillLinear Fill = iota
	FillResidual
	FillEmbedding
	FillNorm
	FillBias
	FillRopeFactors
)

// RopeType is how RoPE pairs a head's dimensions.
type RopeType int

// The RoPE types: adjacent pairs (2i, 2i+1), as llama; the two halves of the rotated
// dimensions, as GPT-NeoX and qwen2; or Qwen2-VL's multimodal RoPE (M-RoPE): NeoX pairs
// whose frequencies are split into sections (Rope.Sections) rotated by different
// positions of a row (time, height, width), four positions per row.
const (
	RopeNormal RopeType = iota
	RopeNeoX
	RopeMRoPE
	// RopeIMRoPE is Qwen3-VL's interleaved M-RoPE (GGML_ROPE_TYPE_IMROPE): the same four
	// positions per row, but the pairs cycle through time, height and width (pair i takes
	// position i mod 3 while its section has pairs left) instead of taking them in blocks.
	RopeIMRoPE
)

func (r RopeType) String() string {
	return [...]string{"normal", "neox", "mrope", "imrope"}[r]
}

var registry = map[string]*Arch{}

func register(a *Arch) {
	if _, dup := registry[a.Name]; dup {
		panic("arch: " + a.Name + " registered twice")
	}
	registry[a.Name] = a
}

// Lookup returns the description of an architecture.
func Lookup(name string) (*Arch, error) {
	a, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported by calft's decoder (supported: %s)", name, strings.Join(Names(), ", "))
	}
	return a, nil
}

// Names lists the supported architectures, sorted.
func Names() []string {
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// LayerName is the GGUF name of block il's tensor: "blk.3.attn_q.weight".
func LayerName(il int, name string) string { return fmt.Sprintf("blk.%d.%s", il, name) }

// Spec is one tensor of a model: a description entry with its full name and shape.
type Spec struct {
	Tensor
	Name  string // full GGUF name
	Layer int    // block index, -1 for global tensors
	Shape []int
}

// Specs lists every tensor a model of these hyper-parameters may hold, globals first,
// then block by block, in the description's order.
func (a *Arch) Specs(hp *HParams) []Spec {
	var out []Spec
	for _, t := range a.Global {
		out = append(out, Spec{Tensor: t, Name: t.Name, Layer: -1, Shape: t.Shape(hp)})
	}
	for il := 0; il < hp.NLayer; il++ {
		for _, t := range a.Layer {
			out = append(out, Spec{Tensor: t, Name: LayerName(il, t.Name), Layer: il, Shape: t.Shape(hp)})
		}
	}
	return out
}

// Targets lists the LoRA target kinds of the architecture, in description order.
func (a *Arch) Targets() []string {
	var out []string
	for _, t := range a.Layer {
		if t.Target != "" {
			out = append(out, t.Target)
		}
	}
	return out
}

// TargetOf returns the target kind of a block tensor's full name ("blk.3.attn_q.weight"
// → "attn_q"), or "" when it may not carry an adapter.
func (a *Arch) TargetOf(name string) string {
	var il int
	var rest string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &il, &rest); n != 2 {
		return ""
	}
	for _, t := range a.Layer {
		if t.Name == rest {
			return t.Target
		}
	}
	return ""
}
