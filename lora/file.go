package lora

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/llava"
)

// Adapter GGUF keys that llama.cpp reads (llama_adapter_lora_init).
const (
	keyType      = "general.type"
	keyArch      = "general.architecture"
	keyLoRAType  = "adapter.type"
	keyAlpha     = "adapter.lora.alpha"
	keyRank      = "calft.lora.rank"
	keyTargets   = "calft.lora.targets"
	suffixA      = ".lora_a"
	suffixB      = ".lora_b"
	adapterValue = "adapter"
	loraValue    = "lora"
)

// HostPair is an adapter pair held in host memory, as read from or written to a file.
type HostPair struct {
	Base      string
	NIn, NOut int
	A, B      []float32 // A: n_in×r (n_in fastest), B: r×n_out (r fastest)
}

// HostAdapter is an adapter in host memory.
type HostAdapter struct {
	Arch  string
	Rank  int
	Alpha float32
	Pairs []HostPair
}

// Scale is alpha/rank.
func (h *HostAdapter) Scale() float32 { return h.Alpha / float32(h.Rank) }

// ToHost copies the adapter's tensors out of the backend.
func (ad *Adapter) ToHost(arch string) *HostAdapter {
	h := &HostAdapter{Arch: arch, Rank: ad.Rank, Alpha: ad.Alpha}
	for _, p := range ad.Pairs {
		h.Pairs = append(h.Pairs, HostPair{Base: p.Base, NIn: p.NIn, NOut: p.NOut, A: p.A.F32(), B: p.B.F32()})
	}
	return h
}

// FromHost sets the adapter's tensors from host values with the same layout.
func (ad *Adapter) FromHost(h *HostAdapter) error {
	if h.Rank != ad.Rank {
		return fmt.Errorf("it has rank %d, this run's adapter rank %d: pass --rank %d", h.Rank, ad.Rank, h.Rank)
	}
	if len(h.Pairs) != len(ad.Pairs) {
		return fmt.Errorf("it adapts %d matrices, this run's adapter %d: pass the --targets it was trained with", len(h.Pairs), len(ad.Pairs))
	}
	// Files list pairs in any order (llama.cpp and converters differ): match by name.
	for _, hp := range h.Pairs {
		p := ad.byBase[hp.Base]
		if p == nil {
			return fmt.Errorf("the values adapt %s, which this adapter does not target", hp.Base)
		}
		if hp.NIn != p.NIn || hp.NOut != p.NOut {
			return fmt.Errorf("%s is [%d→%d] here, the values are [%d→%d]", p.Base, p.NIn, p.NOut, hp.NIn, hp.NOut)
		}
		p.A.SetF32(hp.A)
		p.B.SetF32(hp.B)
	}
	if h.Alpha != ad.Alpha {
		return fmt.Errorf("the values were trained with alpha %g, this adapter has alpha %g; use the same --alpha", h.Alpha, ad.Alpha)
	}
	return nil
}

// NewFromHost allocates an adapter on be holding the host values.
func NewFromHost(be *ggml.Backend, h *HostAdapter) (*Adapter, error) {
	shapes := make([]shape, len(h.Pairs))
	for i, p := range h.Pairs {
		shapes[i] = shape{p.Base, p.NIn, p.NOut}
	}
	ad, err := alloc(be, h.Rank, h.Alpha, shapes)
	if err != nil {
		return nil, err
	}
	// alloc sorts the pairs; match values by name.
	byBase := map[string]HostPair{}
	for _, p := range h.Pairs {
		byBase[p.Base] = p
	}
	for _, p := range ad.Pairs {
		p.A.SetF32(byBase[p.Base].A)
		p.B.SetF32(byBase[p.Base].B)
	}
	return ad, nil
}

// Save writes the adapter in llama.cpp's adapter GGUF format, atomically. dtype is
// gguf.F32 or gguf.F16.
func (h *HostAdapter) Save(path string, dtype gguf.DType) error {
	if dtype != gguf.F32 && dtype != gguf.F16 {
		return fmt.Errorf("%s: adapters are written as F32 or F16, not %s", path, dtype)
	}
	w := gguf.NewWriter()
	w.Set(keyType, gguf.StringValue(adapterValue))
	w.Set(keyArch, gguf.StringValue(h.Arch))
	w.Set(keyLoRAType, gguf.StringValue(loraValue))
	w.Set(keyAlpha, gguf.Float32Value(h.Alpha))
	w.Set(keyRank, gguf.Uint32Value(uint32(h.Rank)))
	var kinds []string
	seen := map[string]bool{}
	for _, p := range h.Pairs {
		if k := kindOf(p.Base); k != "" && !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	w.Set(keyTargets, gguf.StringValue(strings.Join(kinds, ",")))
	for _, p := range h.Pairs {
		base := p.Base
		if err := w.AddTensor(base+suffixA, dtype, []uint64{uint64(p.NIn), uint64(h.Rank)}, encode(p.A, dtype)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := w.AddTensor(base+suffixB, dtype, []uint64{uint64(h.Rank), uint64(p.NOut)}, encode(p.B, dtype)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return w.WriteFile(path)
}

func encode(v []float32, dtype gguf.DType) []byte {
	if dtype == gguf.F16 {
		out := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], gguf.Float32ToFloat16(x))
		}
		return out
	}
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

// Read loads an adapter GGUF (F32, F16, BF16 or Q8_0 tensors) into host memory,
// checking its metadata and that every lora_a has its lora_b.
func Read(path string) (*HostAdapter, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if t, err := f.String(keyType); err != nil || t != adapterValue {
		return nil, fmt.Errorf("%s: not an adapter (general.type is not %q); pass a LoRA adapter GGUF", path, adapterValue)
	}
	if t, err := f.String(keyLoRAType); err != nil || t != loraValue {
		return nil, fmt.Errorf("%s: adapter.type is not %q; calft reads LoRA adapters only", path, loraValue)
	}
	h := &HostAdapter{}
	if h.Arch, err = f.String(keyArch); err != nil {
		return nil, err
	}
	if h.Alpha, err = f.Float32(keyAlpha); err != nil {
		return nil, err
	}
	if math.IsNaN(float64(h.Alpha)) || math.IsInf(float64(h.Alpha), 0) {
		return nil, fmt.Errorf("%s: %s is %v, not a finite number; the adapter is damaged", path, keyAlpha, h.Alpha)
	}
	for _, ti := range f.Tensors {
		if !strings.HasSuffix(ti.Name, suffixA) {
			if !strings.HasSuffix(ti.Name, suffixB) {
				return nil, fmt.Errorf("%s: tensor %s is neither a .lora_a nor a .lora_b", path, ti.Name)
			}
			if _, ok := f.Tensor(strings.TrimSuffix(ti.Name, suffixB) + suffixA); !ok {
				return nil, fmt.Errorf("%s: %s has no matching %s", path, ti.Name, strings.TrimSuffix(ti.Name, suffixB)+suffixA)
			}
			continue
		}
		base := strings.TrimSuffix(ti.Name, suffixA)
		tb, ok := f.Tensor(base + suffixB)
		if !ok {
			return nil, fmt.Errorf("%s: %s has no matching %s", path, ti.Name, base+suffixB)
		}
		if len(ti.Shape) != 2 || len(tb.Shape) != 2 || ti.Shape[1] != tb.Shape[0] {
			return nil, fmt.Errorf("%s: %s %v and %s %v do not form a LoRA pair (A [n_in, r], B [r, n_out])",
				path, ti.Name, ti.Shape, tb.Name, tb.Shape)
		}
		r := int(ti.Shape[1])
		if h.Rank == 0 {
			h.Rank = r
		} else if h.Rank != r {
			return nil, fmt.Errorf("%s: mixed ranks (%d and %d) are not supported", path, h.Rank, r)
		}
		a, err := f.TensorF32(ti.Name)
		if err != nil {
			return nil, err
		}
		b, err := f.TensorF32(tb.Name)
		if err != nil {
			return nil, err
		}
		// A NaN or infinity would spread through every product it enters: the merged
		// weights, or a training run started from this adapter.
		for _, t := range []struct {
			name string
			v    []float32
		}{{ti.Name, a}, {tb.Name, b}} {
			if i := nonFinite(t.v); i >= 0 {
				return nil, fmt.Errorf("%s: tensor %s holds %v at element %d; the adapter is damaged (or its training diverged): use an earlier checkpoint", path, t.name, t.v[i], i)
			}
		}
		h.Pairs = append(h.Pairs, HostPair{Base: base, NIn: int(ti.Shape[0]), NOut: int(tb.Shape[1]), A: a, B: b})
	}
	if len(h.Pairs) == 0 {
		return nil, fmt.Errorf("%s: the adapter has no lora_a/lora_b tensors", path)
	}
	return h, nil
}

// nonFinite returns the index of the first NaN or infinity in v, or -1.
func nonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// Fits reports the first pair that does not match the decoder's weights: a base weight
// the model does not have, or a different shape. A mismatched adapter must be refused
// before it reaches a graph, where ggml would abort on the product's shapes.
func (h *HostAdapter) Fits(w *llava.Weights) error {
	shapes := map[string][2]int{}
	for _, m := range w.Matrices() {
		ne := m.T.Ne()
		shapes[m.Name] = [2]int{ne[0], ne[1]}
	}
	for _, p := range h.Pairs {
		s, ok := shapes[p.Base]
		switch {
		case !ok:
			return fmt.Errorf("the adapter updates %s, which the model has no adapter-capable weight of that name; was it trained on another model?", p.Base)
		case s != [2]int{p.NIn, p.NOut}:
			return fmt.Errorf("the adapter's %s maps %d → %d, the model's weight %d → %d; it was trained on another model", p.Base, p.NIn, p.NOut, s[0], s[1])
		}
	}
	return nil
}
