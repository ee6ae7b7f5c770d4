package llama

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
)

// writeLoRA writes a rank-2 adapter on blk.0.attn_q and blk.0.ffn_up of the tiny model;
// with badShape the ffn_up pair has the wrong output width.
func writeLoRA(t *testing.T, m *Model, badShape bool) string {
	t.Helper()
	const r = 2
	e := uint64(m.NEmbd())
	ffs, _ := m.Meta(m.Arch() + ".feed_forward_length")
	ff, err := strconv.ParseUint(ffs, 10, 64)
	if err != nil {
		t.Fatalf("feed_forward_length %q: %v", ffs, err)
	}
	if badShape {
		ff++
	}
	w := gguf.NewWriter()
	w.Set("general.type", gguf.StringValue("adapter"))
	w.Set("adapter.type", gguf.StringValue("lora"))
	w.Set("general.architecture", gguf.StringValue(m.Arch()))
	w.Set("adapter.lora.alpha", gguf.Float32Value(4))
	fill := func(n uint64, v float32) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = v * float32(i%7-3)
		}
		return s
	}
	for _, tn := range []struct {
		name    string
		in, out uint64
	}{{"blk.0.attn_q.weight", e, e}, {"blk.0.ffn_up.weight", e, ff}} {
		if err := w.AddTensorF32(tn.name+".lora_a", gguf.F32, []uint64{tn.in, r}, fill(tn.in*r, 0.05)); err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensorF32(tn.name+".lora_b", gguf.F32, []uint64{r, tn.out}, fill(r*tn.out, 0.05)); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "lora.gguf")
	if err := w.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAdapterApply(t *testing.T) {
	m := loadTiny(t, ModelParams{})
	c, err := NewContext(m, ContextParams{NCtx: 64, NThreads: 2, KVF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toks, _ := m.Tokenize("the cat sat", true, false)
	run := func() []float32 {
		t.Helper()
		c.ClearMemory()
		if err := c.DecodeTokens(toks, 0, 0, false); err != nil {
			t.Fatal(err)
		}
		l, err := c.Logits(-1)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	base := run()
	// An adapter that does not fit the model is llama.cpp's error, not a crash.
	bad := writeLoRA(t, m, true)
	if _, err := LoadAdapter(m, bad); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("mis-shaped adapter: %v", err)
	}
	a, err := LoadAdapter(m, writeLoRA(t, m, false))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Meta("adapter.type"); !ok || v != "lora" {
		t.Errorf("adapter.type = %q", v)
	}
	if err := c.SetAdapter(a, 1); err != nil {
		t.Fatal(err)
	}
	with := run()
	if maxDiff(base, with) < 1e-4 {
		t.Error("adapter did not change the logits")
	}
	if !c.RemoveAdapter(a) || c.RemoveAdapter(a) {
		t.Error("RemoveAdapter reports")
	}
	if d := maxDiff(base, run()); d > 1e-5 {
		t.Errorf("removing the adapter left a difference of %g", d)
	}
	if err := c.SetAdapter(a, 0.5); err != nil {
		t.Fatal(err)
	}
	half := run()
	if maxDiff(half, base) < 1e-5 || maxDiff(half, with) < 1e-5 {
		t.Error("scale 0.5 is neither off nor full")
	}
	// Closing the adapter detaches it from the context first.
	a.Close()
	if d := maxDiff(base, run()); d > 1e-5 {
		t.Errorf("closed adapter still applied (%g)", d)
	}
	a.Close()

	// Closing the model closes its adapters and contexts too.
	b, err := LoadAdapter(m, writeLoRA(t, m, false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetAdapter(b, 1); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if b.c != nil || c.c != nil {
		t.Error("model Close left dependents open")
	}
	b.Close()
	c.Close()
}
