package lora

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/calft/calft/gguf"
)

func fuzzAdapter() *HostAdapter {
	return &HostAdapter{Arch: "llama", Rank: 2, Alpha: 4, Pairs: []HostPair{
		{Base: "blk.0.attn_q.weight", NIn: 3, NOut: 2, A: []float32{1, 2, 3, 4, 5, 6}, B: []float32{1, 0, 0, 1}},
		{Base: "blk.0.ffn_down.weight", NIn: 2, NOut: 1, A: []float32{-1, 0.5, 0.25, 8}, B: []float32{3, -3}},
	}}
}

// adapterBytes writes an adapter file the way calft does, after edit changes the writer.
func adapterBytes(tb testing.TB, h *HostAdapter, dt gguf.DType, edit func(w *gguf.Writer)) []byte {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "a.gguf")
	if err := h.Save(p, dt); err != nil {
		tb.Fatal(err)
	}
	if edit != nil {
		f, err := gguf.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		w := gguf.NewWriterFrom(f)
		for _, ti := range f.Tensors {
			d, err := f.TensorData(ti.Name)
			if err != nil {
				tb.Fatal(err)
			}
			if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, d); err != nil {
				tb.Fatal(err)
			}
		}
		edit(w)
		f.Close()
		if err := w.WriteFile(p); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func fuzzSeeds(tb testing.TB) map[string][]byte {
	nan := fuzzAdapter()
	nan.Pairs[0].A[2] = float32(math.NaN())
	inf := fuzzAdapter()
	inf.Pairs[1].B[1] = float32(math.Inf(-1))
	inf.Alpha = float32(math.Inf(1))
	other := fuzzAdapter()
	other.Arch = "gemma3"
	return map[string][]byte{
		"f32":  adapterBytes(tb, fuzzAdapter(), gguf.F32, nil),
		"f16":  adapterBytes(tb, fuzzAdapter(), gguf.F16, nil),
		"nan":  adapterBytes(tb, nan, gguf.F32, nil),
		"inf":  adapterBytes(tb, inf, gguf.F16, nil),
		"arch": adapterBytes(tb, other, gguf.F32, nil),
		"wrong rank": adapterBytes(tb, fuzzAdapter(), gguf.F32, func(w *gguf.Writer) {
			w.AddTensorF32("blk.1.attn_k.weight.lora_a", gguf.F32, []uint64{2, 3}, make([]float32, 6))
			w.AddTensorF32("blk.1.attn_k.weight.lora_b", gguf.F32, []uint64{2, 2}, make([]float32, 4))
		}),
		"orphan b": adapterBytes(tb, fuzzAdapter(), gguf.F32, func(w *gguf.Writer) {
			w.AddTensorF32("blk.1.attn_k.weight.lora_b", gguf.F32, []uint64{2, 2}, make([]float32, 4))
		}),
		"q8_0": adapterBytes(tb, &HostAdapter{Arch: "llama", Rank: 1, Alpha: 1, Pairs: nil}, gguf.F32, func(w *gguf.Writer) {
			w.AddTensorF32("blk.0.attn_v.weight.lora_a", gguf.Q8_0, []uint64{32, 1}, make([]float32, 32))
			w.AddTensorF32("blk.0.attn_v.weight.lora_b", gguf.F32, []uint64{1, 4}, []float32{1, 2, 3, 4})
		}),
		"not lora": adapterBytes(tb, fuzzAdapter(), gguf.F32, func(w *gguf.Writer) {
			w.Set("adapter.type", gguf.StringValue("alora"))
		}),
	}
}

// FuzzRead reads arbitrary adapter files: an error, or an adapter whose pairs have the
// shapes their values fill, finite values, and that survives a save and read back.
func FuzzRead(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	dir := f.TempDir()
	in, back := filepath.Join(dir, "in.gguf"), filepath.Join(dir, "back.gguf")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(in, b, 0o644); err != nil {
			t.Fatal(err)
		}
		h, err := Read(in)
		if err != nil {
			if h != nil {
				t.Fatal("an adapter with an error")
			}
			return
		}
		checkHost(t, h)
		if err := h.Save(back, gguf.F32); err != nil {
			t.Fatalf("a read adapter cannot be saved: %v", err)
		}
		h2, err := Read(back)
		if err != nil {
			t.Fatalf("a saved adapter cannot be read: %v", err)
		}
		if !reflect.DeepEqual(h, h2) {
			t.Fatalf("save and read changed the adapter:\n%+v\n%+v", h, h2)
		}
	})
}

func checkHost(t *testing.T, h *HostAdapter) {
	t.Helper()
	if h.Rank <= 0 || len(h.Pairs) == 0 || math.IsNaN(float64(h.Alpha)) || math.IsInf(float64(h.Alpha), 0) {
		t.Fatalf("rank %d, %d pairs, alpha %v", h.Rank, len(h.Pairs), h.Alpha)
	}
	seen := map[string]bool{}
	for _, p := range h.Pairs {
		if seen[p.Base] {
			t.Fatalf("%s twice", p.Base)
		}
		seen[p.Base] = true
		if p.NIn <= 0 || p.NOut <= 0 || len(p.A) != p.NIn*h.Rank || len(p.B) != h.Rank*p.NOut {
			t.Fatalf("%s: [%d→%d] rank %d with %d and %d values", p.Base, p.NIn, p.NOut, h.Rank, len(p.A), len(p.B))
		}
		for _, v := range append(append([]float32{}, p.A...), p.B...) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite value %v accepted", p.Base, v)
			}
		}
	}
}

// TestReadRefusesDamagedAdapters: the seeds FuzzRead starts from that must fail, fail
// with a message naming the file.
func TestReadRefusesDamagedAdapters(t *testing.T) {
	for name, b := range fuzzSeeds(t) {
		p := filepath.Join(t.TempDir(), "a.gguf")
		os.WriteFile(p, b, 0o644)
		h, err := Read(p)
		switch name {
		case "f32", "f16", "arch", "q8_0":
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		default:
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(p)) {
				t.Errorf("%s: read %+v, error %v", name, h, err)
			}
		}
	}
}
