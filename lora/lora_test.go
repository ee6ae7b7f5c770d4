package lora

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/tiny"
)

func TestNormalizeTargets(t *testing.T) {
	a, err := arch.Lookup("llama")
	if err != nil {
		t.Fatal(err)
	}
	got, err := NormalizeTargets([]string{"q_proj", "attn_v", "mlp", "q_proj"}, a.Targets())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "attn_q,attn_v,ffn_gate,ffn_up,ffn_down" {
		t.Errorf("got %v", got)
	}
	if _, err := NormalizeTargets([]string{"lm_head_typo"}, a.Targets()); err == nil || !strings.Contains(err.Error(), "lm_head_typo") {
		t.Errorf("unknown target: %v", err)
	}
}

func TestAdapterRoundTripAndMerge(t *testing.T) {
	dir := t.TempDir()
	h := &HostAdapter{Arch: "llama", Rank: 2, Alpha: 4, Pairs: []HostPair{{
		Base: "blk.0.attn_q.weight", NIn: 3, NOut: 2,
		A: []float32{1, 2, 3, 4, 5, 6}, B: []float32{1, 0, 0, 1},
	}}}
	for _, dt := range []gguf.DType{gguf.F32, gguf.F16} {
		p := filepath.Join(dir, "a.gguf")
		if err := h.Save(p, dt); err != nil {
			t.Fatal(err)
		}
		back, err := Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if back.Rank != 2 || back.Alpha != 4 || back.Pairs[0].A[5] != 6 || back.Pairs[0].B[3] != 1 {
			t.Errorf("%s round trip: %+v", dt, back.Pairs[0])
		}
	}
	// W' = W + (alpha/r)·B·A with W = 0: row o of the update is Σ_r B[o][r]·A[r][:].
	w := make([]float32, 6)
	addLowRank(w, &h.Pairs[0], h.Rank, h.Scale())
	want := []float32{2, 4, 6, 8, 10, 12}
	for i := range want {
		if w[i] != want[i] {
			t.Fatalf("merged %v, want %v", w, want)
		}
	}
	notAdapter := filepath.Join(dir, "x.gguf")
	os.WriteFile(notAdapter, []byte("GGUF junk"), 0o644)
	if _, err := Read(notAdapter); err == nil || !strings.Contains(err.Error(), notAdapter) {
		t.Errorf("a broken adapter gave %v", err)
	}
}

// TestMergeStopsOnCancel: a cancelled merge (a signal) writes nothing, leaves no
// temporary file, and says so.
func TestMergeStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, tiny.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	h := &HostAdapter{Arch: "llama", Rank: 1, Alpha: 1, Pairs: []HostPair{{Base: "blk.0.attn_q.weight", NIn: tiny.NEmbd, NOut: tiny.NEmbd,
		A: make([]float32, tiny.NEmbd), B: make([]float32, tiny.NEmbd)}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(dir, "merged.gguf")
	err := Merge(filepath.Join(dir, tiny.BaseFile), h, out, MergeOptions{KeepType: true, Context: ctx})
	if err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("cancelled merge: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "merged") {
			t.Errorf("left %s", e.Name())
		}
	}
}
