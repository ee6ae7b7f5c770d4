package check

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/calft/calft/gguf"
)

// Description is a human-readable summary of a GGUF file for `calft info`.
type Description struct {
	Path   string
	Kind   string // "text model", "mmproj" or "adapter"
	Fields []Field
	// Problem is set when the file parses but calft would refuse to use it.
	Problem error
}

// Field is one "name: value" line of a Description.
type Field struct{ Name, Value string }

func (d *Description) add(name, format string, args ...any) {
	d.Fields = append(d.Fields, Field{name, fmt.Sprintf(format, args...)})
}

// String renders the description as aligned "name: value" lines.
func (d *Description) String() string {
	width := 0
	for _, f := range d.Fields {
		width = max(width, len(f.Name))
	}
	var b strings.Builder
	for _, f := range d.Fields {
		fmt.Fprintf(&b, "%-*s  %s\n", width+1, f.Name+":", f.Value)
	}
	if d.Problem != nil {
		fmt.Fprintf(&b, "%-*s  %v\n", width+1, "problem:", d.Problem)
	}
	return b.String()
}

// Describe summarizes the GGUF file at path, choosing the summary by what
// the file is (text model, vision projector or LoRA adapter). A file that
// cannot be parsed is an error; one that parses but would be rejected is
// described with its Problem set.
func Describe(path string) (*Description, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	d := &Description{Path: path, Kind: fileKind(f)}
	d.add("file", "%s", path)
	d.add("kind", "%s", d.Kind)
	d.add("format", "GGUF v%d, %d metadata keys, %d tensors, %s", f.Version, len(f.KVs()), len(f.Tensors), humanBytes(uint64(f.FileSize)))
	switch d.Kind {
	case "adapter":
		describeAdapter(f, d)
	case "mmproj":
		describeMmproj(f, d)
	default:
		describeTextModel(f, d)
	}
	d.add("tensor types", "%s", typeHistogram(f.Tensors))
	return d, nil
}

func describeTextModel(f *gguf.File, d *Description) {
	m, err := InspectTextModel(f)
	if err != nil {
		d.Problem = err
		if arch, e := f.String("general.architecture"); e == nil {
			d.add("architecture", "%s", arch)
		}
		d.add("parameters", "%s", humanCount(totalElements(f.Tensors)))
		return
	}
	d.add("architecture", "%s", m.Arch)
	if m.Name != "" {
		d.add("name", "%s", m.Name)
	}
	d.add("parameters", "%s", humanCount(m.NParams))
	d.add("embedding", "%d", m.NEmbd)
	if m.Deepstack > 0 {
		d.add("deepstack", "%d layers: image rows are %d wide (n_embd × %d)", m.Deepstack, m.NEmbdInp(), 1+m.Deepstack)
	}
	d.add("layers", "%d", m.NLayer)
	d.add("heads", "%d query, %d key/value, head width %d", m.NHead, m.NHeadKV, m.HeadDim)
	d.add("feed-forward", "%d", m.NFF)
	d.add("context", "%d (training)", m.NCtxTrain)
	d.add("rms norm eps", "%g", m.RMSEps)
	d.add("rope", "%s, %d dims, base %g, scaling %s (freq scale %g)", m.Rope.Type, m.Rope.Dims, m.Rope.Base, m.Rope.Scaling, m.Rope.FreqScale)
	if m.MRoPE() {
		d.add("rope sections", "%v (time, height, width, unused pairs)", m.Rope.Sections)
	}
	if m.Tied {
		d.add("output layer", "tied to token_embd")
	} else {
		d.add("output layer", "separate output.weight (%s)", m.Tensors["output.weight"].Type)
	}
	v := m.Vocab
	d.add("vocab", "%s, %d tokens (%d control, %d byte, %d user-defined)", vocabKind(v.Model), v.Size, v.NControl, v.NByte, v.NUserDefined)
	d.add("special tokens", "bos %s, eos %s, eot %s; add bos %v", tokenLabel(v.BOS, v.BOSText), tokenLabel(v.EOS, v.EOSText), tokenLabel(v.EOT, v.EOTText), v.AddBOS)
	if v.ChatTemplate != "" {
		d.add("chat template", "yes (%d bytes)", len(v.ChatTemplate))
	} else {
		d.add("chat template", "none")
	}
}

func vocabKind(model string) string {
	switch model {
	case "llama":
		return "SentencePiece (llama)"
	case "gpt2":
		return "byte-level BPE (gpt2)"
	}
	return model
}

func tokenLabel(id int, text string) string {
	if id < 0 {
		return "none"
	}
	return fmt.Sprintf("%d %q", id, text)
}

func describeMmproj(f *gguf.File, d *Description) {
	m, err := InspectMmproj(f)
	if err != nil {
		d.Problem = err
		if pt, e := f.String("clip.projector_type"); e == nil {
			d.add("projector", "%s", pt)
		}
		d.add("parameters", "%s", humanCount(totalElements(f.Tensors)))
		return
	}
	d.add("projector", "%s", m.ProjectorType)
	if fam, ok := projectorFamilies[m.ProjectorType]; ok {
		if name, ok := resamplerModels[m.MiniCPMVVersion]; ok {
			fam = name + " (slices as separate image chunks)"
		}
		d.add("family", "%s", fam)
	}
	d.add("parameters", "%s", humanCount(m.NParams))
	d.add("image", "%d×%d pixels, %d×%d patches", m.ImageSize, m.ImageSize, m.PatchSize, m.PatchSize)
	d.add("vision tower", "width %d, %d layers, %d heads, feed-forward %d", m.NEmbd, m.NLayer, m.NHead, m.NFF)
	d.add("projection width", "%s", unknownIfZero(m.OutputWidth))
	tokens := unknownIfZero(m.TokensPerImage)
	if m.TokensPerImage == 0 && mropeProjectors[m.ProjectorType] {
		tokens = "(W/2p)·(H/2p) for a W×H image (2×2 patches merged), on an M-RoPE grid"
	}
	if m.TokensPerSlice > 0 {
		tokens = fmt.Sprintf("%d per slice (minicpmv_version %d): the overview, and each slice of an image larger than %d×%d (up to 9)", m.TokensPerSlice, m.MiniCPMVVersion, m.ImageSize, m.ImageSize)
	}
	d.add("tokens per image", "%s", tokens)
}

// projectorFamilies names the model families that ship each projector type, for calft
// info (what people know the files by).
var projectorFamilies = map[string]string{
	"mlp":              "LLaVA-1.5, BakLLaVA, ShareGPT4V (LLaVA-NeXT adds tiles)",
	"ldp":              "MobileVLM",
	"ldpv2":            "MobileVLM V2",
	"idefics3":         "SmolVLM, SmolVLM2, Idefics3 (tiles as separate image chunks)",
	"internvl":         "InternVL 2.5 / 3",
	"resampler":        "MiniCPM-V (slices as separate image chunks)",
	"pixtral":          "Pixtral, Mistral-Small 3.1",
	"qwen2vl_merger":   "Qwen2-VL",
	"qwen2.5vl_merger": "Qwen2.5-VL",
	"qwen3vl_merger":   "Qwen3-VL (deepstack)",
	"gemma3":           "Gemma 3 (image rows attend to each other)",
	"llama4":           "Llama 4",
	"glm4v":            "GLM-4V",
	"kimivl":           "Kimi-VL",
	"lfm2":             "LFM2-VL",
}

func unknownIfZero(n int) string {
	if n == 0 {
		return "unknown"
	}
	return fmt.Sprint(n)
}

func describeAdapter(f *gguf.File, d *Description) {
	a, err := InspectAdapter(f)
	if err != nil {
		d.Problem = err
		d.add("parameters", "%s", humanCount(totalElements(f.Tensors)))
		return
	}
	d.add("architecture", "%s", a.Arch)
	if a.HasAlpha {
		d.add("alpha", "%g", a.Alpha)
	} else {
		d.add("alpha", "not set (scale 1)")
	}
	d.add("rank", "%s", strings.Trim(fmt.Sprint(a.Ranks()), "[]"))
	d.add("parameters", "%s", humanCount(a.NParams))
	d.add("targets", "%d tensors: %s", len(a.Targets), summarizeTargets(a.Targets))
}

var layerNumber = regexp.MustCompile(`^blk\.\d+\.`)

// summarizeTargets groups per-layer names: "blk.*.attn_q.weight ×30, output.weight".
func summarizeTargets(ts []LoRATarget) string {
	var order []string
	count := map[string]int{}
	for _, t := range ts {
		g := layerNumber.ReplaceAllString(t.Base, "blk.*.")
		if count[g] == 0 {
			order = append(order, g)
		}
		count[g]++
	}
	parts := make([]string, len(order))
	for i, g := range order {
		parts[i] = g
		if count[g] > 1 {
			parts[i] += fmt.Sprintf(" ×%d", count[g])
		}
	}
	return strings.Join(parts, ", ")
}

func typeHistogram(ts []gguf.TensorInfo) string {
	count := map[gguf.DType]int{}
	for _, t := range ts {
		count[t.Type]++
	}
	types := make([]gguf.DType, 0, len(count))
	for t := range count {
		types = append(types, t)
	}
	slices.Sort(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s ×%d", t, count[t])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func totalElements(ts []gguf.TensorInfo) uint64 {
	var n uint64
	for _, t := range ts {
		n += t.Elements()
	}
	return n
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
