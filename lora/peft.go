package lora

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/fsutil"
)

// A Hugging Face PEFT LoRA adapter is a folder with adapter_config.json and
// adapter_model.safetensors, whose tensors are named after the PyTorch modules of the
// original model: base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight holds A
// as [r, in_features] and ….lora_B.weight holds B as [out_features, r], row-major. That
// is calft's own layout (A: n_in fastest, B: r fastest), so a pair crosses over as it is,
// except where llama.cpp's converter reordered the base weight's rows: for the llama
// architecture it permutes the rows of q_proj and k_proj within each head (see
// permuteQK), and B's rows, the adapted weight's output rows, must follow.

// PEFT file names inside an adapter folder.
const (
	PEFTConfigFile  = "adapter_config.json"
	PEFTWeightsFile = "adapter_model.safetensors"
)

// peftMaxConfig bounds adapter_config.json.
const peftMaxConfig = 1 << 20

// Base is what converting between a llama.cpp adapter and a PEFT one needs to know of the
// base model. BaseOf reads it from the model's GGUF; training code that has the hyper-
// parameters can fill Arch, NHead and NHeadKV itself.
type Base struct {
	Arch           string // general.architecture: llama, qwen2 or qwen2vl
	NHead, NHeadKV int    // attention heads and key/value heads
	// Name is base_model_name_or_path for adapter_config.json.
	Name string
	// Prefix is the PEFT module path of the model that holds the decoder's layers:
	// "" means the family's default ("model", as in LlamaForCausalLM and
	// Qwen2ForCausalLM); LLaVA-style models keep their text model under
	// "language_model.model" (Transformers before 4.52) or "model.language_model".
	Prefix string
	shapes map[string][2]int // base weight name → [n_in, n_out], when read from the file
}

// family is how one GGUF architecture's weights are named and laid out in Hugging Face.
type family struct {
	prefix    string // default module path of the decoder's layers' parent
	permuteQK bool   // llama.cpp's converter permutes attn_q/attn_k rows
}

var families = map[string]family{
	"llama": {prefix: "model", permuteQK: true},
	"qwen2": {prefix: "model", permuteQK: false},
	// Qwen2VLForConditionalGeneration (and Qwen2.5-VL's) keep the text layers under
	// "model" before Transformers 4.52, under "model.language_model" since
	// (--peft-prefix); the converter does not permute their q/k rows (NeoX pairs).
	"qwen2vl": {prefix: "model", permuteQK: false},
}

// hfModules maps llama.cpp's target kinds to the Hugging Face modules of a decoder layer.
var hfModules = map[string]string{
	"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
	"attn_output": "self_attn.o_proj",
	"ffn_gate":    "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}

// peftTensor matches a PEFT LoRA tensor name: the prefix, the layer, the module, A or B,
// and an optional adapter name that some savers keep ("default").
var peftTensor = regexp.MustCompile(`^base_model\.model\.(?:(.+)\.)?layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)\.lora_([AB])(?:\.[A-Za-z0-9_]+)?\.weight$`)

var prefixChars = regexp.MustCompile(`^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$`)

// BaseOf reads what PEFT conversion needs from a base model GGUF: architecture, head
// counts, the name for base_model_name_or_path (general.source.huggingface.repository,
// else general.name) and the shapes of its adaptable weights.
func BaseOf(modelPath string) (Base, error) {
	f, err := gguf.Open(modelPath)
	if err != nil {
		return Base{}, err
	}
	defer f.Close()
	hp, err := arch.ReadHParams(f)
	if err != nil {
		return Base{}, err
	}
	b := Base{Arch: hp.Arch, NHead: hp.NHead, NHeadKV: hp.NHeadKV, shapes: map[string][2]int{}}
	for _, key := range []string{"general.source.huggingface.repository", "general.name"} {
		if s, err := f.String(key); err == nil && s != "" {
			b.Name = s
			break
		}
	}
	for _, ti := range f.Tensors {
		if len(ti.Shape) == 2 {
			b.shapes[ti.Name] = [2]int{int(ti.Shape[0]), int(ti.Shape[1])}
		}
	}
	return b, nil
}

// prefix is the module path to write: the user's (with or without "base_model.model."
// and ".layers") or the family default.
func (b Base) prefix(fam family) (string, error) {
	p := strings.TrimSuffix(strings.TrimPrefix(strings.Trim(b.Prefix, "."), "base_model.model."), ".layers")
	if p == "" {
		return fam.prefix, nil
	}
	if !prefixChars.MatchString(p) {
		return "", fmt.Errorf("PEFT prefix %q is not a module path such as model or language_model.model", b.Prefix)
	}
	return p, nil
}

// fits checks the adapter against the base's weights, when they are known.
func (b Base) fits(h *HostAdapter) error {
	if b.Arch != "" && h.Arch != b.Arch {
		return fmt.Errorf("the adapter is for architecture %q, the model is %q", h.Arch, b.Arch)
	}
	if b.shapes == nil {
		return nil
	}
	for _, p := range h.Pairs {
		s, ok := b.shapes[p.Base]
		switch {
		case !ok:
			return fmt.Errorf("the adapter updates %s, which the model does not have; was it trained on another model?", p.Base)
		case s != [2]int{p.NIn, p.NOut}:
			return fmt.Errorf("the adapter's %s maps %d → %d, the model's weight %d → %d; it was trained on another model", p.Base, p.NIn, p.NOut, s[0], s[1])
		}
	}
	return nil
}

// heads is the head count whose rows llama.cpp's converter permuted in a weight of this
// kind, or 0 when it left the rows alone.
func (b Base) heads(fam family, kind string) (int, error) {
	if !fam.permuteQK || (kind != "attn_q" && kind != "attn_k") {
		return 0, nil
	}
	n := b.NHead
	if kind == "attn_k" {
		n = b.NHeadKV
	}
	if n <= 0 {
		return 0, fmt.Errorf("%s weights of a %s model need the model's head counts to be converted", kind, b.Arch)
	}
	return n, nil
}

// permuteQK reorders the rows of a rows×cols row-major matrix as llama.cpp's converter
// (LlamaModel.permute) reorders q_proj and k_proj for the llama architecture:
//
//	w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols)
//
// so GGUF row h·d + 2i + j is Hugging Face row h·d + j·d/2 + i, d = rows/heads. With
// toGGUF false it undoes the permutation.
func permuteQK(m []float32, rows, cols, heads int, toGGUF bool) ([]float32, error) {
	if heads <= 0 || rows%(2*heads) != 0 || len(m) != rows*cols {
		return nil, fmt.Errorf("cannot split %d rows into %d heads of pairs", rows, heads)
	}
	d := rows / heads
	out := make([]float32, len(m))
	for h := 0; h < heads; h++ {
		for i := 0; i < d/2; i++ {
			for j := 0; j < 2; j++ {
				g, f := h*d+2*i+j, h*d+j*d/2+i
				src, dst := f, g
				if !toGGUF {
					src, dst = g, f
				}
				copy(out[dst*cols:(dst+1)*cols], m[src*cols:(src+1)*cols])
			}
		}
	}
	return out, nil
}

// peftConfig is adapter_config.json: the fields calft writes, in this order, and those
// it must check when reading.
type peftConfig struct {
	BaseModel     string          `json:"base_model_name_or_path"`
	Bias          string          `json:"bias"`
	FanInFanOut   bool            `json:"fan_in_fan_out"`
	InferenceMode bool            `json:"inference_mode"`
	InitWeights   any             `json:"init_lora_weights"`
	LoraAlpha     json.Number     `json:"lora_alpha"`
	LoraDropout   float64         `json:"lora_dropout"`
	ModulesToSave []string        `json:"modules_to_save"`
	PeftType      string          `json:"peft_type"`
	R             int             `json:"r"`
	TargetModules json.RawMessage `json:"target_modules"`
	TaskType      string          `json:"task_type"`
	UseRSLoRA     bool            `json:"use_rslora"`
	UseDoRA       bool            `json:"use_dora,omitempty"`
	RankPattern   map[string]any  `json:"rank_pattern,omitempty"`
	AlphaPattern  map[string]any  `json:"alpha_pattern,omitempty"`
}

// SavePEFT writes the adapter as a Hugging Face PEFT adapter folder: dir/
// adapter_model.safetensors (tensors as dtype: F32, F16 or BF16) and dir/
// adapter_config.json, with module names for the base's family and, for the llama
// architecture, q and k rows back in Hugging Face's order.
func (h *HostAdapter) SavePEFT(dir string, b Base, dtype string) error {
	fam, ok := families[h.Arch]
	if !ok {
		return fmt.Errorf("%s: PEFT export knows the Hugging Face modules of %s models, not %q", dir, strings.Join(familyNames(), " and "), h.Arch)
	}
	if err := b.fits(h); err != nil {
		return err
	}
	st, ok := stDTypeName(dtype)
	if !ok {
		return fmt.Errorf("PEFT tensors are written as f32, f16 or bf16, not %q", dtype)
	}
	prefix, err := b.prefix(fam)
	if err != nil {
		return err
	}
	var ts []STensor
	var kinds []string
	for _, p := range h.Pairs {
		a, bt, kind, err := h.peftPair(p, b, fam, prefix)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		ts = append(ts, a, bt)
		if !slices.Contains(kinds, kind) {
			kinds = append(kinds, kind)
		}
	}
	if err := WriteSafetensors(filepath.Join(dir, PEFTWeightsFile), ts, st, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	cfg, err := h.peftConfig(b.Name, prefix, fam, kinds)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, PEFTConfigFile), cfg)
}

func familyNames() []string {
	var out []string
	for n := range families {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// peftPair turns one pair into its two PEFT tensors.
func (h *HostAdapter) peftPair(p HostPair, b Base, fam family, prefix string) (a, bt STensor, kind string, err error) {
	var layer int
	var rest string
	if n, _ := fmt.Sscanf(p.Base, "blk.%d.%s", &layer, &rest); n != 2 || !strings.HasSuffix(rest, ".weight") {
		return a, bt, "", fmt.Errorf("%s is not a decoder block weight", p.Base)
	}
	kind = strings.TrimSuffix(rest, ".weight")
	mod, ok := hfModules[kind]
	if !ok {
		return a, bt, "", fmt.Errorf("%s has no Hugging Face module name calft knows", p.Base)
	}
	name := fmt.Sprintf("base_model.model.%s.layers.%d.%s", prefix, layer, mod)
	bv := p.B
	heads, err := b.heads(fam, kind)
	if err != nil {
		return a, bt, "", err
	}
	if heads > 0 {
		if bv, err = permuteQK(p.B, p.NOut, h.Rank, heads, false); err != nil {
			return a, bt, "", fmt.Errorf("%s: %w", p.Base, err)
		}
	}
	a = STensor{Name: name + ".lora_A.weight", Shape: []int{h.Rank, p.NIn}, Data: p.A}
	bt = STensor{Name: name + ".lora_B.weight", Shape: []int{p.NOut, h.Rank}, Data: bv}
	return a, bt, kind, nil
}

// peftConfig renders adapter_config.json. target_modules lists the short module names
// for the default prefix; under another prefix (a multimodal model, whose vision tower
// has q_proj … of its own) it is a regular expression that PEFT matches against the full
// module names, so that only the text decoder's modules get an adapter.
func (h *HostAdapter) peftConfig(name, prefix string, fam family, kinds []string) ([]byte, error) {
	order := []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}
	var short, full []string
	for _, k := range order {
		if slices.Contains(kinds, k) {
			m := hfModules[k]
			short = append(short, m[strings.IndexByte(m, '.')+1:])
			full = append(full, m)
		}
	}
	var targets any = short
	if prefix != fam.prefix {
		targets = regexp.QuoteMeta(prefix) + `\.layers\.\d+\.(` + strings.ReplaceAll(strings.Join(full, "|"), ".", `\.`) + `)`
	}
	tm, err := json.Marshal(targets)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(float64(h.Alpha)) || math.IsInf(float64(h.Alpha), 0) {
		return nil, fmt.Errorf("adapter alpha %v is not finite", h.Alpha)
	}
	cfg := peftConfig{
		BaseModel: name, Bias: "none", InferenceMode: true, InitWeights: true,
		LoraAlpha: json.Number(strconv.FormatFloat(float64(h.Alpha), 'g', -1, 32)),
		PeftType:  "LORA", R: h.Rank, TargetModules: tm, TaskType: "CAUSAL_LM",
	}
	out, err := json.MarshalIndent(cfg, "", "  ")
	return append(out, '\n'), err
}

// IsPEFT reports whether path names a PEFT adapter rather than a GGUF: a folder, a
// .safetensors file or an adapter_config.json.
func IsPEFT(path string) bool {
	if path == "" {
		return false
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return true
	}
	return strings.HasSuffix(strings.ToLower(path), ".safetensors") || filepath.Base(path) == PEFTConfigFile
}

// ReadAny reads the adapter at path, a llama.cpp adapter GGUF or a PEFT adapter folder
// (or its adapter_model.safetensors or adapter_config.json), as a llama.cpp-layout
// adapter for the base model b. A PEFT adapter needs b.Arch, and for the llama
// architecture b.NHead and b.NHeadKV; b.Prefix, when set, picks the PEFT modules
// under that path and skips the others (a vision tower's, say). When b came from
// BaseOf, the adapter is also checked against the model's weights.
func ReadAny(path string, b Base) (*HostAdapter, error) {
	var h *HostAdapter
	var err error
	if IsPEFT(path) {
		h, err = ReadPEFT(path, b)
	} else {
		h, err = Read(path)
	}
	if err != nil {
		return nil, err
	}
	if err := b.fits(h); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// ReadPEFT reads a PEFT LoRA adapter folder (see ReadAny) into llama.cpp's layout.
func ReadPEFT(path string, b Base) (*HostAdapter, error) {
	dir, wpath := path, filepath.Join(path, PEFTWeightsFile)
	if st, err := os.Stat(path); err != nil {
		return nil, err
	} else if !st.IsDir() {
		dir, wpath = filepath.Dir(path), filepath.Join(filepath.Dir(path), PEFTWeightsFile)
		if strings.HasSuffix(strings.ToLower(path), ".safetensors") {
			wpath = path // a weights file of another name, beside its adapter_config.json
		}
	}
	fam, ok := families[b.Arch]
	if !ok {
		return nil, fmt.Errorf("%s: reading a PEFT adapter needs a base model of a known family (%s), not %q", path, strings.Join(familyNames(), ", "), b.Arch)
	}
	cfg, alpha, err := readPEFTConfig(path, dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(wpath); err != nil {
		if _, binErr := os.Stat(filepath.Join(dir, "adapter_model.bin")); binErr == nil {
			return nil, fmt.Errorf("%s: the adapter is saved as adapter_model.bin (a pickle), which calft does not read; save it with safe_serialization=True", path)
		}
		return nil, fmt.Errorf("%s: a PEFT adapter needs its weights in %s: %w", path, PEFTWeightsFile, err)
	}
	ts, _, err := ReadSafetensors(wpath)
	if err != nil {
		return nil, err
	}
	h, err := peftPairs(ts, b, fam, cfg.R)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", wpath, err)
	}
	h.Arch, h.Alpha = b.Arch, alpha
	return h, nil
}

// readPEFTConfig reads and checks adapter_config.json, returning it and the alpha that
// gives PEFT's scale as alpha/r.
func readPEFTConfig(path, dir string) (*peftConfig, float32, error) {
	cpath := filepath.Join(dir, PEFTConfigFile)
	f, err := os.Open(cpath)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: a PEFT adapter needs %s beside its weights: %w; --lora takes a LoRA adapter GGUF or a PEFT adapter folder", path, PEFTConfigFile, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, peftMaxConfig+1))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", cpath, err)
	}
	if len(raw) > peftMaxConfig {
		return nil, 0, fmt.Errorf("%s: larger than %d bytes; not a PEFT adapter config", cpath, peftMaxConfig)
	}
	var cfg peftConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, 0, fmt.Errorf("%s: not a PEFT adapter config: %v", cpath, err)
	}
	bad := func(format string, args ...any) (*peftConfig, float32, error) {
		return nil, 0, fmt.Errorf("%s: %s", cpath, fmt.Sprintf(format, args...))
	}
	switch {
	case cfg.PeftType != "LORA":
		return bad("peft_type is %q; calft reads LoRA adapters only", cfg.PeftType)
	case cfg.R <= 0:
		return bad("r is %d; a LoRA rank must be positive", cfg.R)
	case cfg.UseDoRA:
		return bad("use_dora is set; a DoRA adapter has no llama.cpp equivalent")
	case cfg.FanInFanOut:
		return bad("fan_in_fan_out is set (GPT-2 style Conv1D weights); calft reads adapters of linear layers")
	case cfg.Bias != "" && cfg.Bias != "none":
		return bad("bias is %q; llama.cpp adapters hold no bias terms (use bias=\"none\")", cfg.Bias)
	case len(cfg.ModulesToSave) > 0:
		return bad("modules_to_save %v: full copies of modules cannot be expressed as a LoRA adapter", cfg.ModulesToSave)
	case len(cfg.RankPattern) > 0 || len(cfg.AlphaPattern) > 0:
		return bad("rank_pattern or alpha_pattern is set; calft reads adapters of one rank and alpha")
	}
	if init, ok := cfg.InitWeights.(string); ok {
		for _, m := range []string{"pissa", "olora", "corda", "loftq"} {
			if strings.HasPrefix(strings.ToLower(init), m) {
				return bad("init_lora_weights is %q: such an adapter applies to a modified base model; convert it to a plain LoRA with PEFT first (path_initial_model_for_weight_conversion)", init)
			}
		}
	}
	a, err := strconv.ParseFloat(string(cfg.LoraAlpha), 32)
	if err != nil || math.IsInf(a, 0) || math.IsNaN(a) || a == 0 {
		return bad("lora_alpha %q is not a finite non-zero number", string(cfg.LoraAlpha))
	}
	if cfg.UseRSLoRA { // scale alpha/√r, written as alpha'/r
		a *= math.Sqrt(float64(cfg.R))
	}
	return &cfg, float32(a), nil
}

// peftPairs gathers the A/B tensors of a PEFT adapter into pairs of llama.cpp weights.
func peftPairs(ts []STensor, b Base, fam family, rank int) (*HostAdapter, error) {
	want := ""
	if b.Prefix != "" {
		p, err := b.prefix(fam)
		if err != nil {
			return nil, err
		}
		want = "base_model.model." + p + ".layers."
	}
	type half struct{ a, b *STensor }
	pairs := map[string]*half{}
	prefixes := map[string]bool{}
	for i := range ts {
		t := &ts[i]
		if want != "" && !strings.HasPrefix(t.Name, want) {
			continue
		}
		m := peftTensor.FindStringSubmatch(t.Name)
		if m == nil {
			return nil, fmt.Errorf("tensor %s is not the LoRA A or B of a decoder projection (q/k/v/o_proj, gate/up/down_proj); calft converts adapters of the text decoder's projections only (an adapter of a whole multimodal model: name the text decoder's module path with --peft-prefix)", t.Name)
		}
		prefixes[m[1]] = true
		layer, err := strconv.Atoi(m[2])
		if err != nil || layer > 4096 {
			return nil, fmt.Errorf("tensor %s: layer %s out of range", t.Name, m[2])
		}
		base := fmt.Sprintf("blk.%d.%s.weight", layer, kindOfModule(m[3]))
		hp := pairs[base]
		if hp == nil {
			hp = &half{}
			pairs[base] = hp
		}
		slot := &hp.a
		if m[4] == "B" {
			slot = &hp.b
		}
		if *slot != nil {
			return nil, fmt.Errorf("tensors %s and %s are the same LoRA %s", (*slot).Name, t.Name, m[4])
		}
		*slot = t
	}
	if len(prefixes) > 1 {
		var ps []string
		for p := range prefixes {
			ps = append(ps, strconv.Quote(p))
		}
		slices.Sort(ps)
		return nil, fmt.Errorf("LoRA layers under several module paths (%s); name the text decoder's with --peft-prefix", strings.Join(ps, ", "))
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("no LoRA tensors (…layers.N.<module>.lora_A.weight) under %q", strings.TrimSuffix(want, ".layers."))
	}
	h := &HostAdapter{Rank: rank}
	for base, hp := range pairs {
		p, err := hostPair(base, hp.a, hp.b, rank, b, fam)
		if err != nil {
			return nil, err
		}
		h.Pairs = append(h.Pairs, p)
	}
	sort.Slice(h.Pairs, func(i, j int) bool { return tensorOrder(h.Pairs[i].Base) < tensorOrder(h.Pairs[j].Base) })
	return h, nil
}

// kindOfModule maps "self_attn.q_proj" to "attn_q".
func kindOfModule(mod string) string {
	for k, m := range hfModules {
		if m == mod {
			return k
		}
	}
	return ""
}

// hostPair checks one PEFT pair's shapes and puts B's rows in llama.cpp's order.
func hostPair(base string, a, b *STensor, rank int, bs Base, fam family) (HostPair, error) {
	if a == nil || b == nil {
		return HostPair{}, fmt.Errorf("the LoRA of %s has only one of lora_A and lora_B", base)
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[0] != rank || b.Shape[1] != rank || a.Shape[1] == 0 || b.Shape[0] == 0 {
		return HostPair{}, fmt.Errorf("%s %v and %s %v do not form a LoRA pair of rank %d (A [r, in_features], B [out_features, r])",
			a.Name, a.Shape, b.Name, b.Shape, rank)
	}
	p := HostPair{Base: base, NIn: a.Shape[1], NOut: b.Shape[0], A: a.Data, B: b.Data}
	heads, err := bs.heads(fam, kindOf(base))
	if err != nil {
		return HostPair{}, err
	}
	if heads > 0 {
		if p.B, err = permuteQK(b.Data, p.NOut, rank, heads, true); err != nil {
			return HostPair{}, fmt.Errorf("%s: %w", b.Name, err)
		}
	}
	return p, nil
}

// AsGGUF gives a path llama.cpp can load as an adapter for the model: path itself when
// it is not a PEFT adapter, else a temporary F32 adapter GGUF converted from it, which
// cleanup removes. An empty path stays empty.
func AsGGUF(path, modelPath string) (string, func(), error) {
	if !IsPEFT(path) {
		return path, func() {}, nil
	}
	b, err := BaseOf(modelPath)
	if err != nil {
		return "", nil, err
	}
	h, err := ReadAny(path, b)
	if err != nil {
		return "", nil, err
	}
	tmp, err := os.CreateTemp("", "calft-peft-*.gguf")
	if err != nil {
		return "", nil, err
	}
	tmp.Close()
	cleanup := func() { os.Remove(tmp.Name()) }
	if err := h.Save(tmp.Name(), gguf.F32); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("converting %s to a llama.cpp adapter: %w", path, err)
	}
	return tmp.Name(), cleanup, nil
}
