package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/tiny"
)

// writeRandomAdapter saves an adapter with random A and B for every projection of the
// model, as type dt: in the order calft's trainer writes (by layer, then name), or with
// sorted false in the model's order, as converters write.
func writeRandomAdapter(t *testing.T, model, path string, dt gguf.DType, sorted bool) {
	t.Helper()
	f, err := gguf.Open(model)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(11, 0))
	h := &lora.HostAdapter{Arch: "llama", Rank: 4, Alpha: 8}
	for _, ti := range f.Tensors {
		var il int
		var kind string
		if n, _ := fmt.Sscanf(strings.ReplaceAll(ti.Name, ".", " "), "blk %d %s weight", &il, &kind); n != 2 || !strings.Contains("attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down", kind) {
			continue
		}
		p := lora.HostPair{Base: ti.Name, NIn: int(ti.Shape[0]), NOut: int(ti.Shape[1])}
		p.A, p.B = make([]float32, 4*p.NIn), make([]float32, 4*p.NOut)
		for _, v := range [][]float32{p.A, p.B} {
			for i := range v {
				v[i] = float32(rng.NormFloat64() * 0.1)
			}
		}
		h.Pairs = append(h.Pairs, p)
	}
	if sorted {
		key := func(p lora.HostPair) string {
			var il int
			var rest string
			fmt.Sscanf(p.Base, "blk.%d.%s", &il, &rest)
			return fmt.Sprintf("%06d.%s", il, rest)
		}
		slices.SortFunc(h.Pairs, func(a, b lora.HostPair) int { return strings.Compare(key(a), key(b)) })
	}
	if err := h.Save(path, dt); err != nil {
		t.Fatal(err)
	}
}

// TestExportPEFTRoundTrip: a GGUF adapter exported as PEFT and read back by export
// --format adapter is the same file, byte for byte, when calft wrote it (pairs by layer
// and name), and holds the same values when another tool ordered the pairs otherwise;
// merging from the PEFT folder gives the same model as from the GGUF; generate applies
// a PEFT folder as its GGUF.
func TestExportPEFTRoundTrip(t *testing.T) {
	d := tinyDir(t)
	base := filepath.Join(d, tiny.BaseFile)
	tmp := t.TempDir()
	for _, c := range []struct {
		dt     gguf.DType
		args   []string // export --format adapter's type flag
		sorted bool
	}{{gguf.F32, []string{"--type", "f32"}, true}, {gguf.F16, nil, true}, {gguf.F16, nil, false}} {
		first := filepath.Join(tmp, fmt.Sprintf("first-%s-%v.gguf", c.dt, c.sorted))
		writeRandomAdapter(t, base, first, c.dt, c.sorted)
		peft := filepath.Join(tmp, fmt.Sprintf("peft-%s-%v", c.dt, c.sorted))
		if out, code := run(t, "export", "--model", base, "--lora", first, "--format", "peft", "--out", peft); code != 0 {
			t.Fatalf("export --format peft: exit %d\n%s", code, out)
		}
		second := filepath.Join(tmp, fmt.Sprintf("second-%s-%v.gguf", c.dt, c.sorted))
		args := append([]string{"export", "--model", base, "--lora", peft, "--format", "adapter", "--out", second}, c.args...)
		if out, code := run(t, args...); code != 0 {
			t.Fatalf("export --format adapter: exit %d\n%s", code, out)
		}
		a, _ := os.ReadFile(first)
		b, _ := os.ReadFile(second)
		if c.sorted && !bytes.Equal(a, b) {
			t.Errorf("%s: the adapter read back from PEFT differs from the original (%d and %d bytes)", c.dt, len(a), len(b))
		}
		if d := pairDiff(t, first, second); d != 0 {
			t.Errorf("%s: the adapter read back from PEFT differs from the original by %g", c.dt, d)
		}
	}
	first, peft := filepath.Join(tmp, "first-F32-true.gguf"), filepath.Join(tmp, "peft-F32-true")
	cfg, _ := os.ReadFile(filepath.Join(peft, "adapter_config.json"))
	for _, w := range []string{`"peft_type": "LORA"`, `"r": 4`, `"lora_alpha": 8`, `"task_type": "CAUSAL_LM"`, `"bias": "none"`, `"q_proj"`} {
		if !bytes.Contains(cfg, []byte(w)) {
			t.Errorf("adapter_config.json lacks %s:\n%s", w, cfg)
		}
	}
	m1, m2 := filepath.Join(tmp, "m1.gguf"), filepath.Join(tmp, "m2.gguf")
	for _, c := range [][2]string{{first, m1}, {peft, m2}} {
		if out, code := run(t, "export", "--model", base, "--lora", c[0], "--out", c[1]); code != 0 {
			t.Fatalf("export %s: exit %d\n%s", c[0], code, out)
		}
	}
	a, _ := os.ReadFile(m1)
	b, _ := os.ReadFile(m2)
	if !bytes.Equal(a, b) {
		t.Error("merging from the PEFT folder gives another model than from the GGUF adapter")
	}
	gen := func(adapter string) string {
		out, code := run(t, "generate", "--model", base, "--lora", adapter, "--prompt", "describe", "--n", "6")
		if code != 0 {
			t.Fatalf("generate --lora %s: exit %d\n%s", adapter, code, out)
		}
		return out
	}
	if g1, g2 := gen(first), gen(peft); g1 != g2 {
		t.Errorf("generate with the GGUF adapter says %q, with the PEFT folder %q", g1, g2)
	}
}

// TestExportPEFTErrors: bad PEFT folders and flags give exit code 1 and a message that
// names the file and the problem.
func TestExportPEFTErrors(t *testing.T) {
	d := tinyDir(t)
	base := filepath.Join(d, tiny.BaseFile)
	tmp := t.TempDir()
	adapter := filepath.Join(tmp, "a.gguf")
	writeRandomAdapter(t, base, adapter, gguf.F32, true)
	peft := filepath.Join(tmp, "peft")
	if out, code := run(t, "export", "--model", base, "--lora", adapter, "--format", "peft", "--out", peft); code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	weights := filepath.Join(peft, "adapter_model.safetensors")
	data, _ := os.ReadFile(weights)
	broken := filepath.Join(tmp, "broken")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "adapter_model.safetensors"), data[:len(data)/2], 0o644)
	cfg, _ := os.ReadFile(filepath.Join(peft, "adapter_config.json"))
	os.WriteFile(filepath.Join(broken, "adapter_config.json"), cfg, 0o644)
	dora := filepath.Join(tmp, "dora")
	os.MkdirAll(dora, 0o755)
	os.WriteFile(filepath.Join(dora, "adapter_model.safetensors"), data, 0o644)
	os.WriteFile(filepath.Join(dora, "adapter_config.json"), bytes.Replace(cfg, []byte(`"peft_type"`), []byte(`"use_dora": true, "peft_type"`), 1), 0o644)
	empty := filepath.Join(tmp, "empty")
	os.MkdirAll(empty, 0o755)
	out := func(name string) string { return filepath.Join(tmp, name) }
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"truncated safetensors", []string{"export", "--model", base, "--lora", broken, "--out", out("m.gguf")}, []string{"broken/adapter_model.safetensors", "truncated"}},
		{"dora", []string{"export", "--model", base, "--lora", dora, "--out", out("m.gguf")}, []string{"dora/adapter_config.json", "use_dora"}},
		{"no config", []string{"export", "--model", base, "--lora", empty, "--out", out("m.gguf")}, []string{empty, "adapter_config.json"}},
		{"bad format", []string{"export", "--model", base, "--lora", adapter, "--format", "onnx", "--out", out("x")}, []string{"--format", "onnx"}},
		{"bad peft type", []string{"export", "--model", base, "--lora", adapter, "--format", "peft", "--type", "q8_0", "--out", out("p")}, []string{"q8_0"}},
		{"bad prefix", []string{"export", "--model", base, "--lora", adapter, "--format", "peft", "--peft-prefix", "a b", "--out", out("p")}, []string{"a b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			msg, code := run(t, c.args...)
			if code == 0 {
				t.Fatalf("exit code 0\n%s", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message does not mention %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "panic") {
				t.Errorf("the process crashed:\n%s", msg)
			}
		})
	}
}

// pairDiff is the largest difference between two adapters' values, pair by pair by name.
func pairDiff(t *testing.T, a, b string) float64 {
	t.Helper()
	ha, err := lora.Read(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := lora.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if ha.Rank != hb.Rank || ha.Alpha != hb.Alpha || ha.Arch != hb.Arch || len(ha.Pairs) != len(hb.Pairs) {
		t.Fatalf("%s and %s: rank %d/%d, alpha %g/%g, %d/%d pairs", a, b, ha.Rank, hb.Rank, ha.Alpha, hb.Alpha, len(ha.Pairs), len(hb.Pairs))
	}
	byBase := map[string]lora.HostPair{}
	for _, p := range hb.Pairs {
		byBase[p.Base] = p
	}
	d := 0.0
	for _, p := range ha.Pairs {
		q, ok := byBase[p.Base]
		if !ok || q.NIn != p.NIn || q.NOut != p.NOut {
			t.Fatalf("%s: %s has no match in %s", a, p.Base, b)
		}
		d = max(d, maxAbsDiff(p.A, q.A), maxAbsDiff(p.B, q.B))
	}
	return d
}
