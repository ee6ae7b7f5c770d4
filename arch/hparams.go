package arch

import (
	"fmt"
	"math"

	"github.com/calft/calft/gguf"
)

// HParams are a text decoder's hyper-parameters, as libllama derives them from a GGUF.
type HParams struct {
	Arch      string
	NEmbd     int
	NLayer    int
	NHead     int
	NHeadKV   int
	HeadDim   int // attention.key_length: the width of one head's queries, keys and values
	NFF       int
	NVocab    int
	NCtxTrain int
	RMSEps    float32
	Rope      Rope
	Tied      bool // no output.weight: the output layer is token_embd

	// QScale, when not 0, multiplies the queries after RoPE, and q·k is then not
	// scaled (gemma3's f_attention_scale); 0: q·k is scaled by 1/√head width.
	QScale float32
	// EmbdScale, when not 0, multiplies the token rows' embeddings (not image rows), as
	// gemma3 does with √n_embd.
	EmbdScale float32
	// SWA is the sliding window (attention.sliding_window): on a sliding layer a row
	// attends to keys fewer than SWA positions back; 0 when no layer slides. Layer il
	// slides when il % SWAPattern < SWAPattern−1, with RoPE RopeSWA (see Sliding).
	SWA, SWAPattern int
	RopeSWA         Rope
	// Deepstack is n_deepstack_layers (Qwen3-VL): an image row's input is 1+Deepstack
	// slices of n_embd, the first its embedding, slice i+1 added to the row's hidden
	// state after block i (see NEmbdInp).
	Deepstack int
}

// NEmbdInp is the width of an image row's input: n_embd, or n_embd × (1 + Deepstack)
// with Qwen3-VL's deepstack features (llama.cpp's n_embd_inp, what mtmd checks the
// projector's output against).
func (hp *HParams) NEmbdInp() int { return hp.NEmbd * (1 + hp.Deepstack) }

// Sliding reports whether layer il attends through the sliding window.
func (hp *HParams) Sliding(il int) bool {
	return hp.SWA > 0 && hp.SWAPattern > 0 && il%hp.SWAPattern < hp.SWAPattern-1
}

// RopeOf is layer il's RoPE: RopeSWA on sliding layers, Rope elsewhere.
func (hp *HParams) RopeOf(il int) Rope {
	if hp.Sliding(il) {
		return hp.RopeSWA
	}
	return hp.Rope
}

// Rope are RoPE's settings as libllama computes them for a context (llama_context's
// cparams), for ggml_rope_ext.
type Rope struct {
	Type RopeType
	Dims int // rotated dimensions of a head
	Base float32
	// Scaling is rope.scaling.type: "none", "linear" or "yarn".
	Scaling string
	// FreqScale is 1/rope.scaling.factor ("linear", "yarn"), 1 otherwise.
	FreqScale float32
	// ExtFactor is 1 with YaRN, 0 otherwise; AttnFactor scales the rotated values
	// (rope.scaling.attn_factor, and YaRN's magnitude correction, which ggml's kernel
	// applies and libllama cancels); BetaFast and BetaSlow are YaRN's ramp.
	ExtFactor, AttnFactor, BetaFast, BetaSlow float32
	// NCtxOrig is the context the model was trained with before scaling.
	NCtxOrig int
	// Sections, for M-RoPE, are rope.dimension_sections: how many of the Dims/2
	// rotated pairs (frequencies, in order) take the row's first, second, third and
	// fourth position (time, height, width, unused). They sum to Dims/2.
	Sections [4]int
}

// MRoPE reports whether rows take four positions each (Qwen2-VL's M-RoPE, or
// Qwen3-VL's interleaved one).
func (hp *HParams) MRoPE() bool { return hp.Rope.Type == RopeMRoPE || hp.Rope.Type == RopeIMRoPE }

// QDim is the width of a block's queries (and of the attention output): head width ×
// heads, which need not be n_embd.
func (hp *HParams) QDim() int { return hp.HeadDim * hp.NHead }

// KVDim is the width of a block's keys and values.
func (hp *HParams) KVDim() int { return hp.HeadDim * hp.NHeadKV }

// AttnScale is the factor of q·k before the softmax.
func (hp *HParams) AttnScale() float32 {
	if hp.QScale != 0 {
		return 1
	}
	return float32(1 / math.Sqrt(float64(hp.HeadDim)))
}

// Validate reports hyper-parameters the decoder cannot run with.
func (hp *HParams) Validate() error {
	switch {
	case hp.NEmbd <= 0 || hp.NLayer <= 0 || hp.NHead <= 0 || hp.NFF <= 0 || hp.NVocab <= 0 || hp.HeadDim <= 0:
		return fmt.Errorf("model sizes must be positive: n_embd %d, %d layers, %d heads, head width %d, n_ff %d, %d tokens",
			hp.NEmbd, hp.NLayer, hp.NHead, hp.HeadDim, hp.NFF, hp.NVocab)
	case hp.NLayer > maxLayers:
		return fmt.Errorf("%d layers: llama.cpp allows at most %d", hp.NLayer, maxLayers)
	case hp.NHeadKV <= 0 || hp.NHead%hp.NHeadKV != 0:
		return fmt.Errorf("head_count %d is not a multiple of head_count_kv %d", hp.NHead, hp.NHeadKV)
	case hp.Rope.Dims <= 0 || hp.Rope.Dims > hp.HeadDim || hp.Rope.Dims%2 != 0:
		return fmt.Errorf("rope dimension count %d does not fit head width %d", hp.Rope.Dims, hp.HeadDim)
	case !(hp.RMSEps > 0) || math.IsInf(float64(hp.RMSEps), 0):
		return fmt.Errorf("layer_norm_rms_epsilon %v is not a small positive number", hp.RMSEps)
	}
	return nil
}

// maxLayers is llama.cpp's LLAMA_MAX_LAYERS.
const maxLayers = 512

// adviceReconvert ends messages about files whose metadata is inconsistent.
const adviceReconvert = "convert the model again with a current llama.cpp converter"

// ReadHParams reads a text model's hyper-parameters: the keys libllama reads for its
// architecture, with the same types and defaults. A key whose value changes the graph in
// a way calft's decoder does not implement is refused, naming the key.
func ReadHParams(f *gguf.File) (*HParams, error) {
	name, err := f.String("general.architecture")
	if err != nil {
		return nil, err
	}
	a, err := Lookup(name)
	if err != nil {
		return nil, gguf.Errorf(f.Path, gguf.ErrUnsupported, "%v; pick a model of a supported architecture", err)
	}
	r := &keyReader{f: f, prefix: name + "."}
	hp := &HParams{Arch: name}
	for _, step := range []func(*HParams) error{r.sizes, r.experts, r.heads, r.rope, r.norm} {
		if err := step(hp); err != nil {
			return nil, err
		}
	}
	hp.Rope.Type = a.Rope
	if hp.MRoPE() {
		if err := r.sections(hp); err != nil {
			return nil, err
		}
	}
	if a.HParams != nil {
		if err := a.HParams(r, hp); err != nil {
			return nil, err
		}
	}
	if hp.NVocab, err = vocabSize(f); err != nil {
		return nil, err
	}
	_, hasOut := f.Tensor("output.weight")
	hp.Tied = !hasOut
	if err := hp.Validate(); err != nil {
		return nil, gguf.Errorf(f.Path, gguf.ErrCorrupt, "%v; %s", err, adviceReconvert)
	}
	return hp, nil
}

// vocabSize is the number of tokens, as libllama counts them: the tokenizer's list, or
// the embedding's rows for a file without one.
func vocabSize(f *gguf.File) (int, error) {
	if v, ok := f.Get("tokenizer.ggml.tokens"); ok {
		return v.Len(), nil
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok {
		return 0, gguf.Errorf(f.Path, gguf.ErrTensorMissing, "no token_embd.weight tensor; this is not a text model")
	}
	return int(emb.Dim(1)), nil
}

// keyReader reads an architecture's keys ("llama.embedding_length").
type keyReader struct {
	f      *gguf.File
	prefix string
}

func (r *keyReader) key(s string) string { return r.prefix + s }

// u32 reads a required u32 key, or an optional one (def ≥ 0) that defaults to def.
func (r *keyReader) u32(s string, def int) (int, error) {
	k := r.key(s)
	if def >= 0 && !r.f.Has(k) {
		return def, nil
	}
	v, err := r.f.Uint32(k)
	return int(v), err
}

// f32 reads an optional f32 key.
func (r *keyReader) f32(s string, def float32) (float32, error) {
	k := r.key(s)
	if !r.f.Has(k) {
		return def, nil
	}
	return r.f.Float32(k)
}

// uniform reads a per-layer count, one u32 or an array of per-layer values, and
// requires every layer to have the same value, which calft's decoder assumes.
func (r *keyReader) uniform(s string, nLayer, def int) (int, error) {
	k := r.key(s)
	if !r.f.Has(k) {
		if def < 0 {
			_, err := r.f.Uint32(k) // the missing-key error
			return 0, err
		}
		return def, nil
	}
	vals, err := r.f.Uint32OrArray(k, nLayer)
	if err != nil {
		return 0, err
	}
	for i, v := range vals {
		if v != vals[0] {
			return 0, gguf.Errorf(r.f.Path, gguf.ErrUnsupported, "%s differs between layers (layer 0: %d, layer %d: %d); calft's decoder needs every layer of the same shape", k, vals[0], i, v)
		}
	}
	return int(vals[0]), nil
}

func (r *keyReader) sizes(hp *HParams) error {
	var err error
	if hp.NCtxTrain, err = r.u32("context_length", -1); err != nil {
		return err
	}
	if hp.NEmbd, err = r.u32("embedding_length", -1); err != nil {
		return err
	}
	if hp.NLayer, err = r.u32("block_count", -1); err != nil {
		return err
	}
	if hp.NLayer < 1 || hp.NLayer > maxLayers || hp.NEmbd < 1 || hp.NCtxTrain < 1 {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "implausible sizes: %d layers (llama.cpp allows 1..%d), n_embd %d, context %d; %s",
			hp.NLayer, maxLayers, hp.NEmbd, hp.NCtxTrain, adviceReconvert)
	}
	// Read by libllama for every architecture; they do not change the decoder.
	for _, k := range []string{"vocab_size", "pooling_type"} {
		if _, err := r.u32(k, 0); err != nil {
			return err
		}
	}
	if r.f.Has(r.key("classifier.output_labels")) {
		if _, err := r.f.Strings(r.key("classifier.output_labels")); err != nil {
			return err
		}
	}
	hp.NFF, err = r.uniform("feed_forward_length", hp.NLayer, -1)
	return err
}

// experts refuses mixture-of-experts models, and expert settings without experts, on
// which llama.cpp's hyper-parameter asserts abort.
func (r *keyReader) experts(hp *HParams) error {
	var counts [4]int
	for i, k := range []string{"expert_count", "expert_used_count", "expert_group_count", "expert_group_used_count"} {
		var err error
		if counts[i], err = r.u32(k, 0); err != nil {
			return err
		}
	}
	if counts[0] > 0 {
		return gguf.Errorf(r.f.Path, gguf.ErrUnsupported, "is a mixture-of-experts model (%s = %d), which calft does not train; use a dense model", r.key("expert_count"), counts[0])
	}
	if counts[1] > 0 || counts[2] > 0 || counts[3] > 0 {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "sets expert counts but has no experts (llama.cpp aborts on this); %s", adviceReconvert)
	}
	return nil
}

func (r *keyReader) heads(hp *HParams) error {
	var err error
	if hp.NHead, err = r.uniform("attention.head_count", hp.NLayer, -1); err != nil {
		return err
	}
	if hp.NHeadKV, err = r.uniform("attention.head_count_kv", hp.NLayer, hp.NHead); err != nil {
		return err
	}
	if hp.NFF < 1 || hp.NHead < 1 || hp.NHeadKV < 1 || hp.NHead%hp.NHeadKV != 0 {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "implausible sizes: n_ff %d, %d heads, %d KV heads (heads must be a multiple of KV heads); %s",
			hp.NFF, hp.NHead, hp.NHeadKV, adviceReconvert)
	}
	if hp.HeadDim, err = r.u32("attention.key_length", hp.NEmbd/hp.NHead); err != nil {
		return err
	}
	vDim, err := r.u32("attention.value_length", hp.NEmbd/hp.NHead)
	if err != nil {
		return err
	}
	if hp.HeadDim < 1 {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "head width is zero (n_embd %d, %d heads); %s", hp.NEmbd, hp.NHead, adviceReconvert)
	}
	if vDim != hp.HeadDim {
		return gguf.Errorf(r.f.Path, gguf.ErrUnsupported, "%s %d differs from %s %d; calft's decoder needs keys and values of one width",
			r.key("attention.value_length"), vDim, r.key("attention.key_length"), hp.HeadDim)
	}
	return nil
}

// ropeScalings are the rope.scaling.type values libllama knows; calft implements the
// first three ("longrope" needs per-context factor tensors).
var ropeScalings = []string{"none", "linear", "yarn", "longrope"}

func (r *keyReader) rope(hp *HParams) error {
	ro := &hp.Rope
	var err error
	if ro.Dims, err = r.u32("rope.dimension_count", hp.HeadDim); err != nil {
		return err
	}
	if (hp.Arch == "llama" || hp.Arch == "qwen2vl") && ro.Dims != hp.HeadDim {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s is %d but the head width is %d (llama.cpp refuses this); %s",
			r.key("rope.dimension_count"), ro.Dims, hp.HeadDim, adviceReconvert)
	}
	if ro.Dims > hp.HeadDim || ro.Dims%2 != 0 {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s %d does not fit head width %d; %s", r.key("rope.dimension_count"), ro.Dims, hp.HeadDim, adviceReconvert)
	}
	if ro.Base, err = r.f32("rope.freq_base", 10000); err != nil {
		return err
	}
	if _, err := r.boolean("rope.scaling.finetuned"); err != nil { // informational
		return err
	}
	ro.Scaling = "linear"
	if k := r.key("rope.scaling.type"); r.f.Has(k) {
		if ro.Scaling, err = r.f.String(k); err != nil {
			return err
		}
	}
	switch ro.Scaling {
	case "none", "linear", "yarn":
	case "longrope":
		return gguf.Errorf(r.f.Path, gguf.ErrUnsupported, "%s is %q, which calft's decoder does not implement; use a model without long-context RoPE factors", r.key("rope.scaling.type"), ro.Scaling)
	default:
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s %q is unknown (llama.cpp aborts; it knows %v); %s", r.key("rope.scaling.type"), ro.Scaling, ropeScalings, adviceReconvert)
	}
	return r.ropeScale(hp)
}

// ropeScale reads the scaling factors and computes the values libllama's context uses.
func (r *keyReader) ropeScale(hp *HParams) error {
	ro := &hp.Rope
	factor, err := r.f32("rope.scaling.factor", 0)
	if err != nil {
		return err
	}
	if !r.f.Has(r.key("rope.scaling.factor")) {
		if factor, err = r.f32("rope.scale_linear", 0); err != nil {
			return err
		}
	}
	if factor < 0 || math.IsNaN(float64(factor)) || math.IsInf(float64(factor), 0) {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s is %v; %s", r.key("rope.scaling.factor"), factor, adviceReconvert)
	}
	ro.FreqScale = 1
	if factor != 0 {
		ro.FreqScale = 1 / factor
	}
	if ro.Scaling == "none" {
		ro.FreqScale = 1 // libllama never scales with type none
	}
	if ro.AttnFactor, err = r.f32("rope.scaling.attn_factor", 1); err != nil {
		return err
	}
	if ro.NCtxOrig, err = r.u32("rope.scaling.original_context_length", hp.NCtxTrain); err != nil {
		return err
	}
	if ro.NCtxOrig == 0 {
		ro.NCtxOrig = hp.NCtxTrain
	}
	ro.BetaFast, ro.BetaSlow = 32, 1
	if ro.Scaling == "yarn" {
		// libllama sets YaRN's attention factor to its magnitude correction
		// 0.1·ln(s)+1 divided by the same factor, which ggml's kernel multiplies in
		// again: what reaches ggml_rope_ext is rope.scaling.attn_factor alone.
		ro.ExtFactor = 1
	}
	return nil
}

// sections reads M-RoPE's rope.dimension_sections: an array of exactly four integers
// (llama.cpp reads INT32 or UINT32 arrays) that sum to the rotated pairs, Dims/2.
func (r *keyReader) sections(hp *HParams) error {
	k := r.key("rope.dimension_sections")
	v, ok := r.f.Get(k)
	if !ok {
		return gguf.Errorf(r.f.Path, gguf.ErrKeyMissing, "has no %s (INT32[4]), which llama.cpp requires for %s; %s", k, hp.Arch, adviceReconvert)
	}
	var vals []int64
	switch d := v.Data.(type) {
	case []int32:
		for _, x := range d {
			vals = append(vals, int64(x))
		}
	case []uint32:
		for _, x := range d {
			vals = append(vals, int64(x))
		}
	default:
		return r.f.WrongType(k, v, "an INT32 array of 4")
	}
	if len(vals) != 4 {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s has %d entries; llama.cpp requires exactly 4 (time, height, width, unused); %s", k, len(vals), adviceReconvert)
	}
	sum := int64(0)
	for i, x := range vals {
		if x < 0 || x > int64(hp.Rope.Dims) {
			return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s %v: entry %d is out of range; %s", k, vals, i, adviceReconvert)
		}
		hp.Rope.Sections[i] = int(x)
		sum += x
	}
	if sum != int64(hp.Rope.Dims/2) {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s %v sums to %d, but the %d rotated dimensions (%s) make %d pairs; llama.cpp would wrap the sections; %s",
			k, vals, sum, hp.Rope.Dims, r.key("rope.dimension_count"), hp.Rope.Dims/2, adviceReconvert)
	}
	return nil
}

func (r *keyReader) boolean(s string) (bool, error) {
	k := r.key(s)
	if !r.f.Has(k) {
		return false, nil
	}
	return r.f.Bool(k)
}

func (r *keyReader) norm(hp *HParams) error {
	var err error
	if hp.RMSEps, err = r.f.Float32(r.key("attention.layer_norm_rms_epsilon")); err != nil {
		return err
	}
	if !(hp.RMSEps > 0) || math.IsInf(float64(hp.RMSEps), 0) {
		return gguf.Errorf(r.f.Path, gguf.ErrCorrupt, "%s is %v, not a small positive number; %s", r.key("attention.layer_norm_rms_epsilon"), hp.RMSEps, adviceReconvert)
	}
	return nil
}

// CheckTensors compares a file's tensors with the description: required ones present,
// every shape exact, norms and biases in F32, and nothing else — a tensor the decoder
// does not implement is refused by name (llama.cpp also refuses tensors its
// architecture does not use).
func (a *Arch) CheckTensors(f *gguf.File, hp *HParams) error {
	known := map[string]bool{}
	for _, s := range a.Specs(hp) {
		known[s.Name] = true
		t, ok := f.Tensor(s.Name)
		if !ok {
			if s.Optional {
				continue
			}
			return gguf.Errorf(f.Path, gguf.ErrTensorMissing, "tensor %q is missing; the file is incomplete or not a %s model; %s", s.Name, a.Name, adviceReconvert)
		}
		if !sameShape(t, s.Shape) {
			return gguf.Errorf(f.Path, gguf.ErrTensorShape, "tensor %q has shape %v, expected %v from the metadata; the file is inconsistent; %s", s.Name, t.Shape, s.Shape, adviceReconvert)
		}
		if s.F32 && t.Type != gguf.F32 {
			return gguf.Errorf(f.Path, gguf.ErrTensorType, "tensor %q is %s; calft's decoder reads it as F32 (real GGUFs store norms, biases and rope factors in F32); %s", s.Name, t.Type, adviceReconvert)
		}
	}
	for _, t := range f.Tensors {
		if !known[t.Name] {
			return gguf.Errorf(f.Path, gguf.ErrUnsupported, "unexpected tensor %q: calft's %s decoder does not implement it (and llama.cpp refuses tensors its architecture does not use); this model variant is not supported", t.Name, a.Name)
		}
	}
	if a.Check != nil {
		return a.Check(f, hp)
	}
	return nil
}

// sameShape compares like ggml: missing trailing dimensions count as 1.
func sameShape(t gguf.TensorInfo, want []int) bool {
	for i := 0; i < 4; i++ {
		w := 1
		if i < len(want) {
			w = want[i]
		}
		if t.Dim(i) != uint64(w) {
			return false
		}
	}
	return len(t.Shape) <= 4
}

// NoScaling is RoPE without context scaling, as libllama runs a model that has no
// rope.scaling keys.
func NoScaling(t RopeType, dims int, base float32, nCtx int) Rope {
	return Rope{Type: t, Dims: dims, Base: base, Scaling: "linear", FreqScale: 1, AttnFactor: 1, BetaFast: 32, BetaSlow: 1, NCtxOrig: nCtx}
}
