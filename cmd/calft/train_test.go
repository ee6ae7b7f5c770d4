package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calft/calft/internal/options"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/train"
	"github.com/spf13/pflag"
)

// trainArgs is a short run on the tiny model and data.
func trainArgs(d, out string, extra ...string) []string {
	args := []string{"train", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--data", filepath.Join(d, "data.json"), "--out", out, "--rank", "8", "--alpha", "16", "--lr", "3e-3",
		"--batch", "2", "--val-split", "0.2", "--cache-dir", filepath.Join(filepath.Dir(out), "cache"), "--threads", "2"}
	return append(args, extra...)
}

type summary struct {
	Steps int `json:"steps"`
	Val   []struct {
		Step int     `json:"step"`
		Loss float64 `json:"loss"`
	} `json:"val_loss"`
}

func readSummary(t *testing.T, out string) summary {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s summary
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTrainBothObjectivesLearnAndLoad(t *testing.T) {
	d := tinyDir(t)
	for _, obj := range []string{"cal", "ce"} {
		t.Run(obj, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			msg, code := run(t, trainArgs(d, out, "--objective", obj, "--steps", "40", "--val-every", "20")...)
			if code != 0 {
				t.Fatalf("train: exit %d\n%s", code, msg)
			}
			// The default fast weights for an F32 base, said in the log.
			if !strings.Contains(msg, "bf16 transposed copies") || (obj == "cal") != strings.Contains(msg, "q8_0 copies") {
				t.Errorf("the log does not say which weight copies the run keeps:\n%s", msg)
			}
			if strings.Contains(msg, "\r") {
				t.Errorf("with stderr not a terminal, the log holds carriage returns (a progress bar's frames)")
			}
			if !strings.Contains(msg, "training: 40/40") {
				t.Errorf("the log has no plain progress line:\n%s", msg)
			}
			s := readSummary(t, out)
			first, last := s.Val[0].Loss, s.Val[len(s.Val)-1].Loss
			t.Logf("%s: validation loss %.4f → %.4f over %d steps", obj, first, last, s.Steps)
			if !(last < 0.7*first) {
				t.Errorf("validation loss %.4f → %.4f: not lower", first, last)
			}
			raw, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl"))
			if n := strings.Count(string(raw), "\n"); n != 40 {
				t.Errorf("metrics.jsonl has %d lines, want one per step (40)", n)
			}
			gen, code := run(t, "generate", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
				"--image", filepath.Join(d, "images", "004.png"), "--lora", filepath.Join(out, "adapter.gguf"),
				"--prompt", "what do you see?", "--n", "12")
			if code != 0 || strings.TrimSpace(gen) == "" {
				t.Fatalf("generate --lora: exit %d, %q", code, gen)
			}
			t.Logf("%s adapter answers: %q", obj, strings.TrimSpace(gen))
		})
	}
}

func adapterValues(t *testing.T, path string) []float32 {
	t.Helper()
	h, err := lora.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	var v []float32
	for _, p := range h.Pairs {
		v = append(append(v, p.A...), p.B...)
	}
	return v
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}

// TestResumeGivesTheSameAdapter interrupts runs (a real SIGINT, and the hidden
// --stop-after) and resumes them; the final adapter must equal an uninterrupted run's.
func TestResumeGivesTheSameAdapter(t *testing.T) {
	d := tinyDir(t)
	base := t.TempDir()
	args := func(out string, extra ...string) []string {
		return trainArgs(d, out, append([]string{"--objective", "cal", "--steps", "30", "--save-every", "7", "--accum", "2"}, extra...)...)
	}
	whole := filepath.Join(base, "whole")
	if msg, code := run(t, args(whole)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, msg)
	}
	want := adapterValues(t, filepath.Join(whole, "adapter.gguf"))

	stopped := filepath.Join(base, "stopped")
	msg, code := run(t, args(stopped, "--stop-after", "12")...)
	if code != 1 || !strings.Contains(msg, "--resume") {
		t.Fatalf("stopped run: exit %d, want 1 with a hint to resume\n%s", code, msg)
	}
	if msg, code := run(t, args(stopped)...); code != 1 || !strings.Contains(msg, "--resume") {
		t.Fatalf("a second run into the same folder without --resume/--overwrite: exit %d\n%s", code, msg)
	}
	if msg, code := run(t, args(stopped, "--resume", "--backward-weights", "f32")...); code != 1 || !strings.Contains(msg, "backward-weights") {
		t.Fatalf("resuming with other weight copies (a different adapter) should be refused by name: exit %d\n%s", code, msg)
	}
	if msg, code := run(t, args(stopped, "--resume")...); code != 0 {
		t.Fatalf("resumed run: exit %d\n%s", code, msg)
	}
	got := adapterValues(t, filepath.Join(stopped, "adapter.gguf"))
	if diff := maxAbsDiff(got, want); diff > 1e-6 {
		t.Errorf("resumed adapter differs from the uninterrupted one by %g", diff)
	} else {
		t.Logf("stop-after 12 + resume: max |Δ| = %g over %d values", diff, len(got))
	}

	// A real signal in the middle of a longer run.
	sig := filepath.Join(base, "signal")
	long := func(out string, extra ...string) []string {
		return trainArgs(d, out, append([]string{"--objective", "cal", "--steps", "400", "--save-every", "0"}, extra...)...)
	}
	ref := filepath.Join(base, "ref")
	if msg, code := run(t, long(ref)...); code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, msg)
	}
	cmd := exec.Command(calftBin, long(sig)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until training has begun (metrics appear), then interrupt.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if raw, _ := os.ReadFile(filepath.Join(sig, "metrics.jsonl")); bytes.Count(raw, []byte("\n")) >= 20 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if err == nil {
		t.Skipf("the run finished before the signal arrived; nothing to resume\n%s", out.String())
	}
	if !strings.Contains(out.String(), "--resume") {
		t.Fatalf("interrupted run did not report its checkpoint:\n%s", out.String())
	}
	if msg, code := run(t, long(sig, "--resume")...); code != 0 {
		t.Fatalf("resume after SIGINT: exit %d\n%s", code, msg)
	}
	diff := maxAbsDiff(adapterValues(t, filepath.Join(sig, "adapter.gguf")), adapterValues(t, filepath.Join(ref, "adapter.gguf")))
	t.Logf("SIGINT + resume: max |Δ| = %g", diff)
	if diff > 1e-6 {
		t.Errorf("adapter after SIGINT and resume differs by %g", diff)
	}
}

func TestTrainDataErrorsAndConfig(t *testing.T) {
	d := tinyDir(t)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte(`{"id":"cat-7","image":"images/000.png","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"a cat"}]}
{"id":"dog-3","image":"images/missing.png","conversations":[{"from":"human","value":"<image>\nhi"},{"from":"gpt","value":"a dog"}]}
{"id":"empty-1","image":"images/001.png","conversations":[{"from":"human","value":"<image>\nhi"},{"from":"gpt","value":""}]}
{"id":"long-9","image":"images/002.png","conversations":[{"from":"human","value":"<image>\n`+strings.Repeat("what is this? ", 200)+`"},{"from":"gpt","value":"a red circle"}]}
`), 0o644)
	base := []string{"train", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--data", bad, "--image-dir", d, "--steps", "2", "--cache-dir", "none"}
	msg, code := run(t, append(base, "--out", filepath.Join(t.TempDir(), "r"))...)
	if code != 1 || !strings.Contains(msg, "cat-7") || !strings.Contains(msg, "placeholder") {
		t.Fatalf("placeholder mismatch: exit %d\n%s", code, msg)
	}
	msg, code = run(t, append(base, "--out", filepath.Join(t.TempDir(), "r"), "--on-error", "skip", "--dry-run")...)
	for _, want := range []string{"cat-7", "dog-3", "missing.png", "empty-1", "empty answer", "long-9", "context"} {
		if !strings.Contains(msg, want) {
			t.Errorf("--on-error skip report lacks %q:\n%s", want, msg)
		}
	}
	_ = code

	// A YAML config, overridden by an environment variable and a flag.
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("model: "+filepath.Join(d, "base.gguf")+"\nmmproj: "+filepath.Join(d, "mmproj.gguf")+
		"\ndata: "+filepath.Join(d, "data.json")+"\nsteps: 3\nrank: 4\nobjective: ce\ncache-dir: none\n"), 0o644)
	out := filepath.Join(t.TempDir(), "cfgrun")
	cmd := exec.Command(calftBin, "train", "--config", cfg, "--out", out, "--rank", "2")
	cmd.Env = append(os.Environ(), "CALFT_STEPS=5")
	raw, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("train --config: %v\n%s", err, raw)
	}
	if s := readSummary(t, out); s.Steps != 5 {
		t.Errorf("CALFT_STEPS=5 should override the file's steps: 3; ran %d", s.Steps)
	}
	h, err := lora.Read(filepath.Join(out, "adapter.gguf"))
	if err != nil || h.Rank != 2 {
		t.Errorf("--rank 2 should override the file's rank: 4; got %v %v", h, err)
	}
	os.WriteFile(cfg, []byte("stepz: 3\n"), 0o644)
	if msg, code := run(t, "train", "--config", cfg); code != 1 || !strings.Contains(msg, "stepz") {
		t.Errorf("an unknown config key should be refused by name: exit %d\n%s", code, msg)
	}
	if msg, code := run(t, append(base, "--out", filepath.Join(t.TempDir(), "r"), "--backward-weights", "f16")...); code != 1 || !strings.Contains(msg, "--backward-weights") {
		t.Errorf("a bad --backward-weights should be refused by name: exit %d\n%s", code, msg)
	}
	help, _ := run(t, "train", "--help")
	for _, opt := range []string{"--objective", "--val-data", "--accum", "--resume", "--overwrite", "--targets", "--backward-weights", "--no-image-weights", "(default 0.0002)", "(default \"cal\")"} {
		if !strings.Contains(help, opt) {
			t.Errorf("train --help does not document %s", opt)
		}
	}
}

func TestTrainStopsOnNaN(t *testing.T) {
	d := tinyDir(t)
	out := filepath.Join(t.TempDir(), "nan")
	// A learning rate this large sends the adapter to absurd values within a step or two.
	msg, code := run(t, trainArgs(d, out, "--objective", "ce", "--steps", "20", "--save-every", "1", "--lr", "1e30", "--clip", "0")...)
	if code != 1 || !(strings.Contains(msg, "NaN") || strings.Contains(msg, "Inf") || strings.Contains(msg, "+Inf")) {
		t.Fatalf("exit %d, want 1 with a NaN/Inf message\n%s", code, msg)
	}
	if !strings.Contains(msg, "last good checkpoint") {
		t.Errorf("the message does not point at the last good checkpoint:\n%s", msg)
	}
	latest, err := os.ReadFile(filepath.Join(out, "checkpoints", "latest"))
	if err != nil {
		t.Fatalf("no checkpoint kept: %v", err)
	}
	t.Logf("stopped with: %s; latest checkpoint %s", strings.TrimSpace(msg[strings.LastIndex(msg, "calft:"):]), strings.TrimSpace(string(latest)))
}

// TestShippedConfigsParse loads every file in configs/ the way --config does.
func TestShippedConfigsParse(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	if len(files) < 4 {
		t.Fatalf("configs/ holds %d files, want the tiny, SmolVLM and LLaVA configs", len(files))
	}
	for _, f := range files {
		c := train.Defaults()
		fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
		options.Register(fs, &c)
		if err := options.Load(fs, &c, f); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		c.Out, c.Data = "x", "y" // given on the command line for the model configs
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestInvalidCALOptions checks that train and score refuse CAL options that give no
// usable weights, with the same flag names, before doing anything.
func TestInvalidCALOptions(t *testing.T) {
	d := tinyDir(t)
	files := []string{"--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"), "--data", filepath.Join(d, "data.json")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cal-window", "4"}, "--cal-window must be a positive odd number"},
		{[]string{"--cal-window", "0"}, "--cal-window must be a positive odd number"},
		{[]string{"--cal-lo", "3", "--cal-hi", "1"}, "--cal-lo 3 is above --cal-hi 1"},
		{[]string{"--cal-lo", "-1"}, "--cal-lo -1 is negative"},
		{[]string{"--cal-hi", "0", "--cal-lo", "0"}, "--cal-hi 0 must be above 0"},
	} {
		for _, cmd := range []string{"train", "score"} {
			out := filepath.Join(t.TempDir(), "out")
			args := append(append([]string{cmd}, files...), append([]string{"--out", out}, c.args...)...)
			msg, code := run(t, args...)
			if code != 1 || !strings.Contains(msg, c.want) {
				t.Errorf("%s %v: exit %d, want 1 with %q:\n%s", cmd, c.args, code, c.want, msg)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s %v wrote %s before refusing", cmd, c.args, out)
			}
		}
	}
}

// TestTrainFamilies runs `calft train` end to end on make-tiny --family qwen2vl (M-RoPE
// text model, qwen2vl_merger projector) with both objectives, and with CAL on --family
// qwen25vl (Qwen2.5-VL's projector), qwen3vl (deepstack rows), gemma3 (Gemma 3's projector, whose image rows
// attend to each other both ways), pixtral ([IMG_BREAK] rows inside the image chunk) and llava15
// (LLaVA-1.5's own prompt format, --template llava15):
// the validation loss falls, and libllama generates with the adapter.
func TestTrainFamilies(t *testing.T) {
	for _, c := range []struct {
		family, obj string
		steps       int
		template    []string // LLaVA-1.5's GGUFs ship no chat template
	}{{"qwen2vl", "cal", 40, nil}, {"qwen2vl", "ce", 30, nil}, {"qwen25vl", "cal", 40, nil}, {"qwen3vl", "cal", 40, nil},
		{"gemma3", "cal", 40, nil}, {"pixtral", "cal", 40, nil}, {"llava15", "cal", 40, []string{"--template", "llava15"}}} {
		t.Run(c.family+"/"+c.obj, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "tiny")
			if msg, code := run(t, "make-tiny", "--out", d, "--family", c.family); code != 0 {
				t.Fatalf("make-tiny: exit %d\n%s", code, msg)
			}
			out := filepath.Join(t.TempDir(), "run")
			steps := strconv.Itoa(c.steps)
			msg, code := run(t, trainArgs(d, out, append([]string{"--objective", c.obj, "--steps", steps, "--val-every", strconv.Itoa(c.steps / 2)}, c.template...)...)...)
			if code != 0 {
				t.Fatalf("train: exit %d\n%s", code, msg)
			}
			s := readSummary(t, out)
			first, last := s.Val[0].Loss, s.Val[len(s.Val)-1].Loss
			t.Logf("validation loss %.4f → %.4f over %d steps", first, last, s.Steps)
			if s.Steps != c.steps || !(last < 0.9*first) {
				t.Errorf("%d steps, validation loss %.4f → %.4f: not lower", s.Steps, first, last)
			}
			gen, code := run(t, append([]string{"generate", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
				"--image", filepath.Join(d, "images", "004.png"), "--lora", filepath.Join(out, "adapter.gguf"),
				"--prompt", "what do you see?", "--n", "12"}, c.template...)...)
			if code != 0 || strings.TrimSpace(gen) == "" {
				t.Fatalf("generate --lora: exit %d, %q", code, gen)
			}
			t.Logf("the adapter answers: %q", strings.TrimSpace(gen))
		})
	}
}
