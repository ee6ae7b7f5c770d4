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
}

// TextShape are the sizes of a text model.
type TextShape struct {
	NEmbd, NLayer, NHead, NHeadKV, NFF int
}

// Architectures Options.Arch accepts.
const (
	ArchLlama = "llama"
	ArchQwen2 = "qwen2"
)

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
	case ArchQwen2:
		if o.RopeFreqs {
			return "", fmt.Errorf("rope_freqs.weight is a llama tensor; qwen2 has none")
		}
		return ArchQwen2, nil
	}
	return "", fmt.Errorf("architecture %q is not one tiny generates (%s, %s)", o.Arch, ArchLlama, ArchQwen2)
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
