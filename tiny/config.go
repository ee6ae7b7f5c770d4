package tiny

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
	ProjHidden     = NEmbd
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
}

// Streams of the seeded generator: each output draws from its own, so
// changing one (say, the dataset size) leaves the others' bytes unchanged.
const (
	streamText uint64 = iota + 1
	streamVision
	streamData
)
