package lora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/tiny"
)

// npPermute is llama.cpp's converter permutation written as numpy evaluates it, with
// strides: w.reshape(heads, 2, rows/heads/2, cols).swapaxes(1, 2).reshape(rows, cols).
// It shares no code with permuteQK.
func npPermute(w []float32, rows, cols, heads int) []float32 {
	shape := []int{heads, 2, rows / heads / 2, cols}
	strides := make([]int, 4)
	s := 1
	for i := 3; i >= 0; i-- {
		strides[i] = s
		s *= shape[i]
	}
	shape[1], shape[2] = shape[2], shape[1]
	strides[1], strides[2] = strides[2], strides[1]
	out := make([]float32, 0, len(w))
	for a := 0; a < shape[0]; a++ {
		for b := 0; b < shape[1]; b++ {
			for c := 0; c < shape[2]; c++ {
				for d := 0; d < shape[3]; d++ {
					out = append(out, w[a*strides[0]+b*strides[1]+c*strides[2]+d*strides[3]])
				}
			}
		}
	}
	return out
}

func TestPermuteQKMatchesConverter(t *testing.T) {
	rows, cols, heads := 24, 5, 3
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(i)
	}
	want := npPermute(w, rows, cols, heads)
	got, err := permuteQK(w, rows, cols, heads, true)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("permuteQK toGGUF differs from the converter's permutation (%v)", err)
	}
	back, err := permuteQK(got, rows, cols, heads, false)
	if err != nil || !slices.Equal(back, w) {
		t.Fatalf("permuteQK does not undo itself (%v)", err)
	}
	if _, err := permuteQK(w, rows, cols, 5, true); err == nil {
		t.Error("24 rows split into 5 heads should be refused")
	}
}

// randomAdapter makes an adapter with random A and B for every target weight of a model.
func randomAdapter(t *testing.T, b Base, rank int, alpha float32, seed uint64) *HostAdapter {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	h := &HostAdapter{Arch: b.Arch, Rank: rank, Alpha: alpha}
	for name, s := range b.shapes {
		if kindOf(name) == "" || hfModules[kindOf(name)] == "" {
			continue
		}
		p := HostPair{Base: name, NIn: s[0], NOut: s[1], A: make([]float32, rank*s[0]), B: make([]float32, rank*s[1])}
		for i := range p.A {
			p.A[i] = float32(rng.NormFloat64() * 0.2)
		}
		for i := range p.B {
			p.B[i] = float32(rng.NormFloat64() * 0.2)
		}
		h.Pairs = append(h.Pairs, p)
	}
	slices.SortFunc(h.Pairs, func(a, b HostPair) int { return strings.Compare(tensorOrder(a.Base), tensorOrder(b.Base)) })
	return h
}

func tinyBase(t *testing.T, archName string) (string, Base) {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, tiny.Options{Seed: 5, Arch: archName}); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, tiny.BaseFile)
	b, err := BaseOf(model)
	if err != nil {
		t.Fatal(err)
	}
	return model, b
}

// TestPEFTMergeEqualsHF is the numeric check of the PEFT bridge: for each adapted weight,
// the Hugging Face weight plus scale·B_hf·A_hf (from the exported safetensors), permuted
// as llama.cpp's converter permutes attn_q and attn_k, must equal the GGUF weight that
// calft's merge writes. The Hugging Face weight is the tiny GGUF's weight with the
// converter's permutation undone.
func TestPEFTMergeEqualsHF(t *testing.T) {
	for _, archName := range []string{tiny.ArchLlama, tiny.ArchQwen2, tiny.ArchQwen2VL} {
		t.Run(archName, func(t *testing.T) {
			model, b := tinyBase(t, archName)
			h := randomAdapter(t, b, 4, 8, 1)
			dir := t.TempDir()
			merged := filepath.Join(dir, "merged.gguf")
			if err := Merge(model, h, merged, MergeOptions{Type: gguf.F32}); err != nil {
				t.Fatal(err)
			}
			peftDir := filepath.Join(dir, "peft")
			if err := h.SavePEFT(peftDir, b, "f32"); err != nil {
				t.Fatal(err)
			}
			ts, meta, err := ReadSafetensors(filepath.Join(peftDir, PEFTWeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			if meta["format"] != "pt" || len(ts) != 2*len(h.Pairs) {
				t.Fatalf("metadata %v, %d tensors for %d pairs", meta, len(ts), len(h.Pairs))
			}
			byName := map[string]STensor{}
			for _, st := range ts {
				byName[st.Name] = st
			}
			maxDiff, permuted := hfMergeDiff(t, model, merged, h, b, byName)
			t.Logf("%s: %d weights, %d of them permuted q/k: max |W_gguf merged − permute(W_hf + s·B_hf·A_hf)| = %g", archName, len(h.Pairs), permuted, maxDiff)
			if maxDiff > 1e-6 {
				t.Errorf("max abs difference %g", maxDiff)
			}
			if wantPermuted := map[string]int{"llama": 2 * tiny.NLayer, "qwen2": 0, "qwen2vl": 0}[archName]; permuted != wantPermuted {
				t.Errorf("%d weights permuted, want %d", permuted, wantPermuted)
			}
			// The adapter read back from the PEFT folder merges to the same bytes.
			back, err := ReadAny(peftDir, b)
			if err != nil {
				t.Fatal(err)
			}
			merged2 := filepath.Join(dir, "merged2.gguf")
			if err := Merge(model, back, merged2, MergeOptions{Type: gguf.F32}); err != nil {
				t.Fatal(err)
			}
			if !sameFile(t, merged, merged2) {
				t.Error("merging the adapter read back from PEFT gives other bytes")
			}
		})
	}
}

// hfMergeDiff computes the Hugging Face side of each merged weight and returns the
// largest difference from calft's merged GGUF, and how many weights were permuted.
func hfMergeDiff(t *testing.T, model, merged string, h *HostAdapter, b Base, byName map[string]STensor) (float64, int) {
	fb, err := gguf.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	fm, err := gguf.Open(merged)
	if err != nil {
		t.Fatal(err)
	}
	defer fm.Close()
	modules := map[string]string{"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
		"attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
	maxDiff, permuted := 0.0, 0
	for _, p := range h.Pairs {
		var layer int
		var kind string
		fmt.Sscanf(strings.ReplaceAll(p.Base, ".", " "), "blk %d %s weight", &layer, &kind)
		name := fmt.Sprintf("base_model.model.model.layers.%d.%s", layer, modules[kind])
		a, bt := byName[name+".lora_A.weight"], byName[name+".lora_B.weight"]
		if !slices.Equal(a.Shape, []int{h.Rank, p.NIn}) || !slices.Equal(bt.Shape, []int{p.NOut, h.Rank}) {
			t.Fatalf("%s: A %v, B %v", name, a.Shape, bt.Shape)
		}
		heads := 0
		if b.Arch == "llama" && kind == "attn_q" {
			heads = tiny.NHead
		} else if b.Arch == "llama" && kind == "attn_k" {
			heads = tiny.NHeadKV
		}
		wg, err := fb.TensorF32(p.Base)
		if err != nil {
			t.Fatal(err)
		}
		perm := func(w []float32) []float32 { return w }
		whf := wg
		if heads > 0 {
			permuted++
			perm = func(w []float32) []float32 { return npPermute(w, p.NOut, p.NIn, heads) }
			whf = unpermute(wg, p.NOut, p.NIn, heads)
		}
		m := make([]float32, len(whf))
		for o := 0; o < p.NOut; o++ {
			for i := 0; i < p.NIn; i++ {
				var acc float64
				for r := 0; r < h.Rank; r++ {
					acc += float64(bt.Data[o*h.Rank+r]) * float64(a.Data[r*p.NIn+i])
				}
				m[o*p.NIn+i] = float32(float64(whf[o*p.NIn+i]) + float64(h.Scale())*acc)
			}
		}
		got, err := fm.TensorF32(p.Base)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range perm(m) {
			maxDiff = math.Max(maxDiff, math.Abs(float64(v-got[i])))
		}
	}
	return maxDiff, permuted
}

// unpermute inverts npPermute by following where each row goes.
func unpermute(w []float32, rows, cols, heads int) []float32 {
	idx := make([]float32, rows)
	for i := range idx {
		idx[i] = float32(i)
	}
	dst := npPermute(idx, rows, 1, heads) // dst[g] = the Hugging Face row that lands at g
	out := make([]float32, len(w))
	for g, f := range dst {
		copy(out[int(f)*cols:(int(f)+1)*cols], w[g*cols:(g+1)*cols])
	}
	return out
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(da, db)
}

// TestPEFTRoundTrip: GGUF adapter → PEFT → GGUF adapter gives the same file, in each of
// the safetensors types that hold the values exactly.
func TestPEFTRoundTrip(t *testing.T) {
	_, b := tinyBase(t, tiny.ArchLlama)
	h := randomAdapter(t, b, 3, 5.5, 2)
	dir := t.TempDir()
	for _, c := range []struct {
		gg gguf.DType
		st string
	}{{gguf.F32, "f32"}, {gguf.F16, "f32"}, {gguf.F16, "f16"}} {
		first := filepath.Join(dir, "first.gguf")
		if err := h.Save(first, c.gg); err != nil {
			t.Fatal(err)
		}
		h1, err := Read(first)
		if err != nil {
			t.Fatal(err)
		}
		peftDir := filepath.Join(dir, "peft-"+c.st)
		if err := h1.SavePEFT(peftDir, b, c.st); err != nil {
			t.Fatal(err)
		}
		back, err := ReadAny(peftDir, b)
		if err != nil {
			t.Fatal(err)
		}
		second := filepath.Join(dir, "second.gguf")
		if err := back.Save(second, c.gg); err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, first, second) {
			t.Errorf("%s adapter via %s safetensors: the files differ", c.gg, c.st)
		}
	}
	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, "peft-f32", PEFTConfigFile))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["peft_type"] != "LORA" || cfg["r"] != 3.0 || cfg["lora_alpha"] != 5.5 || cfg["bias"] != "none" || cfg["task_type"] != "CAUSAL_LM" ||
		fmt.Sprint(cfg["target_modules"]) != "[q_proj k_proj v_proj o_proj gate_proj up_proj down_proj]" {
		t.Errorf("adapter_config.json: %s", raw)
	}
}

// TestPEFTPrefix writes a LLaVA-style adapter (text model under language_model.model),
// adds a vision tower's LoRA to it, and reads it back with and without the prefix.
func TestPEFTPrefix(t *testing.T) {
	_, b := tinyBase(t, tiny.ArchQwen2)
	h := randomAdapter(t, b, 2, 4, 3)
	dir := t.TempDir()
	b.Prefix = "language_model.model"
	if err := h.SavePEFT(dir, b, "bf16"); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, PEFTConfigFile))
	if !strings.Contains(string(raw), `"target_modules": "language_model\\.model\\.layers\\.\\d+\\.(self_attn\\.q_proj|`) {
		t.Errorf("a prefixed adapter should name its modules by a regular expression: %s", raw)
	}
	wpath := filepath.Join(dir, PEFTWeightsFile)
	ts, _, err := ReadSafetensors(wpath)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range ts {
		if !strings.HasPrefix(st.Name, "base_model.model.language_model.model.layers.") {
			t.Fatalf("tensor %s", st.Name)
		}
	}
	// Read without a prefix, the prefix is found from the names.
	plain := b
	plain.Prefix = ""
	back, err := ReadAny(dir, plain)
	if err != nil || len(back.Pairs) != len(h.Pairs) {
		t.Fatalf("reading a prefixed adapter: %v", err)
	}
	ts = append(ts,
		STensor{Name: "base_model.model.vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.lora_A.weight", Shape: []int{2, 3}, Data: make([]float32, 6)},
		STensor{Name: "base_model.model.vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.lora_B.weight", Shape: []int{3, 2}, Data: make([]float32, 6)})
	if err := WriteSafetensors(wpath, ts, STF32, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAny(dir, plain); err == nil || !strings.Contains(err.Error(), "--peft-prefix") {
		t.Errorf("a vision tower's LoRA without --peft-prefix: %v", err)
	}
	back, err = ReadAny(dir, b)
	if err != nil || len(back.Pairs) != len(h.Pairs) {
		t.Fatalf("with the prefix, the vision tower should be skipped: %v", err)
	}
	// BF16 holds the values to 8 bits of mantissa.
	maxDiff := 0.0
	for i, p := range back.Pairs {
		for j, v := range p.B {
			maxDiff = math.Max(maxDiff, math.Abs(float64(v-h.Pairs[i].B[j])))
		}
	}
	if maxDiff > 0.01 {
		t.Errorf("bf16 round trip differs by %g", maxDiff)
	}
}

// TestReadPEFTRefusals: adapters calft cannot express as a llama.cpp LoRA, or broken
// folders, give an error naming the file and the reason; use_rslora is converted.
func TestReadPEFTRefusals(t *testing.T) {
	_, b := tinyBase(t, tiny.ArchLlama)
	h := randomAdapter(t, b, 2, 4, 4)
	good := t.TempDir()
	if err := h.SavePEFT(good, b, "f32"); err != nil {
		t.Fatal(err)
	}
	cfg, _ := os.ReadFile(filepath.Join(good, PEFTConfigFile))
	ts, _, _ := ReadSafetensors(filepath.Join(good, PEFTWeightsFile))
	folder := func(name string, cfg []byte, ts []STensor) string {
		dir := filepath.Join(t.TempDir(), name)
		os.MkdirAll(dir, 0o755)
		if cfg != nil {
			os.WriteFile(filepath.Join(dir, PEFTConfigFile), cfg, 0o644)
		}
		if ts != nil {
			if err := WriteSafetensors(filepath.Join(dir, PEFTWeightsFile), ts, STF32, nil); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	edit := func(old, new string) []byte { return bytes.Replace(cfg, []byte(old), []byte(new), 1) }
	without := func(suffix string) []STensor {
		var out []STensor
		for _, st := range ts {
			if !strings.HasSuffix(st.Name, suffix) {
				out = append(out, st)
			}
		}
		return out
	}
	pickle := folder("pickle", cfg, nil)
	os.WriteFile(filepath.Join(pickle, "adapter_model.bin"), []byte("pickle"), 0o644)
	extra := append(slices.Clone(ts), STensor{Name: "base_model.model.lm_head.weight", Shape: []int{1}, Data: []float32{1}})
	cases := []struct {
		name, path, want string
	}{
		{"no config", folder("noconfig", nil, ts), PEFTConfigFile},
		{"not json", folder("notjson", []byte("r = 8"), ts), "not a PEFT adapter config"},
		{"prefix tuning", folder("prefix", edit(`"LORA"`, `"PREFIX_TUNING"`), ts), "PREFIX_TUNING"},
		{"dora", folder("dora", edit(`"bias"`, `"use_dora": true, "bias"`), ts), "use_dora"},
		{"bias", folder("bias", edit(`"bias": "none"`, `"bias": "all"`), ts), `bias is "all"`},
		{"modules to save", folder("mts", edit(`"modules_to_save": null`, `"modules_to_save": ["lm_head"]`), ts), "modules_to_save"},
		{"rank pattern", folder("rp", edit(`"bias"`, `"rank_pattern": {"q_proj": 8}, "bias"`), ts), "rank_pattern"},
		{"pissa", folder("pissa", edit(`"init_lora_weights": true`, `"init_lora_weights": "pissa"`), ts), "pissa"},
		{"zero alpha", folder("alpha0", edit(`"lora_alpha": 4`, `"lora_alpha": 0`), ts), "lora_alpha"},
		{"wrong rank", folder("rank", edit(`"r": 2`, `"r": 3`), ts), "rank 3"},
		{"A without B", folder("nob", cfg, without("q_proj.lora_B.weight")), "only one of lora_A and lora_B"},
		{"lm_head", folder("lmhead", cfg, extra), "lm_head"},
		{"pickle", pickle, "adapter_model.bin"},
		{"no weights", folder("noweights", cfg, nil), PEFTWeightsFile},
		{"missing", filepath.Join(good, "nothere"), "nothere"},
	}
	for _, c := range cases {
		_, err := ReadAny(c.path, b)
		if err == nil || !strings.Contains(err.Error(), c.path) && !strings.Contains(err.Error(), filepath.Base(c.path)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
	// A PEFT folder needs the base's family; another model's shapes are refused.
	if _, err := ReadAny(good, Base{}); err == nil || !strings.Contains(err.Error(), "family") {
		t.Errorf("no base: %v", err)
	}
	_, qb := tinyBase(t, tiny.ArchQwen2)
	qb.shapes["blk.0.attn_q.weight"] = [2]int{64, 32}
	if _, err := ReadAny(good, qb); err == nil || !strings.Contains(err.Error(), "blk.0.attn_q.weight") {
		t.Errorf("another model: %v", err)
	}
	// use_rslora: scale alpha/√r, kept as alpha·√r/r.
	rs := folder("rslora", edit(`"use_rslora": false`, `"use_rslora": true`), ts)
	got, err := ReadAny(rs, b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(got.Scale())-4/math.Sqrt(2)) > 1e-6 {
		t.Errorf("rslora: scale %v, want %v", got.Scale(), 4/math.Sqrt(2))
	}
	// The weights file may be named directly.
	if _, err := ReadAny(filepath.Join(good, PEFTWeightsFile), b); err != nil {
		t.Error(err)
	}
}
