package check

import (
	"math"
	"slices"
	"strings"

	"github.com/calft/calft/gguf"
)

// AdapterInfo describes a LoRA adapter in llama.cpp's format.
type AdapterInfo struct {
	Path     string
	Arch     string  // general.architecture of the base model it was trained for
	Alpha    float32 // adapter.lora.alpha; 0 when absent (llama.cpp then scales by 1)
	HasAlpha bool
	Targets  []LoRATarget // in the order their lora_a tensors appear
	NParams  uint64
}

// LoRATarget is one adapted base tensor: W' = W + scale·(B·A) with
// A = lora_a [n_in, rank] and B = lora_b [rank, n_out] in ggml order
// (token_embd is stored transposed: A [rank, n_vocab], B [rank, n_embd]).
type LoRATarget struct {
	Base string // base tensor name, e.g. "blk.0.attn_q.weight"
	Rank int
	A, B gguf.TensorInfo
}

// Ranks returns the distinct ranks in ascending order.
func (a *AdapterInfo) Ranks() []int {
	var rs []int
	for _, t := range a.Targets {
		if !slices.Contains(rs, t.Rank) {
			rs = append(rs, t.Rank)
		}
	}
	slices.Sort(rs)
	return rs
}

const (
	loraASuffix = ".lora_a"
	loraBSuffix = ".lora_b"
)

// Adapter opens a LoRA adapter and verifies that llama.cpp will load
// it on top of model: same architecture, every pair complete, every base
// tensor present with matching shape.
func Adapter(path string, model *TextModelInfo) (*AdapterInfo, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := InspectAdapter(f)
	if err != nil {
		return nil, err
	}
	return a, checkAdapterFits(a, model)
}

// InspectAdapter validates an adapter file on its own (without a base model).
func InspectAdapter(f *gguf.File) (*AdapterInfo, error) {
	if err := rejectOtherKinds(f, "adapter"); err != nil {
		return nil, err
	}
	if err := checkGeneral(f); err != nil {
		return nil, err
	}
	a := &AdapterInfo{Path: f.Path}
	gt, err := f.String("general.type")
	if err != nil {
		return nil, err
	}
	at, err := f.String("adapter.type")
	if err != nil {
		return nil, err
	}
	if gt != "adapter" || at != "lora" {
		return nil, gguf.Errorf(f.Path, gguf.ErrUnsupported, "general.type is %q and adapter.type is %q; llama.cpp loads only \"adapter\"/\"lora\" files", gt, at)
	}
	if a.Arch, err = f.String("general.architecture"); err != nil {
		return nil, err
	}
	if a.HasAlpha = f.Has("adapter.lora.alpha"); a.HasAlpha {
		if a.Alpha, err = f.Float32("adapter.lora.alpha"); err != nil {
			return nil, err
		}
		if math.IsNaN(float64(a.Alpha)) || math.IsInf(float64(a.Alpha), 0) {
			return nil, gguf.Errorf(f.Path, gguf.ErrCorrupt, "adapter.lora.alpha is %v; llama.cpp would scale every update by it", a.Alpha)
		}
	}
	if f.Has("adapter.alora.invocation_tokens") {
		if _, err := f.Uint32s("adapter.alora.invocation_tokens"); err != nil {
			return nil, err
		}
	}
	if err := pairLoRATensors(f, a); err != nil {
		return nil, err
	}
	return a, nil
}

func pairLoRATensors(f *gguf.File, a *AdapterInfo) error {
	index := map[string]int{}
	for _, t := range f.Tensors {
		a.NParams += t.Elements()
		var base string
		isA := strings.HasSuffix(t.Name, loraASuffix)
		switch {
		case isA:
			base = strings.TrimSuffix(t.Name, loraASuffix)
		case strings.HasSuffix(t.Name, loraBSuffix):
			base = strings.TrimSuffix(t.Name, loraBSuffix)
		case strings.HasSuffix(t.Name, "_norm.weight"):
			continue // llama.cpp skips adapted norms
		default:
			return gguf.Errorf(f.Path, gguf.ErrCorrupt, "tensor %q is neither a .lora_a nor a .lora_b tensor (llama.cpp refuses the adapter)", t.Name)
		}
		if len(t.Shape) > 2 {
			return gguf.Errorf(f.Path, gguf.ErrTensorShape, "LoRA tensor %q has shape %v; LoRA factors are matrices", t.Name, t.Shape)
		}
		i, ok := index[base]
		if !ok {
			i = len(a.Targets)
			index[base] = i
			a.Targets = append(a.Targets, LoRATarget{Base: base})
		}
		if isA {
			a.Targets[i].A = t
		} else {
			a.Targets[i].B = t
		}
	}
	for i := range a.Targets {
		t := &a.Targets[i]
		if t.A.Name == "" || t.B.Name == "" {
			return gguf.Errorf(f.Path, gguf.ErrCorrupt, "LoRA pair for %q lacks its %s tensor; the adapter is incomplete", t.Base, map[bool]string{true: "lora_b", false: "lora_a"}[t.A.Name != ""])
		}
		// The rank is the dimension A and B share: ne[1] of A and ne[0] of B,
		// except for token_embd whose factors share ne[0].
		if isTokenEmbd(t.Base) {
			if t.A.Dim(0) != t.B.Dim(0) {
				return gguf.Errorf(f.Path, gguf.ErrTensorShape, "LoRA pair for %q: lora_a %v and lora_b %v must share ne[0] (the rank)", t.Base, t.A.Shape, t.B.Shape)
			}
			t.Rank = int(t.A.Dim(0))
		} else {
			if t.A.Dim(1) != t.B.Dim(0) {
				return gguf.Errorf(f.Path, gguf.ErrTensorShape, "LoRA pair for %q: lora_a %v ne[1] must equal lora_b %v ne[0] (the rank); the adapter may be from the old \"finetune\" example, which llama.cpp no longer supports", t.Base, t.A.Shape, t.B.Shape)
			}
			t.Rank = int(t.B.Dim(0))
		}
	}
	if len(a.Targets) == 0 {
		return gguf.Errorf(f.Path, gguf.ErrCorrupt, "contains no LoRA tensors")
	}
	return nil
}

func isTokenEmbd(base string) bool { return strings.HasSuffix(base, "token_embd.weight") }

// checkAdapterFits mirrors llama_adapter_lora_init's checks against the base.
func checkAdapterFits(a *AdapterInfo, model *TextModelInfo) error {
	if a.Arch != model.Arch {
		return gguf.Errorf(a.Path, gguf.ErrMismatch, "adapter is for architecture %q but the model %s is %q; use the base model the adapter was trained on", a.Arch, model.Path, model.Arch)
	}
	for _, t := range a.Targets {
		base, ok := model.Tensors[t.Base]
		if !ok {
			hint := ""
			if t.Base == "output.weight" && model.Tied {
				hint = " (the model ties its output layer to token_embd)"
			}
			return gguf.Errorf(a.Path, gguf.ErrMismatch, "adapts tensor %q, which the model %s does not have%s; use the base model the adapter was trained on", t.Base, model.Path, hint)
		}
		var fits bool
		if isTokenEmbd(t.Base) {
			fits = base.Dim(0) == t.B.Dim(1) && base.Dim(1) == t.A.Dim(1)
		} else {
			fits = base.Dim(0) == t.A.Dim(0) && base.Dim(1) == t.B.Dim(1)
		}
		if !fits {
			return gguf.Errorf(a.Path, gguf.ErrMismatch, "LoRA pair for %q (lora_a %v, lora_b %v) does not fit the base tensor %v in %s; use the base model the adapter was trained on", t.Base, t.A.Shape, t.B.Shape, base.Shape, model.Path)
		}
	}
	return nil
}
