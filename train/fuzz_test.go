package train

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/options"
	"github.com/calft/calft/lora"
	"github.com/spf13/pflag"
)

// loadConfig registers Config's options on a fresh flag set and completes the defaults
// from the YAML file at path ("" for none) and the environment, as calft train does.
func loadConfig(path string) (*Config, error) {
	cfg := Defaults()
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	options.Register(fs, &cfg)
	if err := fs.Parse(nil); err != nil {
		return nil, err
	}
	return &cfg, options.Load(fs, &cfg, path)
}

// checkLoaded holds what options.Load promises of a config it accepted, and that
// Validate can judge it.
func checkLoaded(t *testing.T, cfg *Config) {
	t.Helper()
	for _, f := range options.Fields(cfg) {
		if f.Value.Kind() == reflect.Float64 {
			if x := f.Value.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("option %s took %v", f.Name, x)
			}
		}
	}
	_ = cfg.Validate()
	if _, err := json.Marshal(cfg); err != nil {
		t.Fatalf("an accepted config does not encode (as config.json and state.json need): %v", err)
	}
}

// FuzzConfigYAML loads arbitrary --config files over train's options.
func FuzzConfigYAML(f *testing.F) {
	for _, p := range []string{"tiny.yaml", "smolvlm-256m.yaml", "llava-1.5-7b.yaml"} {
		if b, err := os.ReadFile(filepath.Join("..", "configs", p)); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"rank: 2.5\n", "lr: .nan\n", "clip: -.inf\n", "seed: -1\n", "seed: 18446744073709551615\n",
		"targets: attn_q, ffn_up\n", "targets: [1, 2]\n", "steps: 1e300\n", "merge: yes\n", "cal-lo: '3'\n",
		"rnak: 8\n", "model: {a: b}\n", "? [a, b]\n: c\n", "a: &x [*x]\n", "data: !!binary aGVsbG8=\n",
		"dropout: 0x10\n", "threads: 0o17\n", "max-rows: 1_000\n", "template: |\n  {{ x }}\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "config.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			return
		}
		checkLoaded(t, cfg)
	})
}

// FuzzConfigEnv sets one CALFT_* variable to an arbitrary string.
func FuzzConfigEnv(f *testing.F) {
	fields := options.Fields(&Config{})
	for i, s := range []string{"8", " 3 ", "2.5", "NaN", "-Inf", "1e400", "true", "T", "a, ,b", "", "-0", "0x1p-3", "9223372036854775808"} {
		f.Add(uint8(i*7), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, value string) {
		if strings.ContainsRune(value, 0) {
			return // no environment holds a NUL
		}
		field := fields[int(which)%len(fields)]
		t.Setenv(options.EnvName(field.Name), value)
		cfg, err := loadConfig("")
		if err != nil {
			return
		}
		checkLoaded(t, cfg)
		if v := options.Fields(cfg)[int(which)%len(fields)].Value; v.Kind() == reflect.String && v.String() != value {
			t.Fatalf("%s=%q gave %q", options.EnvName(field.Name), value, v.String())
		}
	})
}

// FuzzDecodeMoments decodes arbitrary optimizer.bin contents: an error, or moments that
// encode back to (a prefix of) the input.
func FuzzDecodeMoments(f *testing.F) {
	f.Add(encodeMoments([][]float32{{1, 2}, {3}}, [][]float32{{4, 5}, {6}}))
	f.Add(encodeMoments(nil, nil))
	f.Add(encodeMoments([][]float32{{}}, [][]float32{{float32(math.NaN())}}))
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, v, err := decodeMoments(b)
		if err != nil {
			return
		}
		if len(m) != len(v) {
			t.Fatalf("%d first and %d second moments", len(m), len(v))
		}
		if enc := encodeMoments(m, v); !bytes.HasPrefix(b, enc) {
			t.Fatalf("decoded moments encode to %d other bytes", len(enc))
		}
	})
}

// FuzzCheckpointState loads a checkpoint whose state.json is arbitrary (its adapter and
// moments are sound): an error, or a state that encodes again and compares with a
// config.
func FuzzCheckpointState(f *testing.F) {
	dir := f.TempDir()
	h := &lora.HostAdapter{Arch: "llama", Rank: 1, Alpha: 2, Pairs: []lora.HostPair{
		{Base: "blk.0.attn_q.weight", NIn: 2, NOut: 2, A: []float32{1, 2}, B: []float32{3, 4}}}}
	if err := h.Save(filepath.Join(dir, "adapter.gguf"), gguf.F32); err != nil {
		f.Fatal(err)
	}
	moments := encodeMoments([][]float32{{0, 0}, {0, 0}}, [][]float32{{1, 1}, {1, 1}})
	if err := os.WriteFile(filepath.Join(dir, "optimizer.bin"), moments, 0o644); err != nil {
		f.Fatal(err)
	}
	def := Defaults()
	good, err := json.MarshalIndent(checkpointState{Step: 3, OptStep: 3, Total: 10, Config: def, DataDigest: "abc"}, "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"step":-1,"opt_step":1e3,"config":{"rank":"8","targets":null,"cal_lo":1e309}}`))
	f.Add([]byte(`{"config":{"data":"../x","lr":1e-400,"seed":-5}, "step": 9223372036854775807}`))
	f.Add([]byte(`null`))
	state := filepath.Join(dir, "state.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(state, b, 0o644); err != nil {
			t.Fatal(err)
		}
		st, ad, m, v, err := loadCheckpoint(dir)
		if err != nil {
			return
		}
		if st == nil || ad == nil || len(m) != 2 || len(v) != 2 {
			t.Fatalf("state %v, adapter %v, %d and %d moments", st, ad, len(m), len(v))
		}
		if _, err := json.Marshal(st); err != nil {
			t.Fatalf("a loaded state does not encode again: %v", err)
		}
		_ = options.Diff(&st.Config, &def)
	})
}
