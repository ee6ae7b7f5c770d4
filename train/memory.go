package train

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
	"github.com/calft/calft/llava"
)

// MemoryPlan is a training run's predicted peak memory, by part, and the choices behind
// it: whether blocks are recomputed and how the backward pass multiplies with frozen
// matrices.
type MemoryPlan struct {
	Weights     int64 // the frozen model as loaded
	Copies      int64 // transposed and image-absent copies of frozen matrices
	Adapter     int64 // LoRA weights, gradients and AdamW moments
	Compute     int64 // the largest graph's compute buffer (measured on its structure)
	Checkpoints int64 // recomputation's block inputs
	Other       int64 // the rest of the process: runtime, tokenizer, vision projector
	Recompute   bool
	Kept        int    // with Recompute: the top blocks not recomputed (their activations kept)
	Products    int    // with Recompute: the lowest recomputed blocks that store their frozen products
	Backward    string // bf16, f32 (transposed copies), tiled, tiled-f32, autodiff
	Forward     string // native, bf16 (see Setup.ForwardWeights)
}

// Total is the predicted peak.
func (p MemoryPlan) Total() int64 {
	return p.Weights + p.Copies + p.Adapter + p.Compute + p.Checkpoints + p.Other
}

func (p MemoryPlan) String() string {
	rc := "off"
	switch {
	case p.Recompute && p.Kept > 0:
		rc = fmt.Sprintf("on below the top %d blocks", p.Kept)
	case p.Recompute:
		rc = "on"
	}
	if p.Recompute && p.Products > 0 {
		rc += fmt.Sprintf(", %d blocks from stored frozen products", p.Products)
	}
	return fmt.Sprintf("predicted peak memory %s: weights %s, copies %s, adapter and optimizer %s, compute %s, checkpoints %s, other %s (recompute %s, backward %s, forward %s)",
		gb(p.Total()), gb(p.Weights), gb(p.Copies), gb(p.Adapter), gb(p.Compute), gb(p.Checkpoints), gb(p.Other), rc, p.Backward, p.Forward)
}

func gb(n int64) string { return ggml.HumanBytes(int(n)) }

// baseOther is what a run's process holds besides the parts MemoryPlan counts: the Go
// runtime, libllama's tokenizer, graph structures.
const baseOther = 256 << 20

// ParseBytes reads a size such as "12GB", "800MB", "16G" or a plain number of bytes.
func ParseBytes(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || !(v > 0) || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size (use e.g. 12GB or 800MB)", s)
	}
	return int64(v * float64(mult)), nil
}

// MemoryBudget is what a run may use: maxMemory ("" or "0": what the system has
// available now, from /proc/meminfo), and how to name it in messages.
func MemoryBudget(maxMemory string) (int64, string, error) {
	if maxMemory != "" && maxMemory != "0" {
		n, err := ParseBytes(maxMemory)
		if err != nil {
			return 0, "", fmt.Errorf("--max-memory: %w", err)
		}
		return n, "--max-memory " + gb(n), nil
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, "", nil // unknown: no limit
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemAvailable: %d kB", &kb); n == 1 {
			return kb << 10, "the memory available (" + gb(kb<<10) + ")", nil
		}
	}
	return 0, "", nil
}

// copiesBytes is the memory of the copies a backward mode and the image-absent setting
// make, without making them.
func copiesBytes(m *llava.Model, backward, noImage string, calObj bool) int64 {
	var n int64
	per := map[string]int64{"bf16": 2, "f32": 4}[backward]
	for _, mat := range m.W.Matrices() {
		ne := mat.T.Ne()
		n += per * int64(ne[0]) * int64(ne[1])
		if calObj && mat.Target != "" && wantNoImageCopies(m, noImage) && ne[0]%32 == 0 {
			n += int64(ne[0]) * int64(ne[1]) * 34 / 32 // Q8_0
		}
	}
	return n
}

// wantNoImageCopies is whether the image-absent pass gets Q8_0 copies: asked for, or by
// default for a base whose block matrices are F32.
func wantNoImageCopies(m *llava.Model, noImage string) bool {
	f32 := len(m.W.Layers) > 0 && m.W.Layers[0].Wq.Type() == ggml.TypeF32
	return noImage == "q8_0" || (noImage == "auto" && f32)
}

// measureCompute builds the graphs of a shape without allocating them and returns the
// largest compute buffer one of them needs, and the recomputation's checkpoints.
func (t *Trainer) measureCompute(sh Shape, recompute bool, rt retention, backward, forward string) (compute, checkpoints int64, err error) {
	dec := &llava.Decoder{HP: t.Model.HP, W: &t.Model.W, Adapter: t.Adapter, TileType: tileType(backward),
		CPU: t.Backend.IsCPU(), ForwardBF16: forward == "bf16"}
	al := NewAllocator(t.Backend)
	defer al.Close()
	if !recompute {
		g, err := NewStepGraph(t.Backend, dec, t.Opt, sh, t.Setup.CAL, al)
		if err != nil {
			return 0, 0, err
		}
		defer g.Close()
		return int64(al.Measure(g.g)), 0, nil
	}
	r, err := newRecomputeMeasured(t.Backend, dec, t.Opt, sh, t.Setup.CAL, al, rt)
	if err != nil {
		return 0, 0, err
	}
	defer r.close()
	for _, p := range r.parts {
		compute = max(compute, int64(al.Measure(p.g)))
	}
	hp := t.Model.HP
	return compute, int64(hp.NLayer-rt.Whole+3)*int64(hp.NEmbd)*int64(sh.Rows)*4 + int64(sh.Hidden)*int64(hp.NEmbd)*4 + r.storedBytes(), nil
}

// tileType is the tiles' type of a backward mode (0: ggml's autodiff products).
func tileType(backward string) ggml.Type {
	switch backward {
	case "autodiff":
		return 0
	case "tiled-f32":
		return ggml.TypeF32
	}
	return ggml.TypeBF16
}

// plan predicts the memory of each way to run the largest step (faster ways first) and
// picks the first that fits the budget, within the choices the options leave open. With
// no way fitting, the error says what would.
func (t *Trainer) plan(sh Shape, budget int64, budgetName string, other int64, forward string) (MemoryPlan, error) {
	s := t.Setup
	var tried []MemoryPlan
	for _, rc := range recomputeChoices(s.Recompute) {
		for _, bw := range backwardChoices(s.BackwardWeights, t.Model) {
			p := MemoryPlan{Recompute: rc, Backward: bw, Forward: forward, Weights: int64(t.Model.Bytes()), Adapter: t.adapterBytes(), Other: other,
				Copies: copiesBytes(t.Model, bw, orAuto(s.NoImageWeights), s.Objective == cal.CAL)}
			var err error
			if p.Compute, p.Checkpoints, err = t.measureCompute(sh, rc, retention{}, bw, forward); err != nil {
				return p, err
			}
			if budget <= 0 || p.Total() <= budget {
				if rc {
					return t.fill(sh, p, budget, s.Recompute != "on")
				}
				return p, nil
			}
			tried = append(tried, p)
		}
	}
	best := tried[len(tried)-1] // the least memory of those tried
	over := best.Total() - budget
	perRow := (best.Compute + best.Checkpoints) / int64(max(sh.Rows, 1))
	hint := ""
	if perRow > 0 && over < best.Compute+best.Checkpoints {
		hint = fmt.Sprintf("samples of at most about %d rows (--max-rows), ", sh.Rows-int(over/perRow)-1)
	}
	return best, fmt.Errorf("a step of %d rows needs more memory than %s: %s; what would fit: %sa smaller --rank, fewer --targets, --recompute on, --backward-weights tiled, or a more quantized base",
		sh.Rows, budgetName, best, hint)
}

// keepMargin: fill plans to within 1/keepMargin of the budget (6%): measured peaks of
// recomputing steps exceeded their predictions by up to 6.5% (llama1b Q4_K_M, 704 rows,
// 6 blocks storing their products: 1659 MB for 1558; LLaVA-7B's shape: 8229 for 8148).
const keepMargin = 16

// fill takes a recomputing plan p that fits the budget and spends what the budget has
// left on speed, in two bisections (the prediction grows with each count): first the
// frozen products of as many recomputed blocks as fit are stored (each spares most of
// its block's second forward pass for its products' outputs, a fraction of the block's
// activations); then, with whole and every block's products stored, as many of the top
// blocks as still fit keep their activations entire and are not recomputed at all. It
// leaves keepMargin of the budget for the prediction's error; an unknown budget (≤ 0)
// keeps p, the least memory.
func (t *Trainer) fill(sh Shape, p MemoryPlan, budget int64, whole bool) (MemoryPlan, error) {
	if budget <= 0 {
		return p, nil
	}
	budget -= budget / keepMargin
	n := t.Model.HP.NLayer
	try := func(q MemoryPlan) (MemoryPlan, bool, error) {
		var err error
		q.Compute, q.Checkpoints, err = t.measureCompute(sh, true, retention{Whole: q.Kept, Products: q.Products}, q.Backward, q.Forward)
		return q, err == nil && q.Total() <= budget, err
	}
	best, err := bisect(p, n, func(q MemoryPlan, k int) MemoryPlan { q.Products = k; return q }, try)
	if err != nil || !whole || best.Products < n {
		return best, err
	}
	return bisect(best, n-1, func(q MemoryPlan, k int) MemoryPlan { q.Kept, q.Products = k, n-k; return q }, try)
}

// bisect returns the plan with the largest count in [0, hi] (set by with) that try finds
// fitting, p (count 0) being known to fit.
func bisect(p MemoryPlan, hi int, with func(MemoryPlan, int) MemoryPlan, try func(MemoryPlan) (MemoryPlan, bool, error)) (MemoryPlan, error) {
	best, lo := p, 0
	for lo < hi {
		mid := (lo + hi + 1) / 2
		q, fits, err := try(with(p, mid))
		if err != nil {
			return p, err
		}
		if fits {
			lo, best = mid, q
		} else {
			hi = mid - 1
		}
	}
	return best, nil
}

// forwardChoice resolves --forward-weights: "auto" is bf16 on a CPU whose ggml build
// has BF16 dot products (AVX512-BF16) when the base's layers are stored in another type
// than F32 or BF16: ggml's products on quantized and F16 types run there at a fraction
// of BF16's rate, and the dequantization costs less than the difference (llama1b, 704
// rows, measured in one run: q8_0 39.8 tok/s native, 52.4 bf16). Native elsewhere, and
// on devices, which dequantize on the fly (bf16 is a CPU kernel: a device keeps its own).
func forwardChoice(opt string, be *ggml.Backend, base ggml.Type) string {
	switch {
	case !be.IsCPU():
		return "native"
	case opt == "native" || opt == "bf16":
		return opt
	case base == ggml.TypeF32 || base == ggml.TypeBF16:
		return "native"
	case be.IsCPU() && ggml.CPUHasBF16():
		return "bf16"
	}
	return "native"
}

func recomputeChoices(opt string) []bool {
	switch opt {
	case "on":
		return []bool{true}
	case "off":
		return []bool{false}
	}
	return []bool{false, true}
}

func backwardChoices(opt string, m *llava.Model) []string {
	if opt != "" && opt != "auto" {
		return []string{opt}
	}
	// Copies of a quantized base would cost several times the base.
	if t := m.W.Layers[0].Wq.Type(); t == ggml.TypeF32 || t == ggml.TypeF16 || t == ggml.TypeBF16 {
		return []string{"bf16", "tiled"}
	}
	return []string{"tiled"}
}

// adapterBytes is the LoRA weights with their gradient accumulators and AdamW moments.
func (t *Trainer) adapterBytes() int64 { return 4 * 4 * int64(t.Adapter.NumParams()) }
