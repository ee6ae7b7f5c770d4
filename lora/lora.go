// Package lora owns the trainable low-rank adapters: which linear weights get one, their
// initialisation, the tensors on the compute backend, llama.cpp's adapter GGUF format,
// and merging an adapter into its base.
package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/llava"
)

// Config says where adapters go and how large they are.
type Config struct {
	Rank    int
	Alpha   float32
	Targets []string // module kinds (attn_q, ffn_up, …), their PEFT names (q_proj, …), or "all"
}

// peftNames maps the module names people know from PEFT to llama.cpp's tensor kinds.
var peftNames = map[string]string{
	"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
	"gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
}

// NormalizeTargets resolves the names a user gives (target kinds, their PEFT names,
// "attn", "mlp" or "all") against an architecture's target kinds (arch.Arch.Targets);
// nothing given means all of them. A name that matches no projection is an error.
func NormalizeTargets(targets, known []string) ([]string, error) {
	if len(targets) == 0 {
		return known, nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(match func(string) bool) {
		for _, k := range known {
			if match(k) && !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	for _, t := range targets {
		t = strings.TrimSpace(t)
		if p := peftNames[t]; p != "" {
			t = p
		}
		switch {
		case t == "all" || t == "all-linear":
			add(func(string) bool { return true })
		case t == "attn":
			add(func(k string) bool { return strings.HasPrefix(k, "attn_") })
		case t == "mlp" || t == "ffn":
			add(func(k string) bool { return strings.HasPrefix(k, "ffn_") })
		case slices.Contains(known, t):
			add(func(k string) bool { return k == t })
		default:
			return nil, fmt.Errorf("unknown LoRA target %q; use any of %s, their PEFT names (q_proj, …), attn, mlp or all",
				t, strings.Join(known, ", "))
		}
	}
	return out, nil
}

// kindOf turns "blk.3.attn_q.weight" into "attn_q".
func kindOf(name string) string {
	parts := strings.Split(name, ".")
	if len(parts) == 4 && parts[0] == "blk" && parts[3] == "weight" {
		return parts[2]
	}
	return ""
}

// Pair is the adapter of one base weight: A [n_in, r], B [r, n_out].
type Pair struct {
	Base      string // base tensor name, e.g. blk.0.attn_q.weight
	A, B      ggml.Tensor
	NIn, NOut int
}

// Adapter is a set of LoRA pairs living in one backend buffer.
type Adapter struct {
	Rank  int
	Alpha float32
	Pairs []*Pair

	byBase map[string]*Pair
	ctx    *ggml.Context
	buf    *ggml.Buffer
	drop   *dropout // nil: no dropout
}

// Scale is alpha/rank, the factor llama.cpp applies at scale 1.
func (ad *Adapter) Scale() float32 { return ad.Alpha / float32(ad.Rank) }

// LoRA implements llava.Adapter.
func (ad *Adapter) LoRA(weight string) (a, b ggml.Tensor, scale float32, ok bool) {
	p := ad.byBase[weight]
	if p == nil {
		return ggml.Tensor{}, ggml.Tensor{}, 0, false
	}
	return p.A, p.B, ad.Scale(), true
}

// Pair returns the adapter of a base weight, or nil.
func (ad *Adapter) Pair(base string) *Pair { return ad.byBase[base] }

// Params lists every trainable tensor, A then B of each pair, in a fixed order.
func (ad *Adapter) Params() []ggml.Tensor {
	out := make([]ggml.Tensor, 0, 2*len(ad.Pairs))
	for _, p := range ad.Pairs {
		out = append(out, p.A, p.B)
	}
	return out
}

// NumParams counts the trainable numbers.
func (ad *Adapter) NumParams() int {
	n := 0
	for _, p := range ad.Pairs {
		n += ad.Rank * (p.NIn + p.NOut)
	}
	return n
}

// Close frees the adapter's tensors.
func (ad *Adapter) Close() {
	if ad.drop != nil {
		ad.drop.buf.Close()
		ad.drop.ctx.Close()
	}
	ad.buf.Close()
	ad.ctx.Close()
}

// shape is a base weight's name and [n_in, n_out].
type shape struct {
	name      string
	nIn, nOut int
}

// New makes zero-valued adapters for the targeted weights of a decoder, on backend be.
func New(be *ggml.Backend, w *llava.Weights, cfg Config) (*Adapter, error) {
	targets, err := NormalizeTargets(cfg.Targets, w.Arch.Targets())
	if err != nil {
		return nil, err
	}
	if cfg.Rank <= 0 {
		return nil, fmt.Errorf("LoRA rank must be positive, got %d", cfg.Rank)
	}
	var shapes []shape
	for _, m := range w.Matrices() {
		if m.Target != "" && slices.Contains(targets, m.Target) {
			ne := m.T.Ne()
			shapes = append(shapes, shape{m.Name, ne[0], ne[1]})
		}
	}
	if len(shapes) == 0 {
		return nil, fmt.Errorf("no weight of the model matches LoRA targets %v", targets)
	}
	// An update B·A has rank at most min(n_in, n_out): a larger rank only costs memory.
	for _, sh := range shapes {
		if lim := min(sh.nIn, sh.nOut); cfg.Rank > lim {
			return nil, fmt.Errorf("--rank %d exceeds what %s (%d → %d) can hold: a LoRA update has rank at most %d there; use --rank %d or less",
				cfg.Rank, sh.name, sh.nIn, sh.nOut, lim, lim)
		}
	}
	return alloc(be, cfg.Rank, cfg.Alpha, shapes)
}

func alloc(be *ggml.Backend, rank int, alpha float32, shapes []shape) (*Adapter, error) {
	sort.SliceStable(shapes, func(i, j int) bool { return tensorOrder(shapes[i].name) < tensorOrder(shapes[j].name) })
	ctx := ggml.NewContext((2*len(shapes)+1)*ggml.TensorOverhead(), true)
	ad := &Adapter{Rank: rank, Alpha: alpha, byBase: map[string]*Pair{}, ctx: ctx}
	for _, s := range shapes {
		base := strings.TrimSuffix(s.name, ".weight")
		p := &Pair{
			Base: s.name, NIn: s.nIn, NOut: s.nOut,
			A: ctx.NewTensor(ggml.TypeF32, s.nIn, rank).SetName(base + ".weight.lora_a"),
			B: ctx.NewTensor(ggml.TypeF32, rank, s.nOut).SetName(base + ".weight.lora_b"),
		}
		ad.Pairs = append(ad.Pairs, p)
		ad.byBase[s.name] = p
	}
	buf, err := be.AllocTensors(ctx)
	if err != nil {
		ctx.Close()
		return nil, fmt.Errorf("the LoRA adapter (rank %d): %w", rank, err)
	}
	buf.Clear(0)
	ad.buf = buf
	return ad, nil
}

// tensorOrder sorts blk.N.* by layer number, then by name, so files are stable.
func tensorOrder(name string) string {
	var layer int
	var rest string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &layer, &rest); n == 2 {
		return fmt.Sprintf("blk.%06d.%s", layer, rest)
	}
	return name
}

// InitStandard sets A to Kaiming-uniform values (bound 1/√n_in, as PEFT does) and B to
// zero, so the adapter starts as the identity update and A still gets a gradient.
func (ad *Adapter) InitStandard(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x10aa))
	for _, p := range ad.Pairs {
		bound := 1 / math.Sqrt(float64(p.NIn))
		a := make([]float32, p.NIn*ad.Rank)
		for i := range a {
			a[i] = float32((2*rng.Float64() - 1) * bound)
		}
		p.A.SetF32(a)
		p.B.Zero()
	}
}

// InitRandom gives both A and B random values of the given size (tests and checks that
// need a non-zero update).
func (ad *Adapter) InitRandom(seed uint64, std float64) {
	rng := rand.New(rand.NewPCG(seed, 0x10bb))
	for _, p := range ad.Pairs {
		for _, t := range []ggml.Tensor{p.A, p.B} {
			v := make([]float32, t.NElements())
			for i := range v {
				v[i] = float32(rng.NormFloat64() * std)
			}
			t.SetF32(v)
		}
	}
}
