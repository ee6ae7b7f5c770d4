package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/tiny"
)

// calftBin is the command built once for the tests: bad input must end the process with
// exit code 1 and a message, so the tests run it as a user would, in its own process.
var calftBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "calft-cli")
	if err != nil {
		panic(err)
	}
	calftBin = filepath.Join(dir, "calft")
	build := exec.Command("go", "build", "-o", calftBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run executes calft and returns its combined output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(calftBin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func tinyDir(t *testing.T) string { return tiny.TestDir(t, 3) }

// rewrite copies a GGUF with some metadata replaced and some tensors replaced or added.
func rewrite(t *testing.T, src, dst string, kv map[string]gguf.Value, tensors map[string][]float32, shapes map[string][]uint64) {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriterFrom(f)
	for k, v := range kv {
		w.Set(k, v)
	}
	for name, vals := range tensors { // tensors the file does not have are added
		if _, ok := f.Tensor(name); !ok {
			if err := w.AddTensorF32(name, gguf.F32, shapes[name], vals); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ti := range f.Tensors {
		if vals, ok := tensors[ti.Name]; ok {
			if err := w.AddTensorF32(ti.Name, gguf.F32, shapes[ti.Name], vals); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile(dst); err != nil {
		t.Fatal(err)
	}
}

func TestMakeTinyGenerateInfo(t *testing.T) {
	d := filepath.Join(t.TempDir(), "fresh")
	if out, code := run(t, "make-tiny", "--out", d); code != 0 {
		t.Fatalf("make-tiny: exit %d\n%s", code, out)
	}
	out, code := run(t, "generate", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--image", filepath.Join(d, "images", "003.png"), "--prompt", "describe", "--n", "8")
	if code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("generate: exit %d, output %q", code, out)
	}
	for _, f := range []string{"base.gguf", "mmproj.gguf"} {
		out, code := run(t, "info", filepath.Join(d, f))
		if code != 0 || !strings.Contains(out, "kind:") {
			t.Fatalf("info %s: exit %d\n%s", f, code, out)
		}
	}
}

// TestBadInput feeds each kind of bad input to the commands that read it: each must give
// exit code 1 and a message that names the file and the problem, never a crash.
func TestBadInput(t *testing.T) {
	d := tinyDir(t)
	bad := t.TempDir()
	base, mmproj, img := filepath.Join(d, "base.gguf"), filepath.Join(d, "mmproj.gguf"), filepath.Join(d, "images", "000.png")

	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(bad, "truncated.gguf")
	os.WriteFile(truncated, data[:len(data)/2], 0o644)
	notGGUF := filepath.Join(bad, "notes.gguf")
	os.WriteFile(notGGUF, []byte("these are not model weights\n"), 0o644)
	wrongType := filepath.Join(bad, "wrongtype.gguf")
	rewrite(t, base, wrongType, map[string]gguf.Value{"llama.embedding_length": gguf.StringValue("64")}, nil, nil)
	narrow := filepath.Join(bad, "narrow-mmproj.gguf")
	rewrite(t, mmproj, narrow, map[string]gguf.Value{"clip.vision.projection_dim": gguf.Uint32Value(32)},
		map[string][]float32{"mm.2.weight": make([]float32, 64*32), "mm.2.bias": make([]float32, 32)},
		map[string][]uint64{"mm.2.weight": {64, 32}, "mm.2.bias": {32}})
	longrope := filepath.Join(bad, "longrope.gguf")
	rewrite(t, base, longrope, map[string]gguf.Value{"llama.rope.scaling.type": gguf.StringValue("longrope")}, nil, nil)
	extraTensor := filepath.Join(bad, "extra-tensor.gguf")
	rewrite(t, base, extraTensor, nil, map[string][]float32{"blk.0.attn_q_norm.weight": make([]float32, 16)},
		map[string][]uint64{"blk.0.attn_q_norm.weight": {16}})
	badImage := filepath.Join(bad, "broken.png")
	os.WriteFile(badImage, []byte("\x89PNG\r\n\x1a\nnot really"), 0o644)
	missing := filepath.Join(bad, "missing.gguf")

	gen := func(model, mm, image string) []string {
		return []string{"generate", "--model", model, "--mmproj", mm, "--image", image, "--prompt", "describe", "--n", "4"}
	}
	cases := []struct {
		name string
		args []string
		want []string // substrings of the message
	}{
		{"missing model", gen(missing, mmproj, img), []string{missing}},
		{"missing mmproj", gen(base, missing, img), []string{missing}},
		{"missing image", gen(base, mmproj, filepath.Join(bad, "none.png")), []string{"none.png"}},
		{"truncated model", gen(truncated, mmproj, img), []string{truncated, "truncated"}},
		{"not a GGUF", gen(notGGUF, mmproj, img), []string{notGGUF, "GGUF"}},
		{"wrong key type", gen(wrongType, mmproj, img), []string{wrongType, "llama.embedding_length"}},
		{"projector width", gen(base, narrow, img), []string{"32", "64"}},
		{"unreadable image", gen(base, mmproj, badImage), []string{badImage}},
		{"model as mmproj", gen(base, base, img), []string{base}},
		// Keys and tensors libllama applies but calft's decoder does not implement.
		{"unimplemented key", gen(longrope, mmproj, img), []string{longrope, "llama.rope.scaling.type", "longrope"}},
		{"unimplemented tensor", gen(extraTensor, mmproj, img), []string{extraTensor, "blk.0.attn_q_norm.weight"}},
		{"info truncated", []string{"info", truncated}, []string{truncated, "truncated"}},
		{"info not GGUF", []string{"info", notGGUF}, []string{notGGUF}},
		{"info missing", []string{"info", missing}, []string{missing}},
		{"export not an adapter", []string{"export", "--model", base, "--lora", base, "--out", filepath.Join(bad, "m.gguf")}, []string{base, "adapter"}},
		{"export truncated base", []string{"export", "--model", truncated, "--lora", base, "--out", filepath.Join(bad, "m.gguf")}, []string{base}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := run(t, c.args...)
			if code != 1 {
				t.Fatalf("exit code %d, want 1\n%s", code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("message does not mention %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "SIGABRT") || strings.Contains(out, "GGML_ASSERT") || strings.Contains(out, "panic") {
				t.Errorf("the process crashed:\n%s", out)
			}
		})
	}
}
