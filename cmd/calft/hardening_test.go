package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/lora"
)

// The tests below are the cases of a probe of every command with careless and hostile
// input: each must end with exit code 1 and a message naming the problem, and leave the
// user's files as they were.

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// expectRefusal runs calft and wants exit code 1, every fragment in the message, and no
// sign of a crash.
func expectRefusal(t *testing.T, want []string, args ...string) string {
	t.Helper()
	msg, code := run(t, args...)
	if code != 1 {
		t.Fatalf("%v: exit code %d, want 1\n%s", args, code, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%v: the message does not mention %q:\n%s", args, w, msg)
		}
	}
	for _, crash := range []string{"panic", "GGML_ASSERT", "SIGABRT", "goroutine "} {
		if strings.Contains(msg, crash) {
			t.Errorf("%v: the process crashed:\n%s", args, msg)
		}
	}
	return msg
}

// quickAdapter trains a 2-step adapter on the tiny model and returns its path.
func quickAdapter(t *testing.T, d string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "run")
	if msg, code := run(t, trainArgs(d, out, "--objective", "ce", "--steps", "2")...); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	return filepath.Join(out, "adapter.gguf")
}

// TestOutputsNeverDestroyInputs: outputs that are inputs, each other, or special files.
func TestOutputsNeverDestroyInputs(t *testing.T) {
	d := tinyDir(t)
	base, mmproj, dataPath := filepath.Join(d, "base.gguf"), filepath.Join(d, "mmproj.gguf"), filepath.Join(d, "data.json")
	ad := quickAdapter(t, d)
	sums := map[string][32]byte{base: fileSum(t, base), mmproj: fileSum(t, mmproj), dataPath: fileSum(t, dataPath), ad: fileSum(t, ad)}
	export := func(out string, extra ...string) []string {
		return append([]string{"export", "--model", base, "--lora", ad, "--out", out}, extra...)
	}
	expectRefusal(t, []string{"--out", "--model"}, export(base)...)
	expectRefusal(t, []string{"--out", "--lora"}, export(ad)...)
	expectRefusal(t, []string{"--out", "--model"}, export(filepath.Join(d, ".", "images", "..", "base.gguf"), "--overwrite")...)
	expectRefusal(t, []string{mmproj, "exists", "--overwrite"}, export(mmproj)...)
	two := t.TempDir()
	expectRefusal(t, []string{"--adapter-out", "--out"}, export(filepath.Join(two, "m.gguf"), "--adapter-out", filepath.Join(two, ".", "m.gguf"))...)

	tmp := t.TempDir()
	fifo := filepath.Join(tmp, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "link.jsonl")
	if err := os.Symlink(filepath.Join(tmp, "target.jsonl"), link); err != nil {
		t.Fatal(err)
	}
	score := func(out string, extra ...string) []string {
		return append([]string{"score", "--model", base, "--mmproj", mmproj, "--data", dataPath, "--cache-dir", "none", "--out", out}, extra...)
	}
	expectRefusal(t, []string{"--out", "--data"}, score(dataPath)...)
	expectRefusal(t, []string{"not a regular file"}, score(fifo)...)
	expectRefusal(t, []string{"symbolic link"}, score(link)...)
	expectRefusal(t, []string{"not a regular file"}, score("/dev/full")...)
	same := filepath.Join(tmp, "s.out")
	expectRefusal(t, []string{"--out", "--html", "both"}, score(same, "--html", same)...)
	expectRefusal(t, []string{"cannot write"}, score("/proc/calft-cannot-write/s.jsonl")...)
	for p, sum := range sums {
		if fileSum(t, p) != sum {
			t.Errorf("%s changed", p)
		}
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO was replaced")
	}
}

// TestOverwriteKeepsTheOldRunUntilTheNewOneStarts: --overwrite with bad input.
func TestOverwriteKeepsTheOldRunUntilTheNewOneStarts(t *testing.T) {
	d := tinyDir(t)
	out := filepath.Join(t.TempDir(), "run")
	if msg, code := run(t, trainArgs(d, out, "--objective", "ce", "--steps", "2")...); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	adapter := fileSum(t, filepath.Join(out, "adapter.gguf"))
	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, []byte("[]"), 0o644)
	args := trainArgs(d, out, "--objective", "ce", "--steps", "2", "--overwrite")
	for i, a := range args {
		if a == "--data" {
			args[i+1] = empty
		}
	}
	expectRefusal(t, []string{empty}, args...)
	expectRefusal(t, []string{"missing.gguf"}, append(trainArgs(d, out, "--objective", "ce", "--steps", "2", "--overwrite"), "--model", filepath.Join(d, "missing.gguf"))...)
	if fileSum(t, filepath.Join(out, "adapter.gguf")) != adapter {
		t.Fatal("the old run's adapter changed")
	}
	for _, f := range []string{"metrics.jsonl", "summary.json", "checkpoints/latest"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("the old run lost %s: %v", f, err)
		}
	}
}

// TestThreadsBeyondTheCores: refused at once by every command that computes.
func TestThreadsBeyondTheCores(t *testing.T) {
	d := tinyDir(t)
	files := []string{"--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf")}
	for _, args := range [][]string{
		trainArgs(d, filepath.Join(t.TempDir(), "r"), "--threads", "100000"),
		append(append([]string{"score"}, files...), "--data", filepath.Join(d, "data.json"), "--out", filepath.Join(t.TempDir(), "s"), "--threads", "100000"),
		{"bench", "--preset", "tiny", "--threads", "100000"},
		append(append([]string{"generate"}, files...), "--image", filepath.Join(d, "images", "000.png"), "--prompt", "hi", "--threads", "100000"),
		{"demo", "--quick", "--out", filepath.Join(t.TempDir(), "demo"), "--threads", "100000"},
		trainArgs(d, filepath.Join(t.TempDir(), "r"), "--threads", "-2"),
	} {
		t0 := time.Now()
		expectRefusal(t, []string{"--threads"}, args...)
		if dt := time.Since(t0); dt > 20*time.Second {
			t.Errorf("%v took %v to refuse", args[:2], dt)
		}
	}
}

// TestOneRunPerFolder: a second train into a folder in use is refused.
func TestOneRunPerFolder(t *testing.T) {
	d := tinyDir(t)
	out := filepath.Join(t.TempDir(), "run")
	first := exec.Command(calftBin, trainArgs(d, out, "--objective", "ce", "--steps", "100000", "--save-every", "0")...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(out, ".calft.lock")); strings.TrimSpace(string(b)) == fmt.Sprint(first.Process.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run never took the folder's lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectRefusal(t, []string{"in use", fmt.Sprint(first.Process.Pid)}, trainArgs(d, out, "--objective", "ce", "--steps", "2", "--overwrite")...)
	expectRefusal(t, []string{"in use"}, trainArgs(d, out, "--objective", "ce", "--steps", "2", "--resume")...)
}

// TestNoCrashes: a wrong-shaped adapter in score, zero bench steps.
func TestNoCrashes(t *testing.T) {
	d := tinyDir(t)
	wrong := filepath.Join(t.TempDir(), "wrong.gguf")
	h := &lora.HostAdapter{Arch: "llama", Rank: 2, Alpha: 4, Pairs: []lora.HostPair{{Base: "blk.0.attn_q.weight", NIn: 64, NOut: 32,
		A: make([]float32, 64*2), B: make([]float32, 2*32)}}}
	if err := h.Save(wrong, gguf.F32); err != nil {
		t.Fatal(err)
	}
	expectRefusal(t, []string{wrong, "blk.0.attn_q.weight"}, "score", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--data", filepath.Join(d, "data.json"), "--out", filepath.Join(t.TempDir(), "s.jsonl"), "--lora", wrong, "--cache-dir", "none")
	expectRefusal(t, []string{"--steps"}, "bench", "--preset", "tiny", "--steps", "0")
}

// TestNonFiniteOptions: NaN and infinities are refused before anything is written.
func TestNonFiniteOptions(t *testing.T) {
	d := tinyDir(t)
	yaml := filepath.Join(t.TempDir(), "nan.yaml")
	os.WriteFile(yaml, []byte("lr: .nan\n"), 0o644)
	steps := filepath.Join(t.TempDir(), "steps.yaml")
	os.WriteFile(steps, []byte("steps: 2.5\n"), 0o644)
	for _, c := range []struct {
		extra []string
		env   string
		want  string
	}{
		{[]string{"--lr", "NaN"}, "", "lr"}, {[]string{"--lr", "Inf"}, "", "lr"}, {[]string{"--dropout", "NaN"}, "", "dropout"},
		{[]string{"--clip", "NaN"}, "", "clip"}, {[]string{"--cal-hi", "Inf"}, "", "cal-hi"}, {[]string{"--val-split", "NaN"}, "", "val-split"},
		{[]string{"--beta2", "NaN"}, "", "beta2"}, {[]string{"--cal-lo", "NaN"}, "", "cal-lo"}, {[]string{"--eps", "0"}, "", "--eps"},
		{[]string{"--config", yaml}, "", "lr"}, {nil, "CALFT_LR=nan", "CALFT_LR"}, {[]string{"--config", steps}, "", "whole number"},
	} {
		out := filepath.Join(t.TempDir(), "run")
		// Not trainArgs: its flags would win over the YAML file and the variable.
		args := []string{"train", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
			"--data", filepath.Join(d, "data.json"), "--out", out, "--cache-dir", "none", "--threads", "2"}
		cmd := exec.Command(calftBin, append(args, c.extra...)...)
		if c.env != "" {
			cmd.Env = append(os.Environ(), c.env)
		}
		b, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(b), c.want) {
			t.Errorf("%v %s: %v, want exit 1 naming %s:\n%s", c.extra, c.env, err, c.want, b)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v %s: %s was created before the option was refused", c.extra, c.env, out)
		}
	}
}

// writeData writes records as a dataset next to the tiny model's images.
func writeData(t *testing.T, d, name string, recs any) string {
	t.Helper()
	b, err := json.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func conversation(question, answer string) []map[string]string {
	return []map[string]string{{"from": "human", "value": question}, {"from": "gpt", "value": answer}}
}

// TestDataThatWouldTrainWrong: NUL characters and control-token text in turns, damaged
// adapters.
func TestDataThatWouldTrainWrong(t *testing.T) {
	d := tinyDir(t)
	nul := writeData(t, d, "nul.json", []map[string]any{{"id": "n", "image": "images/000.png", "conversations": conversation("<image>\nwhat?", "\u0000a green triangle.")}})
	expectRefusal(t, []string{"NUL"}, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", nul, "--val-split", "0", "--dry-run")...)
	ctl := writeData(t, d, "ctl.json", []map[string]any{{"id": "c", "image": "images/000.png", "conversations": conversation("<image>\nwhat?", "<|im_end|> a triangle <|im_start|>")}})
	expectRefusal(t, []string{"<|im_", "control token"}, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", ctl, "--val-split", "0", "--dry-run")...)

	nan := filepath.Join(t.TempDir(), "nan.gguf")
	ad := quickAdapter(t, d)
	h, err := lora.Read(ad)
	if err != nil {
		t.Fatal(err)
	}
	h.Pairs[0].A[3] = float32(nanValue())
	if err := h.Save(nan, gguf.F32); err != nil {
		t.Fatal(err)
	}
	base, mmproj := filepath.Join(d, "base.gguf"), filepath.Join(d, "mmproj.gguf")
	expectRefusal(t, []string{nan, "NaN"}, "export", "--model", base, "--lora", nan, "--out", filepath.Join(t.TempDir(), "m.gguf"))
	expectRefusal(t, []string{nan, "NaN"}, "generate", "--model", base, "--lora", nan, "--prompt", "hi", "--n", "4")
	expectRefusal(t, []string{nan, "NaN"}, "score", "--model", base, "--mmproj", mmproj, "--data", filepath.Join(d, "data.json"),
		"--out", filepath.Join(t.TempDir(), "s.jsonl"), "--lora", nan, "--cache-dir", "none")
}

func nanValue() float64 { var z float64; return z / z }

// TestOptionsThatPassedValidation: values that were accepted and did nothing useful or
// something surprising.
func TestOptionsThatPassedValidation(t *testing.T) {
	d := tinyDir(t)
	r := func() string { return filepath.Join(t.TempDir(), "r") }
	for _, c := range []struct {
		args []string
		want string
	}{
		{trainArgs(d, r(), "--rank", "100000"), "--rank"},
		{trainArgs(d, r(), "--alpha", "0"), "--alpha"},
		{trainArgs(d, r(), "--warmup", "-5"), "--warmup"},
		{trainArgs(d, r(), "--clip", "-1"), "--clip"},
		{trainArgs(d, r(), "--weight-decay", "-1"), "--weight-decay"},
		{trainArgs(d, r(), "--save-every", "-1"), "--save-every"},
		{trainArgs(d, r(), "--val-every", "-1"), "--val-every"},
		{trainArgs(d, r(), "--max-rows", "-1"), "--max-rows"},
		{append(trainArgs(d, r()), "extra"), "unknown command \"extra\""},
		{[]string{"demo", "--noise", "2", "--out", r()}, "--noise"},
		{[]string{"make-tiny", "--samples", "-1", "--out", r()}, "--samples"},
		{[]string{"generate", "--model", filepath.Join(d, "base.gguf"), "--prompt", "hi", "--n", "0"}, "--n 0"},
		{[]string{"make-tiny", "--out", d}, "not empty"},
	} {
		expectRefusal(t, []string{c.want}, c.args...)
	}
	// An initial adapter of another rank: the message names which is which.
	ad := quickAdapter(t, d) // rank 8
	expectRefusal(t, []string{"it has rank 8, this run's adapter rank 4", "--rank 8"},
		trainArgs(d, r(), "--rank", "4", "--init-adapter", ad, "--steps", "2")...)
}

// TestResumeOfAFinishedRun says so and changes nothing; paths are compared as files.
func TestResumeOfAFinishedRun(t *testing.T) {
	d := tinyDir(t)
	out := filepath.Join(t.TempDir(), "run")
	args := trainArgs(d, out, "--objective", "ce", "--steps", "3", "--save-every", "1")
	if msg, code := run(t, args...); code != 0 {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	sum := fileSum(t, filepath.Join(out, "summary.json"))
	msg, code := run(t, append(args, "--resume")...)
	if code != 0 || !strings.Contains(msg, "finished") {
		t.Fatalf("resume of a finished run: exit %d\n%s", code, msg)
	}
	if fileSum(t, filepath.Join(out, "summary.json")) != sum {
		t.Error("resuming a finished run rewrote its summary")
	}
	// Stop a run, then resume it with the same files spelled another way.
	stopped := filepath.Join(t.TempDir(), "stopped")
	if _, code := run(t, trainArgs(d, stopped, "--objective", "ce", "--steps", "4", "--stop-after", "2")...); code != 1 {
		t.Fatalf("--stop-after: exit %d, want 1", code)
	}
	respelled := trainArgs(d, stopped, "--objective", "ce", "--steps", "4", "--resume")
	for i, a := range respelled {
		if a == "--data" {
			respelled[i+1] = filepath.Join(d, ".", "images", "..", "data.json")
		}
	}
	if msg, code := run(t, respelled...); code != 0 {
		t.Fatalf("resume with the data path spelled differently: exit %d\n%s", code, msg)
	}
}

// TestStaleTemporariesAreSwept: what killed runs left behind goes on the next run.
func TestStaleTemporariesAreSwept(t *testing.T) {
	d := tinyDir(t)
	ad := quickAdapter(t, d)
	outDir := t.TempDir()
	stale := filepath.Join(outDir, ".merged.gguf.tmp-999999999-123")
	os.WriteFile(stale, []byte("half a model"), 0o644)
	if msg, code := run(t, "export", "--model", filepath.Join(d, "base.gguf"), "--lora", ad, "--out", filepath.Join(outDir, "merged.gguf")); code != 0 {
		t.Fatalf("export: exit %d\n%s", code, msg)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("a dead writer's temporary merged model was left in place")
	}
	out := filepath.Join(t.TempDir(), "run")
	args := trainArgs(d, out, "--objective", "ce", "--steps", "4", "--save-every", "1")
	if _, code := run(t, append(args, "--stop-after", "2")...); code != 1 {
		t.Fatal("--stop-after did not stop")
	}
	half := filepath.Join(out, "checkpoints", ".tmp-step-0000003-12345")
	os.MkdirAll(half, 0o755)
	msg, code := run(t, append(args, "--resume")...)
	if code != 0 || !strings.Contains(msg, "unfinished checkpoint") {
		t.Fatalf("resume: exit %d\n%s", code, msg)
	}
	if _, err := os.Stat(half); err == nil {
		t.Error("a killed run's half-written checkpoint folder was left in place")
	}
}

// TestSmallerDataProblems: a BOM, records of the wrong JSON type, empty image paths,
// terminal escapes in --dry-run.
func TestSmallerDataProblems(t *testing.T) {
	d := tinyDir(t)
	raw, _ := os.ReadFile(filepath.Join(d, "data.json"))
	bom := filepath.Join(d, "bom.json")
	os.WriteFile(bom, append([]byte("\xef\xbb\xbf"), raw...), 0o644)
	if msg, code := run(t, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", bom, "--dry-run")...); code != 0 {
		t.Errorf("a data file with a UTF-8 BOM: exit %d\n%s", code, msg)
	}
	str := filepath.Join(d, "str.json")
	os.WriteFile(str, []byte(`[{"id":"a","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"yo"}]}, "oops"]`), 0o644)
	expectRefusal(t, []string{"record 2", "JSON object", "a string"}, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", str, "--dry-run")...)
	num := filepath.Join(d, "num.json")
	os.WriteFile(num, []byte(`[{"id":"a","conversations":[{"from":"human","value":42}]}]`), 0o644)
	expectRefusal(t, []string{"record 1", "value", "text", "number"}, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", num, "--dry-run")...)
	empty := writeData(t, d, "emptyimg.json", []map[string]any{{"id": "e", "image": "", "conversations": conversation("what?", "a cat.")}})
	expectRefusal(t, []string{"image path is empty"}, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", empty, "--val-split", "0", "--dry-run")...)
	esc := writeData(t, d, "esc.json", []map[string]any{{"id": "x", "image": "images/000.png", "conversations": conversation("<image>\nwhat?", "a \x1b[31mred\u202e square.")}})
	msg, code := run(t, trainArgs(d, filepath.Join(t.TempDir(), "r"), "--data", esc, "--val-split", "0", "--dry-run")...)
	if code != 0 || strings.Contains(msg, "\x1b") || strings.Contains(msg, "\u202e") || !strings.Contains(msg, `\u001b`) {
		t.Errorf("--dry-run printed terminal controls raw (exit %d):\n%q", code, msg)
	}
}

// TestSignalDuringLoading: SIGTERM while the data is read ends the run at once, with
// nothing written.
func TestSignalDuringLoading(t *testing.T) {
	d := tinyDir(t)
	var recs []map[string]any
	for i := 0; i < 40000; i++ { // about 10 s of loading here
		recs = append(recs, map[string]any{"id": fmt.Sprint(i), "image": fmt.Sprintf("images/%03d.png", i%20),
			"conversations": conversation("<image>\nwhat is it?", "a red square on the left.")})
	}
	big := writeData(t, d, "big.json", recs)
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(calftBin, "train", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--data", big, "--out", out, "--cache-dir", "none", "--steps", "5", "--threads", "2")
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	sent := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	took := time.Since(sent)
	t.Logf("exited %v after SIGTERM: %v", took.Round(time.Millisecond), err)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(buf.String(), "while reading the data") {
		t.Fatalf("want exit 1 while reading the data, got %v:\n%s", err, buf.String())
	}
	if took > 3*time.Second {
		t.Errorf("the run took %v to act on SIGTERM", took)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("an interrupted start left %s behind", out)
	}
}
