package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calft/calft/gguf"
)

// MmprojInfo holds what calft needs to know about a vision projector.
type MmprojInfo struct {
	Path          string
	ProjectorType string // clip.projector_type, e.g. "mlp" (LLaVA-1.5), "idefics3" (SmolVLM)
	ImageSize     int
	PatchSize     int
	NEmbd         int // vision tower width
	NHead         int
	NFF           int
	NLayer        int
	ProjectionDim int // clip.vision.projection_dim as stored (not always the output width)
	Eps           float32
	ImageMean     [3]float32
	ImageStd      [3]float32
	ScaleFactor   int // clip.vision.projector.scale_factor, 0 if absent
	Deepstack     int // Qwen3-VL's deepstack layers (v.deepstack.N.fc1.weight), 0 for others

	// OutputWidth is the width of each image row handed to the text model,
	// read from the last projector tensor; 0 if unknown for this projector.
	OutputWidth int
	// TokensPerImage is the number of rows one image becomes; 0 if it
	// depends on the image or is unknown for this projector.
	TokensPerImage int
	// TokensPerSlice, for MiniCPM-V's resampler, is the rows of the overview and of each
	// slice (an image larger than ImageSize is sliced); MiniCPMVVersion its version.
	TokensPerSlice, MiniCPMVVersion int

	Tensors map[string]gguf.TensorInfo
	NParams uint64
}

// projectorTypes are the names mtmd's clip loader recognises.
var projectorTypes = []string{
	"mlp", "ldp", "ldpv2", "resampler", "adapter", "qwen2vl_merger", "qwen2.5vl_merger",
	"qwen3vl_merger", "gemma3", "idefics3", "pixtral", "ultravox", "internvl", "llama4",
	"qwen2a", "glma", "qwen2.5o", "voxtral", "lfm2", "kimivl", "lightonocr", "cogvlm",
	"janus_pro", "glm4v",
}

// Mmproj opens path and verifies it is a vision projector mtmd will
// load without aborting.
func Mmproj(path string) (*MmprojInfo, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return InspectMmproj(f)
}

// InspectMmproj is Mmproj for an already opened file.
func InspectMmproj(f *gguf.File) (*MmprojInfo, error) {
	if err := rejectOtherKinds(f, "mmproj"); err != nil {
		return nil, err
	}
	if err := checkGeneral(f); err != nil {
		return nil, err
	}
	m := &MmprojInfo{Path: f.Path}
	if err := readClipKeys(f, m); err != nil {
		return nil, err
	}
	if err := checkClipLayers(f, m); err != nil {
		return nil, err
	}
	if err := measureProjector(f, m); err != nil {
		return nil, err
	}
	m.Tensors = make(map[string]gguf.TensorInfo, len(f.Tensors))
	for _, t := range f.Tensors {
		m.Tensors[t.Name] = t
		m.NParams += t.Elements()
	}
	return m, nil
}

// readClipKeys reads the keys the clip loader reads. It uses gguf's typed
// getters directly, which abort on a wrong type, so every type is checked.
func readClipKeys(f *gguf.File, m *MmprojInfo) error {
	hasVision, err := optional(f, "clip.has_vision_encoder", false, f.Bool)
	if err != nil {
		return err
	}
	if _, err := optional(f, "clip.has_audio_encoder", false, f.Bool); err != nil {
		return err
	}
	if !hasVision {
		return gguf.Errorf(f.Path, gguf.ErrUnsupported, "clip.has_vision_encoder is not true: the projector has no vision encoder; pass the mmproj file of a vision-language model")
	}
	if m.ProjectorType, err = optional(f, "clip.projector_type", "", f.String); err != nil {
		return err
	}
	if m.ProjectorType == "" {
		if m.ProjectorType, err = optional(f, "clip.vision.projector_type", "mlp", f.String); err != nil {
			return err
		}
	}
	if !slices.Contains(projectorTypes, m.ProjectorType) {
		return gguf.Errorf(f.Path, gguf.ErrUnsupported, "projector type %q is unknown to mtmd; use an mmproj made by a current llama.cpp converter", m.ProjectorType)
	}
	for _, r := range []struct {
		key string
		dst *int
	}{
		{"clip.vision.embedding_length", &m.NEmbd},
		{"clip.vision.attention.head_count", &m.NHead},
		{"clip.vision.feed_forward_length", &m.NFF},
		{"clip.vision.block_count", &m.NLayer},
		{"clip.vision.projection_dim", &m.ProjectionDim},
		{"clip.vision.image_size", &m.ImageSize},
		{"clip.vision.patch_size", &m.PatchSize},
	} {
		v, err := f.Uint32(r.key)
		if err != nil {
			return err
		}
		*r.dst = int(v)
	}
	if m.Eps, err = f.Float32("clip.vision.attention.layer_norm_epsilon"); err != nil {
		return err
	}
	if err := readOptionalClipKeys(f, m); err != nil {
		return err
	}
	if err := readImageNorm(f, "clip.vision.image_mean", &m.ImageMean); err != nil {
		return err
	}
	if err := readImageNorm(f, "clip.vision.image_std", &m.ImageStd); err != nil {
		return err
	}
	switch {
	case m.PatchSize < 1 || m.ImageSize < m.PatchSize:
		return gguf.Errorf(f.Path, gguf.ErrCorrupt, "image size %d and patch size %d are implausible; %s", m.ImageSize, m.PatchSize, adviceReconvert)
	case m.NEmbd < 1 || m.NHead < 1 || m.NEmbd%m.NHead != 0 || m.NLayer < 1:
		return gguf.Errorf(f.Path, gguf.ErrCorrupt, "vision width %d, %d heads, %d layers are implausible; %s", m.NEmbd, m.NHead, m.NLayer, adviceReconvert)
	}
	return nil
}

func readOptionalClipKeys(f *gguf.File, m *MmprojInfo) error {
	for _, key := range []string{
		"clip.vision.image_crop_resolution", "clip.minicpmv_query_num",
		"clip.vision.projector.scale_factor", "clip.vision.preproc_image_size",
		"clip.vision.spatial_merge_size", "clip.vision.n_wa_pattern",
		"clip.vision.window_size",
	} {
		if _, err := optional(f, key, 0, f.Uint32); err != nil {
			return err
		}
	}
	if _, err := optional(f, "clip.minicpmv_version", 0, f.Int32); err != nil {
		return err
	}
	if _, err := optional(f, "clip.vision.mm_patch_merge_type", "", f.String); err != nil {
		return err
	}
	gelu, err := optional(f, "clip.use_gelu", false, f.Bool)
	if err != nil {
		return err
	}
	silu, err := optional(f, "clip.use_silu", false, f.Bool)
	if err != nil {
		return err
	}
	if gelu && silu {
		return gguf.Errorf(f.Path, gguf.ErrCorrupt, "clip.use_gelu and clip.use_silu are both true; %s", adviceReconvert)
	}
	sf, _ := optional(f, "clip.vision.projector.scale_factor", 0, f.Uint32)
	m.ScaleFactor = int(sf)
	// These integer arrays are read as raw int32 data of the stored length.
	for _, key := range []string{"clip.vision.image_grid_pinpoints", "clip.vision.feature_layer"} {
		v, ok := f.Get(key)
		if !ok {
			continue
		}
		if v.Type != gguf.TypeArray || (v.Elem != gguf.TypeInt32 && v.Elem != gguf.TypeUint32) {
			return f.WrongType(key, v, "array[i32]")
		}
		if key == "clip.vision.image_grid_pinpoints" && v.Len()%2 != 0 {
			return gguf.Errorf(f.Path, gguf.ErrCorrupt, "%s has an odd number of values (it holds width,height pairs); %s", key, adviceReconvert)
		}
	}
	return nil
}

// readImageNorm reads a per-channel normalisation array; mtmd reads three
// floats from it whatever its length or element type.
func readImageNorm(f *gguf.File, key string, dst *[3]float32) error {
	vals, err := f.Float32s(key)
	if err != nil {
		return err
	}
	if len(vals) < 3 {
		return gguf.Errorf(f.Path, gguf.ErrCorrupt, "%s has %d values, expected 3 (R, G, B); %s", key, len(vals), adviceReconvert)
	}
	copy(dst[:], vals)
	return nil
}

// checkClipLayers checks the per-layer tensors the clip loader requires for
// every projector type.
func checkClipLayers(f *gguf.File, m *MmprojInfo) error {
	for il := 0; il < m.NLayer; il++ {
		for _, s := range []string{"attn_out.weight", "ffn_up.weight", "ffn_down.weight"} {
			name := fmt.Sprintf("v.blk.%d.%s", il, s)
			if _, ok := f.Tensor(name); !ok {
				return gguf.Errorf(f.Path, gguf.ErrTensorMissing, "tensor %q is missing (the vision tower has %d layers); %s", name, m.NLayer, adviceReconvert)
			}
		}
	}
	return nil
}

// measureProjector finds the output width and rows per image, and for the
// "mlp" projector checks every tensor its graph uses, since a missing or
// misshapen one crashes the encoder.
func measureProjector(f *gguf.File, m *MmprojInfo) error {
	side := m.ImageSize / m.PatchSize
	patches := side * side
	switch m.ProjectorType {
	case "mlp":
		if err := checkLlavaTensors(f, m, patches); err != nil {
			return err
		}
		m.TokensPerImage = patches
		return nil
	case "idefics3", "internvl":
		// Both shuffle s×s patches into one row: mtmd asserts s > 0 (internvl) or s > 1
		// (idefics3) and divides by it, and a side s does not divide aborts on the row count.
		least := map[string]int{"idefics3": 2, "internvl": 1}[m.ProjectorType]
		if m.ScaleFactor < least || side%m.ScaleFactor != 0 {
			return gguf.Errorf(f.Path, gguf.ErrCorrupt, "%s projector needs clip.vision.projector.scale_factor of at least %d dividing %d patches per side, got %d; %s", m.ProjectorType, least, side, m.ScaleFactor, adviceReconvert)
		}
		m.TokensPerImage = patches / (m.ScaleFactor * m.ScaleFactor)
	case "resampler":
		return checkResampler(f, m)
	case "gemma3":
		merge := 4 // mtmd's default for gemma3
		if m.ScaleFactor > 0 {
			merge = m.ScaleFactor
		}
		m.TokensPerImage = patches / (merge * merge)
	}
	return measureWidth(f, m)
}

// widthSources name, per projector type, the tensor and dimension mtmd reads the width
// of the image rows from (clip_n_mmproj_embd in clip.cpp). mtmd requires that tensor
// when it loads the projector.
var widthSources = map[string]struct {
	tensor string
	dim    int
}{
	"ldp":              {"mm.model.mb_block.1.block.2.1.bias", 0},
	"ldpv2":            {"mm.model.peg.0.bias", 0},
	"resampler":        {"resampler.proj.weight", 0},               // MiniCPM-V
	"adapter":          {"adapter.linear.dense_4h_to_h.weight", 1}, // GLM-Edge
	"qwen2vl_merger":   {"mm.2.bias", 0},
	"qwen2.5vl_merger": {"mm.2.bias", 0},
	"qwen3vl_merger":   {"mm.2.bias", 0}, // times 1 + the deepstack layers
	"janus_pro":        {"mm.1.bias", 0},
	"gemma3":           {"mm.input_projection.weight", 0},
	"idefics3":         {"mm.model.fc.weight", 1}, // SmolVLM
	"pixtral":          {"mm.2.weight", 1},
	"lightonocr":       {"mm.2.weight", 1},
	"lfm2":             {"mm.2.weight", 1},
	"kimivl":           {"mm.2.weight", 1},
	"internvl":         {"mm.model.mlp.3.weight", 1},
	"llama4":           {"mm.model.fc.weight", 1},
	"cogvlm":           {"mm.down.weight", 1},
	"glm4v":            {"mm.down.weight", 1},
}

// measureWidth sets OutputWidth from the projector's width tensor, as mtmd does; a
// projector type without a vision width (audio ones) keeps 0.
func measureWidth(f *gguf.File, m *MmprojInfo) error {
	src, ok := widthSources[m.ProjectorType]
	if !ok {
		return nil
	}
	t, ok := f.Tensor(src.tensor)
	if !ok {
		return gguf.Errorf(f.Path, gguf.ErrTensorMissing, "tensor %q is missing: the %s projector needs it (its image rows are as wide as its dimension %d); %s", src.tensor, m.ProjectorType, src.dim, adviceReconvert)
	}
	width := int(t.Dim(src.dim))
	if m.ProjectorType == "qwen3vl_merger" {
		// Deepstack layers append their features to each row (n_embd·(1+K) in all).
		for il := 0; il < m.NLayer; il++ {
			if _, ok := f.Tensor(fmt.Sprintf("v.deepstack.%d.fc1.weight", il)); ok {
				m.Deepstack++
			}
		}
		width *= 1 + m.Deepstack
	}
	if width < 1 {
		return gguf.Errorf(f.Path, gguf.ErrTensorShape, "tensor %q has shape %v: no output width; %s", src.tensor, t.Shape, adviceReconvert)
	}
	if m.ProjectorType == "resampler" && width%128 != 0 {
		// MiniCPM-V's resampler splits the width into heads of 128 (ggml asserts).
		return gguf.Errorf(f.Path, gguf.ErrTensorShape, "the resampler's output width %d is not a multiple of 128, its head width; %s", width, adviceReconvert)
	}
	m.OutputWidth = width
	return nil
}

func tensorDim(f *gguf.File, name string, i int) int {
	t, ok := f.Tensor(name)
	if !ok {
		return 0
	}
	return int(t.Dim(i))
}

// checkLlavaTensors verifies the LLaVA "mlp" graph: patch convolution,
// optional class embedding, position embeddings, n_layer-1 transformer
// blocks, then mm.0 -> GELU -> mm.2 (or the mm.0..mm.4 variant with norms).
func checkLlavaTensors(f *gguf.File, m *MmprojInfo, patches int) error {
	e, p := dim(m.NEmbd), dim(m.PatchSize)
	_, hasCLS := f.Tensor("v.class_embd")
	nPos := dim(patches)
	if hasCLS {
		nPos++
	}
	specs := []tensorSpec{
		{"v.patch_embd.weight", []uint64{p, p, 3, e}, false},
		{"v.patch_embd.bias", []uint64{e}, true},
		{"v.class_embd", []uint64{e}, true},
		{"v.position_embd.weight", []uint64{e, nPos}, false},
		{"v.pre_ln.weight", []uint64{e}, true},
		{"v.pre_ln.bias", []uint64{e}, true},
		{"v.post_ln.weight", []uint64{e}, true},
		{"v.post_ln.bias", []uint64{e}, true},
	}
	for il := 0; il < m.NLayer; il++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", il, s) }
		// The graph runs layers 0..n-2; the last layer's attention weights
		// may be absent, but whatever is present must fit.
		used := il < m.NLayer-1
		specs = append(specs,
			tensorSpec{b("attn_q.weight"), []uint64{e, e}, !used},
			tensorSpec{b("attn_k.weight"), []uint64{e, e}, !used},
			tensorSpec{b("attn_v.weight"), []uint64{e, e}, !used},
			tensorSpec{b("attn_out.weight"), []uint64{e, e}, false},
			tensorSpec{b("attn_q.bias"), []uint64{e}, true},
			tensorSpec{b("attn_k.bias"), []uint64{e}, true},
			tensorSpec{b("attn_v.bias"), []uint64{e}, true},
			tensorSpec{b("attn_out.bias"), []uint64{e}, true},
			tensorSpec{b("ln1.weight"), []uint64{e}, true},
			tensorSpec{b("ln1.bias"), []uint64{e}, true},
			tensorSpec{b("ln2.weight"), []uint64{e}, true},
			tensorSpec{b("ln2.bias"), []uint64{e}, true},
		)
		if err := checkClipFFN(f, m, il); err != nil {
			return err
		}
	}
	if err := checkSpecsPresentAndShaped(f, specs); err != nil {
		return err
	}
	return checkLlavaProjection(f, m)
}

// checkClipFFN accepts both FFN layouts the loader handles: up [n_embd,
// n_ff] with down [n_ff, n_embd], or old files with the two names swapped.
func checkClipFFN(f *gguf.File, m *MmprojInfo, il int) error {
	up, _ := f.Tensor(fmt.Sprintf("v.blk.%d.ffn_up.weight", il))
	down, _ := f.Tensor(fmt.Sprintf("v.blk.%d.ffn_down.weight", il))
	e, ff := dim(m.NEmbd), dim(m.NFF)
	normal := sameShape(up, []uint64{e, ff}) && sameShape(down, []uint64{ff, e})
	swapped := sameShape(up, []uint64{ff, e}) && sameShape(down, []uint64{e, ff})
	if !normal && !swapped {
		return gguf.Errorf(f.Path, gguf.ErrTensorShape, "layer %d feed-forward weights have shapes up %v, down %v; expected [%d %d] and [%d %d]; %s", il, up.Shape, down.Shape, e, ff, ff, e, adviceReconvert)
	}
	for _, s := range []struct {
		name string
		n    uint64
	}{{"ffn_up.bias", ff}, {"ffn_down.bias", e}} {
		name := fmt.Sprintf("v.blk.%d.%s", il, s.name)
		if t, ok := f.Tensor(name); ok && t.Elements() != ff && t.Elements() != e {
			return gguf.Errorf(f.Path, gguf.ErrTensorShape, "tensor %q has shape %v; %s", name, t.Shape, adviceReconvert)
		}
	}
	return nil
}

func checkSpecsPresentAndShaped(f *gguf.File, specs []tensorSpec) error {
	for _, s := range specs {
		t, ok := f.Tensor(s.name)
		if !ok {
			if s.optional {
				continue
			}
			return gguf.Errorf(f.Path, gguf.ErrTensorMissing, "tensor %q is missing; %s", s.name, adviceReconvert)
		}
		if !sameShape(t, s.shape) {
			return gguf.Errorf(f.Path, gguf.ErrTensorShape, "tensor %q has shape %v, expected %v from the metadata; %s", s.name, t.Shape, s.shape, adviceReconvert)
		}
	}
	return nil
}

// checkLlavaProjection checks mm.0 (vision width -> hidden) and mm.2
// (hidden -> output width), or the mm.0/mm.1/mm.3/mm.4 variant with layer
// norms that the loader switches to when mm.3.weight exists.
func checkLlavaProjection(f *gguf.File, m *MmprojInfo) error {
	e := dim(m.NEmbd)
	w0, ok := f.Tensor("mm.0.weight")
	if !ok || w0.Dim(0) != e || len(w0.Shape) > 2 {
		return gguf.Errorf(f.Path, gguf.ErrTensorShape, "tensor \"mm.0.weight\" must exist with shape [%d hidden]; %s", e, adviceReconvert)
	}
	hidden := w0.Dim(1)
	specs := []tensorSpec{{"mm.0.bias", []uint64{hidden}, false}}
	if w3, ok := f.Tensor("mm.3.weight"); ok {
		out := w3.Dim(1)
		specs = append(specs,
			tensorSpec{"mm.1.weight", []uint64{hidden}, false}, tensorSpec{"mm.1.bias", []uint64{hidden}, false},
			tensorSpec{"mm.3.weight", []uint64{hidden, out}, false}, tensorSpec{"mm.3.bias", []uint64{out}, false},
			tensorSpec{"mm.4.weight", []uint64{out}, false}, tensorSpec{"mm.4.bias", []uint64{out}, false})
		m.OutputWidth = int(out)
	} else {
		w2, ok := f.Tensor("mm.2.weight")
		if !ok {
			return gguf.Errorf(f.Path, gguf.ErrTensorMissing, "tensor \"mm.2.weight\" is missing (mtmd crashes without it); %s", adviceReconvert)
		}
		out := w2.Dim(1)
		specs = append(specs,
			tensorSpec{"mm.2.weight", []uint64{hidden, out}, false}, tensorSpec{"mm.2.bias", []uint64{out}, false})
		m.OutputWidth = int(out)
	}
	return checkSpecsPresentAndShaped(f, specs)
}

// MmprojForModel verifies that the projector's image rows have the
// text model's embedding width.
func MmprojForModel(mm *MmprojInfo, model *TextModelInfo) error {
	if mm.OutputWidth == 0 {
		return gguf.Errorf(mm.Path, gguf.ErrUnsupported, "projector type %q has no vision output width mtmd knows (an audio projector?), so it cannot be checked against %s; pass the vision mmproj of the model", mm.ProjectorType, model.Path)
	}
	if mropeProjectors[mm.ProjectorType] && !model.MRoPE() {
		return gguf.Errorf(mm.Path, gguf.ErrMismatch, "the %s projector lays image rows on a grid of M-RoPE positions, but the text model %s (%s) takes one position per row; pass the mmproj made for this model (Qwen2-VL's text architecture is qwen2vl)", mm.ProjectorType, model.Path, model.Arch)
	}
	if err := projectorFitsFamily(mm, model); err != nil {
		return err
	}
	if mm.OutputWidth != model.NEmbdInp() {
		in := fmt.Sprintf("n_embd %d", model.NEmbd)
		if model.Deepstack > 0 {
			in = fmt.Sprintf("an input width of %d (n_embd %d × (1 + %d deepstack layers))", model.NEmbdInp(), model.NEmbd, model.Deepstack)
		}
		return gguf.Errorf(mm.Path, gguf.ErrMismatch, "the %s projector produces image rows of width %d, but the text model %s (%s) has %s; pass the mmproj file made for this model", mm.ProjectorType, mm.OutputWidth, model.Path, model.Arch, in)
	}
	return nil
}

// projectorPairing is what a projector's real files go with: the text architectures
// of the models shipped with it, and the tokens mtmd (or the family's prompt) marks its
// images with, which the text model's vocabulary must hold as single tokens.
type projectorPairing struct {
	family  string
	archs   []string
	markers []string
}

// projectorPairings are the projectors of the families calft knows. Widths catch most
// mismatched pairs of real files, but not all (and none of two tiny models of one
// width): a projector with a text model of another family would run, on a prompt
// whose image markers are split into pieces or on a decoder it was never trained for.
var projectorPairings = map[string]projectorPairing{
	"mlp":              {"LLaVA-1.5/NeXT", []string{"llama", "qwen2"}, nil},
	"idefics3":         {"SmolVLM", []string{"llama"}, []string{"<fake_token_around_image>", "<global-img>"}},
	"internvl":         {"InternVL", []string{"qwen2", "llama"}, []string{"<img>", "</img>"}},
	"pixtral":          {"Pixtral/Mistral-Small", []string{"llama", "mistral3"}, []string{"[IMG_BREAK]", "[IMG_END]"}},
	"gemma3":           {"Gemma 3", []string{"gemma3"}, nil},
	"qwen2vl_merger":   {"Qwen2-VL", []string{"qwen2vl"}, nil},
	"qwen2.5vl_merger": {"Qwen2.5-VL", []string{"qwen2vl"}, nil},
	"qwen3vl_merger":   {"Qwen3-VL", []string{"qwen3vl"}, nil},
	"resampler":        {"MiniCPM-V", []string{"qwen2", "llama"}, []string{"<image>", "</image>", "<slice>", "</slice>"}},
}

// markerTokens are every projector's marker tokens, which the vocabulary check records.
var markerTokens = func() map[string]bool {
	out := map[string]bool{}
	for _, f := range projectorPairings {
		for _, m := range f.markers {
			out[m] = true
		}
	}
	return out
}()

// projectorFitsFamily refuses a projector with a text model of another family: an
// architecture the projector's models never have, or a vocabulary without its markers.
func projectorFitsFamily(mm *MmprojInfo, model *TextModelInfo) error {
	pf, ok := projectorPairings[mm.ProjectorType]
	if !ok {
		return nil
	}
	if !slices.Contains(pf.archs, model.Arch) {
		return gguf.Errorf(mm.Path, gguf.ErrMismatch, "is the %s projector (%s), made for %s text models, but the text model %s is %s; pass the mmproj made for this model",
			pf.family, mm.ProjectorType, strings.Join(pf.archs, " or "), model.Path, model.Arch)
	}
	var missing []string
	for _, m := range pf.markers {
		if model.Vocab.Markers == nil || !model.Vocab.Markers[m] {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		return gguf.Errorf(mm.Path, gguf.ErrMismatch, "is the %s projector (%s), whose images are marked with %s, but the vocabulary of the text model %s lacks %s: it is not from the %s family; pass the mmproj made for this model",
			pf.family, mm.ProjectorType, strings.Join(pf.markers, " "), model.Path, strings.Join(missing, " "), pf.family)
	}
	// A text model whose vocabulary holds every marker of another family is that
	// family's (LLaVA's mlp projector, which has none, would otherwise pass with it).
	for typ, other := range projectorPairings {
		if len(other.markers) == 0 || other.family == pf.family || !slices.Contains(other.archs, model.Arch) {
			continue
		}
		all := true
		for _, m := range other.markers {
			all = all && model.Vocab.Markers[m]
		}
		if all {
			return gguf.Errorf(mm.Path, gguf.ErrMismatch, "is the %s projector (%s), but the text model %s is from the %s family (its vocabulary has %s, which mark %s's images); pass the mmproj made for this model",
				pf.family, mm.ProjectorType, model.Path, other.family, strings.Join(other.markers, " "), typ)
		}
	}
	return nil
}

// mropeProjectors give image rows M-RoPE positions (mtmd_decode_use_mrope).
var mropeProjectors = map[string]bool{"qwen2vl_merger": true, "qwen2.5vl_merger": true, "qwen3vl_merger": true, "glm4v": true}

// ModelAndMmproj checks a text model and, when mmprojPath is not empty, its vision
// projector and that the two fit together: everything to verify before either file
// reaches llama.cpp. The projector's description is nil without one.
func ModelAndMmproj(modelPath, mmprojPath string) (*TextModelInfo, *MmprojInfo, error) {
	model, err := TextModel(modelPath)
	if err != nil || mmprojPath == "" {
		return model, nil, err
	}
	mm, err := Mmproj(mmprojPath)
	if err != nil {
		return nil, nil, err
	}
	return model, mm, MmprojForModel(mm, model)
}
