package check_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/tiny"
)

// fuzzAdapterBytes writes a rank-r adapter for the named tensors of model; edit may
// change the writer last.
func fuzzAdapterBytes(f *testing.F, model *check.TextModelInfo, arch string, r uint64, targets []string, edit func(w *gguf.Writer)) []byte {
	f.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.StringValue(arch))
	w.Set("general.type", gguf.StringValue("adapter"))
	w.Set("adapter.type", gguf.StringValue("lora"))
	w.Set("adapter.lora.alpha", gguf.Float32Value(2*float32(r)))
	add := func(name string, a, b uint64) {
		if err := w.AddTensorF32(name, gguf.F32, []uint64{a, b}, make([]float32, a*b)); err != nil {
			f.Fatal(err)
		}
	}
	for _, name := range targets {
		base := model.Tensors[name]
		if name == "token_embd.weight" {
			add(name+".lora_a", r, base.Shape[1])
			add(name+".lora_b", r, base.Shape[0])
			continue
		}
		add(name+".lora_a", base.Shape[0], r)
		add(name+".lora_b", r, base.Shape[1])
	}
	if edit != nil {
		edit(w)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		f.Fatal(err)
	}
	return b.Bytes()
}

// FuzzAdapter checks arbitrary files as adapters of the tiny model, and describes them:
// an error, or an adapter every pair of which fits a tensor of the model.
func FuzzAdapter(f *testing.F) {
	dir := f.TempDir()
	if err := tiny.Generate(dir, 7); err != nil {
		f.Fatal(err)
	}
	model, err := check.TextModel(filepath.Join(dir, tiny.BaseFile))
	if err != nil {
		f.Fatal(err)
	}
	targets := []string{"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "output.weight", "token_embd.weight"}
	f.Add(fuzzAdapterBytes(f, model, "llama", 4, targets, nil))
	f.Add(fuzzAdapterBytes(f, model, "qwen2", 2, targets[:1], nil))
	f.Add(fuzzAdapterBytes(f, model, "llama", 2, targets[:2], func(w *gguf.Writer) {
		w.Set("adapter.alora.invocation_tokens", gguf.ArrayValue([]uint32{1, 2, 3}))
		w.AddTensorF32("blk.0.attn_norm.weight", gguf.F32, []uint64{4}, make([]float32, 4))
	}))
	f.Add(fuzzAdapterBytes(f, model, "llama", 2, targets[2:], func(w *gguf.Writer) {
		w.Set("adapter.lora.alpha", gguf.Float32Value(float32(math.Inf(-1))))
	}))
	f.Add(fuzzAdapterBytes(f, model, "llama", 2, nil, func(w *gguf.Writer) {
		w.AddTensorF32("blk.0.attn_k.weight.lora_a", gguf.F32, []uint64{3, 2}, make([]float32, 6))
		w.AddTensorF32("blk.0.attn_k.weight.lora_b", gguf.F32, []uint64{2, 5, 1}, make([]float32, 10))
		w.AddTensorF32("blk.0.attn_v.weight.lora_b", gguf.F32, []uint64{2, 5}, make([]float32, 10))
	}))
	path := filepath.Join(dir, "in.gguf")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if d, err := check.Describe(path); err == nil {
			_ = d.String()
		}
		a, err := check.Adapter(path, model)
		if err != nil {
			return
		}
		if a.Arch != model.Arch || len(a.Targets) == 0 || math.IsNaN(float64(a.Alpha)) || math.IsInf(float64(a.Alpha), 0) {
			t.Fatalf("accepted arch %q with %d targets, alpha %v", a.Arch, len(a.Targets), a.Alpha)
		}
		for _, tg := range a.Targets {
			if _, ok := model.Tensors[tg.Base]; !ok || tg.A.Name == "" || tg.B.Name == "" {
				t.Fatalf("accepted pair %+v", tg)
			}
		}
		_ = a.Ranks()
	})
}
