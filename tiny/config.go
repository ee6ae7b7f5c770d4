package tiny

import (
	"fmt"

	"github.com/calft/calft/gguf"
)

// Sizes of the generated text model.
const (
	NEmbd    = 64
	NLayer   = 2
	NHead    = 4
	NHeadKV  = 2 // grouped-query attention: two query heads share each KV head
	HeadDim  = NEmbd / NHead
	NFF      = 160 // differs from NEmbd so transposed weights cannot pass shape checks
	NCtx     = 512
	RopeDims = HeadDim
	RMSEps   = 1e-5
	RopeBase = 10000
)

// Sizes of the generated vision projector (CLIP ViT + LLaVA-1.5 "mlp").
const (
	ImageSize      = 32
	PatchSize      = 8
	TokensPerImage = (ImageSize / PatchSize) * (ImageSize / PatchSize)
	VisionWidth    = 32
	VisionHeads    = 2
	VisionFF       = 48 // differs from VisionWidth: mtmd swaps up/down when they match
	VisionLayers   = 2  // the "mlp" projector reads the output of layer n-2
	VisionEps      = 1e-5
)

// File names inside the output directory.
const (
	BaseFile   = "base.gguf"
	MmprojFile = "mmproj.gguf"
	DataFile   = "data.json"
	ImageDir   = "images"
)

// Options control generation.
type Options struct {
	Seed int64
	// TiedOutput omits output.weight, so llama.cpp reuses token_embd as the
	// output layer (as SmolLM and other small models do).
	TiedOutput bool
	// Samples is the dataset size; 0 means 24. The last two are text-only.
	Samples int
	// Arch is the text model's architecture: "llama" (the default when empty) or
	// "qwen2", which adds random q/k/v biases and uses neox RoPE in llama.cpp. Both
	// keep the same SentencePiece vocabulary, and every tensor the two share holds
	// the same values for the same seed.
	Arch string
	// RopeFreqs adds Llama 3.x's rope_freqs.weight (per-frequency divisors; llama
	// architecture only).
	RopeFreqs bool
	// Biases adds the optional biases the architecture allows beyond qwen2's q/k/v
	// ones: llama's q/k/v, attention-output and feed-forward biases, qwen2's output bias.
	Biases bool
	// RopeScaling sets rope.scaling.type ("linear" or "yarn") with a factor of 4 over an
	// original context of NCtx/4; "" writes no scaling keys.
	RopeScaling string
	// Text, when set, gives the text model other sizes than the tiny default (memory
	// measurements on larger shapes); its vocabulary stays the tiny one.
	Text *TextShape
	// WeightType stores the text model's 2-D matrices (embedding, projections,
	// output) as this type: gguf.F32 (the default), F16, BF16, Q8_0 or Q4_0. Norms
	// and biases stay F32, as in real GGUFs. The vision tower is always F32.
	WeightType gguf.DType
	// Projector is the mmproj's projector: "" picks the architecture's own (mlp;
	// qwen2vl_merger for qwen2vl), ProjQwen25VL writes Qwen2.5-VL's for qwen2vl.
	Projector string
	// HeadDim, when set, is the width of one attention head (attention.key_length and
	// value_length), other than n_embd/n_head, as in Pixtral-12B and Mistral-Small 3.1
	// (head width 128 with n_embd 5120 and 32 heads); llama architecture only.
	HeadDim int
	// Family is the real format the files imitate beyond the text architecture (tokens,
	// chat template, projector): "" (calft's tiny LLaVA-style default), FamilyLLaVA15,
	// FamilySmolVLM or FamilyInternVL (which needs Arch qwen2).
	Family string
}

// TextShape are the sizes of a text model.
type TextShape struct {
	NEmbd, NLayer, NHead, NHeadKV, NFF int
}

// Architectures Options.Arch accepts.
const (
	ArchLlama   = "llama"
	ArchQwen2   = "qwen2"
	ArchQwen2VL = "qwen2vl" // Qwen2-VL's text model (M-RoPE), with a qwen2vl_merger projector
	ArchQwen3VL = "qwen3vl" // Qwen3-VL's (QK-norm, interleaved M-RoPE, deepstack), with a qwen3vl_merger projector
)

// Projectors Options.Projector accepts.
const (
	ProjMLP      = "mlp"              // LLaVA-1.5 (llama, qwen2)
	ProjQwen2VL  = "qwen2vl_merger"   // Qwen2-VL (qwen2vl)
	ProjQwen25VL = "qwen2.5vl_merger" // Qwen2.5-VL (qwen2vl)
	ProjQwen3VL  = "qwen3vl_merger"   // Qwen3-VL (qwen3vl)
)

// Qwen3VLDeepstack is the tiny Qwen3-VL's n_deepstack_layers: the output of vision block
// 0 becomes a deepstack slice, added after text block 0 (the real 2B-8B models take
// three, from vision blocks 5, 11 and 17 of 24, into text blocks 0-2 of 28 or more).
// It must stay below the text model's block count: llama.cpp's qwen3vl builder keeps
// only the output rows after the last block and then adds the slice of every row,
// which asserts when the last block takes a slice.
const Qwen3VLDeepstack = 1

// Sizes of the Qwen2-VL-style vision towers: patches of 4 pixels merged 2×2, so a
// 32×32 image is 4×4 merged rows (mtmd wants 8 to 4096 of them).
const (
	QwenPatchSize = 4
	QwenMerge     = 2
	QwenWindowPat = 2 // Qwen2.5-VL: every second layer attends to the whole image
)

// projector is the vision projector to write, validated against the architecture.
func (o Options) projector(archName string) (string, error) {
	p := o.Projector
	if p == "" {
		p = ProjMLP
		switch archName {
		case ArchQwen2VL:
			p = ProjQwen2VL
		case ArchQwen3VL:
			p = ProjQwen3VL
		}
	}
	qwen := p == ProjQwen2VL || p == ProjQwen25VL
	switch {
	case p != ProjMLP && !qwen && p != ProjQwen3VL:
		return "", fmt.Errorf("projector %q is not one tiny writes (%s, %s, %s, %s)", p, ProjMLP, ProjQwen2VL, ProjQwen25VL, ProjQwen3VL)
	case qwen != (archName == ArchQwen2VL):
		return "", fmt.Errorf("projector %q does not go with the %s text model (qwen2vl takes %s or %s)", p, archName, ProjQwen2VL, ProjQwen25VL)
	case (p == ProjQwen3VL) != (archName == ArchQwen3VL):
		return "", fmt.Errorf("projector %q does not go with the %s text model (qwen3vl takes %s)", p, archName, ProjQwen3VL)
	}
	return p, nil
}

// arch is the architecture to write, validated.
func (o Options) arch() (string, error) {
	switch o.RopeScaling {
	case "", "linear", "yarn":
	default:
		return "", fmt.Errorf("rope scaling %q is not one tiny writes (linear, yarn)", o.RopeScaling)
	}
	switch o.Arch {
	case "", ArchLlama:
		return ArchLlama, nil
	case ArchQwen3VL:
		if o.RopeFreqs || o.Biases || o.RopeScaling != "" {
			return "", fmt.Errorf("qwen3vl has no rope_freqs.weight, no biases and no RoPE scaling in tiny")
		}
		return ArchQwen3VL, nil
	case ArchQwen2, ArchQwen2VL:
		if o.HeadDim != 0 {
			return "", fmt.Errorf("%s's queries must be n_embd wide: no other head width", o.Arch)
		}
		if o.RopeFreqs {
			return "", fmt.Errorf("rope_freqs.weight is a llama tensor; %s has none", o.Arch)
		}
		return o.Arch, nil
	case ArchGemma3:
		if o.RopeFreqs || o.Biases || o.RopeScaling != "" {
			return "", fmt.Errorf("gemma3 has no rope_freqs.weight, no biases and its own RoPE scaling")
		}
		return ArchGemma3, nil
	}
	return "", fmt.Errorf("architecture %q is not one tiny generates (%s, %s, %s, %s, %s)", o.Arch, ArchLlama, ArchQwen2, ArchQwen2VL, ArchQwen3VL, ArchGemma3)
}

// fileTypes maps the weight types tiny writes to llama.cpp's general.file_type
// (llama_ftype: ALL_F32, MOSTLY_F16, MOSTLY_Q4_0, MOSTLY_Q8_0, MOSTLY_BF16).
var fileTypes = map[gguf.DType]uint32{gguf.F32: 0, gguf.F16: 1, gguf.Q4_0: 2, gguf.Q8_0: 7, gguf.BF16: 32}

// fileType is general.file_type for the weight type, validated.
func (o Options) fileType() (uint32, error) {
	ft, ok := fileTypes[o.WeightType]
	if !ok {
		return 0, fmt.Errorf("weight type %s is not one tiny writes (F32, F16, BF16, Q8_0, Q4_0)", o.WeightType)
	}
	return ft, nil
}

// Streams of the seeded generator: each output draws from its own, so
// changing one (say, the dataset size) leaves the others' bytes unchanged.
const (
	streamText uint64 = iota + 1
	streamVision
	streamData
	streamBias  // qwen2's attention biases, so that the shared tensors match llama's
	streamExtra // the other optional tensors (Options.Biases)
)

// ropeScalingFactor is rope.scaling.factor with Options.RopeScaling.
const ropeScalingFactor = 4
