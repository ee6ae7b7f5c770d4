package gguf

import (
	"fmt"
	"math"
	"slices"
)

// TextModelInfo holds the hyper-parameters of a text model, as llama.cpp
// will interpret them.
type TextModelInfo struct {
	Path string
	Arch string // general.architecture; Mistral models use "llama"
	Name string // general.name, "" if absent

	NEmbd, NLayer, NHead, NHeadKV, NFF int
	HeadDimK, HeadDimV                 int // per-head key/value width
	NVocab, NCtxTrain                  int
	RMSEps                             float32
	RopeBase                           float32
	RopeDims                           int
	TiedOutput                         bool // no output.weight: the output layer reuses token_embd

	Tensors map[string]TensorInfo
	NParams uint64
	Vocab   VocabInfo
}

// Maximum layer count llama.cpp supports (LLAMA_MAX_LAYERS).
const maxLayers = 512

// supportedArchs maps the architectures calft trains to their tensor
// layout; both follow llama.cpp's loader for that architecture.
var supportedArchs = map[string]func(h *TextModelInfo) []tensorSpec{
	"llama": llamaTensors,
	"qwen2": qwen2Tensors,
}

// tensorSpec is one tensor the loader creates: its name, expected ne, and
// whether the file may omit it.
type tensorSpec struct {
	name     string
	shape    []uint64
	optional bool
}

// dim converts a hyper-parameter to a tensor dimension.
func dim(n int) uint64 { return uint64(n) }

func llamaTensors(h *TextModelInfo) []tensorSpec {
	e, v, ff := dim(h.NEmbd), dim(h.NVocab), dim(h.NFF)
	q, kv, vv := dim(h.HeadDimK*h.NHead), dim(h.HeadDimK*h.NHeadKV), dim(h.HeadDimV*h.NHeadKV)
	specs := []tensorSpec{
		{"token_embd.weight", []uint64{e, v}, false},
		{"output_norm.weight", []uint64{e}, false},
		{"output.weight", []uint64{e, v}, true},
		{"rope_freqs.weight", []uint64{dim(h.RopeDims / 2)}, true},
		{"rope_factors_long.weight", []uint64{dim(h.RopeDims / 2)}, true},
		{"rope_factors_short.weight", []uint64{dim(h.RopeDims / 2)}, true},
	}
	for i := 0; i < h.NLayer; i++ {
		b := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		specs = append(specs,
			tensorSpec{b("attn_norm.weight"), []uint64{e}, false},
			tensorSpec{b("attn_q.weight"), []uint64{e, q}, false},
			tensorSpec{b("attn_k.weight"), []uint64{e, kv}, false},
			tensorSpec{b("attn_v.weight"), []uint64{e, vv}, false},
			tensorSpec{b("attn_output.weight"), []uint64{q, e}, false},
			tensorSpec{b("attn_q.bias"), []uint64{e}, true},
			tensorSpec{b("attn_k.bias"), []uint64{vv}, true},
			tensorSpec{b("attn_v.bias"), []uint64{vv}, true},
			tensorSpec{b("attn_output.bias"), []uint64{e}, true},
			tensorSpec{b("ffn_norm.weight"), []uint64{e}, false},
			tensorSpec{b("ffn_gate.weight"), []uint64{e, ff}, false},
			tensorSpec{b("ffn_down.weight"), []uint64{ff, e}, false},
			tensorSpec{b("ffn_up.weight"), []uint64{e, ff}, false},
			tensorSpec{b("ffn_gate.bias"), []uint64{ff}, true},
			tensorSpec{b("ffn_down.bias"), []uint64{e}, true},
			tensorSpec{b("ffn_up.bias"), []uint64{ff}, true},
		)
	}
	return specs
}

func qwen2Tensors(h *TextModelInfo) []tensorSpec {
	e, v, ff := dim(h.NEmbd), dim(h.NVocab), dim(h.NFF)
	gqa := dim(h.HeadDimV * h.NHeadKV)
	specs := []tensorSpec{
		{"token_embd.weight", []uint64{e, v}, false},
		{"output_norm.weight", []uint64{e}, false},
		{"output.weight", []uint64{e, v}, true},
		{"output.bias", []uint64{v}, true},
	}
	for i := 0; i < h.NLayer; i++ {
		b := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		specs = append(specs,
			tensorSpec{b("attn_norm.weight"), []uint64{e}, false},
			tensorSpec{b("attn_q.weight"), []uint64{e, e}, false},
			tensorSpec{b("attn_k.weight"), []uint64{e, gqa}, false},
			tensorSpec{b("attn_v.weight"), []uint64{e, gqa}, false},
			tensorSpec{b("attn_output.weight"), []uint64{e, e}, false},
			tensorSpec{b("attn_q.bias"), []uint64{e}, true},
			tensorSpec{b("attn_k.bias"), []uint64{gqa}, true},
			tensorSpec{b("attn_v.bias"), []uint64{gqa}, true},
			tensorSpec{b("ffn_norm.weight"), []uint64{e}, false},
			tensorSpec{b("ffn_gate.weight"), []uint64{e, ff}, false},
			tensorSpec{b("ffn_down.weight"), []uint64{ff, e}, false},
			tensorSpec{b("ffn_up.weight"), []uint64{e, ff}, false},
		)
	}
	return specs
}

// CheckTextModel opens path and verifies it is a text model calft can
// train and llama.cpp will load without aborting.
func CheckTextModel(path string) (*TextModelInfo, error) {
	f, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return InspectTextModel(f)
}

// InspectTextModel is CheckTextModel for an already opened file.
func InspectTextModel(f *File) (*TextModelInfo, error) {
	if err := rejectOtherKinds(f, "text model"); err != nil {
		return nil, err
	}
	if err := checkGeneral(f); err != nil {
		return nil, err
	}
	arch, err := f.String("general.architecture")
	if err != nil {
		return nil, err
	}
	layout, ok := supportedArchs[arch]
	if !ok {
		return nil, fileErr(f.Path, ErrUnsupported, "architecture %q is not supported (calft trains %s models); pick a model of a supported architecture", arch, supportedArchList())
	}
	h := &TextModelInfo{Path: f.Path, Arch: arch}
	if h.Name, err = optional(f, "general.name", "", f.String); err != nil {
		return nil, err
	}
	if err := readHyperParams(f, h); err != nil {
		return nil, err
	}
	vocab, _, err := inspectVocab(f)
	if err != nil {
		return nil, err
	}
	h.Vocab = *vocab
	h.NVocab = vocab.Size
	if err := checkTensors(f, layout(h)); err != nil {
		return nil, err
	}
	_, hasOutput := f.Tensor("output.weight")
	h.TiedOutput = !hasOutput
	h.Tensors = make(map[string]TensorInfo, len(f.Tensors))
	for _, t := range f.Tensors {
		h.Tensors[t.Name] = t
		h.NParams += t.Elements()
	}
	return h, nil
}

func supportedArchList() string {
	names := make([]string, 0, len(supportedArchs))
	for n := range supportedArchs {
		names = append(names, fmt.Sprintf("%q", n))
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}

// rejectOtherKinds gives a clear error when an adapter or an mmproj is
// passed where another kind of file is expected.
func rejectOtherKinds(f *File, want string) error {
	kind := fileKind(f)
	if kind == want {
		return nil
	}
	names := map[string]string{
		"adapter":    "a LoRA adapter",
		"mmproj":     "a vision projector (mmproj)",
		"text model": "a text model",
	}
	return fileErr(f.Path, ErrUnsupported, "expected %s, but this is %s; pass it with the matching option", names[want], names[kind])
}

// fileKind guesses what a GGUF file is from its metadata.
func fileKind(f *File) string {
	if t, _ := f.String("general.type"); t == "adapter" || f.Has("adapter.type") {
		return "adapter"
	}
	if a, _ := f.String("general.architecture"); a == "clip" || f.Has("clip.has_vision_encoder") || f.Has("clip.projector_type") {
		return "mmproj"
	}
	return "text model"
}

// checkGeneral validates keys every llama.cpp loader reads with a typed
// getter; the clip loader aborts on a mistyped general.name.
func checkGeneral(f *File) error {
	for _, key := range []string{"general.name", "general.description", "general.architecture", "general.type"} {
		if f.Has(key) {
			if _, err := f.String(key); err != nil {
				return err
			}
		}
	}
	if f.Has("general.file_type") {
		if _, err := f.Uint32("general.file_type"); err != nil {
			return err
		}
	}
	for _, kv := range f.kvs {
		if kv.Value.Type == TypeArray && kv.Value.Elem == TypeArray {
			return fileErr(f.Path, ErrUnsupported, "metadata key %q holds nested arrays, which llama.cpp cannot read; %s", kv.Key, adviceReconvert)
		}
	}
	return nil
}

// readHyperParams reads the keys llama.cpp's load_hparams reads for the
// llama/qwen2 architectures, with the same types and defaults.
func readHyperParams(f *File, h *TextModelInfo) error {
	k := func(s string) string { return h.Arch + "." + s }
	get := func(key string, dst *int) error {
		v, err := f.Uint32(key)
		*dst = int(v)
		return err
	}
	if err := get(k("context_length"), &h.NCtxTrain); err != nil {
		return err
	}
	if err := get(k("embedding_length"), &h.NEmbd); err != nil {
		return err
	}
	if err := get(k("block_count"), &h.NLayer); err != nil {
		return err
	}
	if h.NLayer < 1 || h.NLayer > maxLayers || h.NEmbd < 1 || h.NCtxTrain < 1 {
		return fileErr(f.Path, ErrCorrupt, "implausible sizes: %d layers (llama.cpp allows 1..%d), n_embd %d, context %d; %s", h.NLayer, maxLayers, h.NEmbd, h.NCtxTrain, adviceReconvert)
	}
	if err := checkExpertKeys(f, k); err != nil {
		return err
	}
	for _, key := range []string{k("vocab_size"), k("pooling_type")} {
		if _, err := optional(f, key, 0, f.Uint32); err != nil {
			return err
		}
	}
	var err error
	if h.NFF, err = uniformPerLayer(f, k("feed_forward_length"), h.NLayer); err != nil {
		return err
	}
	if h.NHead, err = uniformPerLayer(f, k("attention.head_count"), h.NLayer); err != nil {
		return err
	}
	h.NHeadKV = h.NHead
	if f.Has(k("attention.head_count_kv")) {
		if h.NHeadKV, err = uniformPerLayer(f, k("attention.head_count_kv"), h.NLayer); err != nil {
			return err
		}
	}
	if h.NFF < 1 || h.NHead < 1 || h.NHeadKV < 1 || h.NHead%h.NHeadKV != 0 {
		return fileErr(f.Path, ErrCorrupt, "implausible sizes: n_ff %d, %d heads, %d KV heads (heads must be a multiple of KV heads); %s", h.NFF, h.NHead, h.NHeadKV, adviceReconvert)
	}
	h.HeadDimK, h.HeadDimV = h.NEmbd/h.NHead, h.NEmbd/h.NHead
	if err := optionalInt(f, k("attention.key_length"), &h.HeadDimK); err != nil {
		return err
	}
	if err := optionalInt(f, k("attention.value_length"), &h.HeadDimV); err != nil {
		return err
	}
	h.RopeDims = h.HeadDimK
	if err := optionalInt(f, k("rope.dimension_count"), &h.RopeDims); err != nil {
		return err
	}
	if h.HeadDimK < 1 || h.HeadDimV < 1 {
		return fileErr(f.Path, ErrCorrupt, "head width is zero (n_embd %d, %d heads); %s", h.NEmbd, h.NHead, adviceReconvert)
	}
	if h.Arch == "llama" && h.RopeDims != h.HeadDimK {
		return fileErr(f.Path, ErrCorrupt, "rope.dimension_count is %d but the head width is %d (llama.cpp refuses this); %s", h.RopeDims, h.HeadDimK, adviceReconvert)
	}
	if h.RopeDims > h.HeadDimK || h.RopeDims%2 != 0 {
		return fileErr(f.Path, ErrCorrupt, "rope.dimension_count %d does not fit head width %d; %s", h.RopeDims, h.HeadDimK, adviceReconvert)
	}
	if h.RMSEps, err = f.Float32(k("attention.layer_norm_rms_epsilon")); err != nil {
		return err
	}
	if !(h.RMSEps > 0) || math.IsInf(float64(h.RMSEps), 0) {
		return fileErr(f.Path, ErrCorrupt, "attention.layer_norm_rms_epsilon is %v, not a small positive number; %s", h.RMSEps, adviceReconvert)
	}
	if h.RopeBase, err = optional(f, k("rope.freq_base"), float32(10000), f.Float32); err != nil {
		return err
	}
	return checkRopeScaling(f, h.Arch)
}

// checkExpertKeys rejects mixture-of-experts models, and expert settings
// without experts, on which llama.cpp's hyper-parameter asserts abort.
func checkExpertKeys(f *File, k func(string) string) error {
	var counts [4]uint32
	for i, key := range []string{"expert_count", "expert_used_count", "expert_group_count", "expert_group_used_count"} {
		var err error
		if counts[i], err = optional(f, k(key), 0, f.Uint32); err != nil {
			return err
		}
	}
	if counts[0] > 0 {
		return fileErr(f.Path, ErrUnsupported, "is a mixture-of-experts model (%d experts), which calft does not train; use a dense model", counts[0])
	}
	if counts[1] > 0 || counts[2] > 0 || counts[3] > 0 {
		return fileErr(f.Path, ErrCorrupt, "sets expert counts but has no experts (llama.cpp aborts on this); %s", adviceReconvert)
	}
	return nil
}

// checkRopeScaling validates the optional rope scaling keys; an unknown
// scaling type trips an assertion in llama.cpp.
func checkRopeScaling(f *File, arch string) error {
	k := func(s string) string { return arch + "." + s }
	st, err := optional(f, k("rope.scaling.type"), "linear", f.String)
	if err != nil {
		return err
	}
	if !slices.Contains([]string{"none", "linear", "yarn", "longrope"}, st) {
		return fileErr(f.Path, ErrCorrupt, "rope.scaling.type %q is unknown (llama.cpp aborts); %s", st, adviceReconvert)
	}
	for _, key := range []string{k("rope.scaling.factor"), k("rope.scale_linear"), k("rope.scaling.attn_factor")} {
		if _, err := optional(f, key, 0, f.Float32); err != nil {
			return err
		}
	}
	if _, err := optional(f, k("rope.scaling.original_context_length"), 0, f.Uint32); err != nil {
		return err
	}
	if _, err := optional(f, k("rope.scaling.finetuned"), false, f.Bool); err != nil {
		return err
	}
	if f.Has(k("classifier.output_labels")) {
		if _, err := f.Strings(k("classifier.output_labels")); err != nil {
			return err
		}
	}
	return nil
}

func optionalInt(f *File, key string, dst *int) error {
	if !f.Has(key) {
		return nil
	}
	v, err := f.Uint32(key)
	*dst = int(v)
	return err
}

// uniformPerLayer reads a per-layer count and requires every layer to have
// the same value, which calft's training graph assumes.
func uniformPerLayer(f *File, key string, nLayer int) (int, error) {
	vals, err := f.Uint32OrArray(key, nLayer)
	if err != nil {
		return 0, err
	}
	for i, v := range vals {
		if v != vals[0] {
			return 0, fileErr(f.Path, ErrUnsupported, "%s differs between layers (layer 0: %d, layer %d: %d); calft supports models whose layers all have the same shape", key, vals[0], i, v)
		}
	}
	return int(vals[0]), nil
}

// checkTensors compares the file's tensors with what the loader creates:
// required ones present, every shape exact, and nothing else (llama.cpp
// refuses files with tensors it does not use).
func checkTensors(f *File, specs []tensorSpec) error {
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[s.name] = true
		t, ok := f.Tensor(s.name)
		if !ok {
			if s.optional {
				continue
			}
			return fileErr(f.Path, ErrTensorMissing, "tensor %q is missing; the file is incomplete or not this architecture; %s", s.name, adviceReconvert)
		}
		if !sameShape(t, s.shape) {
			return fileErr(f.Path, ErrTensorShape, "tensor %q has shape %v, expected %v from the metadata; the file is inconsistent; %s", s.name, t.Shape, s.shape, adviceReconvert)
		}
	}
	for _, t := range f.Tensors {
		if !known[t.Name] {
			return fileErr(f.Path, ErrUnsupported, "unexpected tensor %q (llama.cpp refuses files with tensors its architecture does not use); %s", t.Name, adviceReconvert)
		}
	}
	return nil
}

// sameShape compares like ggml: missing trailing dimensions count as 1.
func sameShape(t TensorInfo, want []uint64) bool {
	for i := 0; i < maxDims; i++ {
		w := uint64(1)
		if i < len(want) {
			w = want[i]
		}
		if t.Dim(i) != w {
			return false
		}
	}
	return true
}
