package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The MPI tests run bin/calft-mpi's code (build tag mpi) as 2 ranks on this machine
// (mpirun --oversubscribe -np 2, one thread each). make test writes MPI's flags and the
// tests build their own binary; without mpirun they skip.

var (
	mpiOnce sync.Once
	mpiBin  string
	mpiSkip string
)

// mpiSetup returns the MPI build of calft, or skips the test with the reason.
func mpiSetup(t *testing.T) string {
	t.Helper()
	mpiOnce.Do(func() {
		if _, err := exec.LookPath("mpirun"); err != nil {
			mpiSkip = "mpirun not found: install Open MPI (./scripts/install-deps.sh --mpi) to run the MPI tests"
			return
		}
		if _, err := os.Stat(filepath.Join("..", "..", "bindings", "mpi", "zz_flags.go")); err != nil {
			mpiSkip = "bindings/mpi/zz_flags.go is missing: run make mpi (or make test) once to write MPI's build flags"
			return
		}
		mpiBin = filepath.Join(filepath.Dir(calftBin), "calft-mpi")
		build := exec.Command("go", "build", "-tags", "mpi", "-o", mpiBin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			mpiSkip = "building with -tags mpi failed:\n" + string(out)
			mpiBin = ""
		}
	})
	if mpiBin == "" {
		if strings.HasPrefix(mpiSkip, "building") {
			t.Fatal(mpiSkip)
		}
		t.Skip(mpiSkip)
	}
	return mpiBin
}

// mpirun runs calft-mpi as np ranks, killed (the whole process group) after limit; it
// returns the output, the exit code and how long it took.
func mpirun(t *testing.T, np int, limit time.Duration, args ...string) (string, int, time.Duration) {
	t.Helper()
	bin := mpiSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	full := append([]string{"--oversubscribe", "-np", strconv.Itoa(np), bin}, args...)
	cmd := exec.CommandContext(ctx, "mpirun", full...)
	// As root (CI containers) Open MPI wants to be told; in a container its shared-memory
	// transport cannot always read another process's memory (ptrace rules): copy instead.
	cmd.Env = append(os.Environ(), "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
		"OMPI_MCA_btl_vader_single_copy_mechanism=none")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err := cmd.Run()
	took := time.Since(t0)
	if ctx.Err() != nil {
		t.Fatalf("mpirun %v did not end within %v:\n%s", args, limit, out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), took
	}
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0, took
}

// mpiTrainArgs is a short CAL run with accumulation; the backward pass uses the F32
// weights, so that the only difference between 2 ranks and 1 process is the order of
// the sums (BF16 copies round the gradients at a scale that depends on the batch).
func mpiTrainArgs(d, out string, batch int, extra ...string) []string {
	args := trainArgs(d, out, "--objective", "cal", "--steps", "4", "--accum", "2", "--backward-weights", "f32",
		"--threads", "1", "--batch", strconv.Itoa(batch), "--val-every", "2", "--save-every", "2")
	return append(args, extra...)
}

func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(a[i]) * float64(a[i])
	}
	return math.Sqrt(num / den)
}

// TestMPITrainMatchesOneProcess trains with 2 ranks of batch 2 and with one process of
// batch 4: the same samples per step, the same weighting, the same adapter. A 2-rank
// run stopped and resumed ends with the uninterrupted run's adapter, and a resume with
// another process count is refused.
func TestMPITrainMatchesOneProcess(t *testing.T) {
	mpiSetup(t)
	d := tinyDir(t)
	one := filepath.Join(t.TempDir(), "one")
	if msg, code := run(t, mpiTrainArgs(d, one, 4)...); code != 0 {
		t.Fatalf("one process: exit %d\n%s", code, msg)
	}
	two := filepath.Join(t.TempDir(), "two")
	if msg, code, _ := mpirun(t, 2, 60*time.Second, mpiTrainArgs(d, two, 2)...); code != 0 {
		t.Fatalf("2 ranks: exit %d\n%s", code, msg)
	}
	a, b := adapterValues(t, filepath.Join(one, "adapter.gguf")), adapterValues(t, filepath.Join(two, "adapter.gguf"))
	if len(a) != len(b) {
		t.Fatalf("adapters of %d and %d values", len(a), len(b))
	}
	if r := relDiff(a, b); r > 1e-5 {
		t.Errorf("2 ranks × batch 2 vs 1 process × batch 4: adapters differ by %.3g (relative L2), want ≤ 1e-5", r)
	} else {
		t.Logf("adapters differ by %.3g (relative L2)", r)
	}
	compareMetrics(t, one, two)
	var sum struct {
		Ranks int `json:"ranks"`
	}
	raw, _ := os.ReadFile(filepath.Join(two, "summary.json"))
	if json.Unmarshal(raw, &sum); sum.Ranks != 2 {
		t.Errorf("summary.json of the 2-rank run says ranks %d", sum.Ranks)
	}

	stopped := filepath.Join(t.TempDir(), "stopped")
	if msg, code, _ := mpirun(t, 2, 60*time.Second, mpiTrainArgs(d, stopped, 2, "--stop-after", "2")...); code == 0 || !strings.Contains(msg, "--resume") {
		t.Fatalf("stopped run: exit %d\n%s", code, msg)
	}
	msg, code := run(t, mpiTrainArgs(d, stopped, 2, "--resume")...)
	if code == 0 || !strings.Contains(msg, "written by a run of 2 process") {
		t.Errorf("resuming a 2-rank run in one process: exit %d, want a refusal naming the rank count\n%s", code, msg)
	}
	if msg, code, _ := mpirun(t, 2, 60*time.Second, mpiTrainArgs(d, stopped, 2, "--resume")...); code != 0 {
		t.Fatalf("resumed run: exit %d\n%s", code, msg)
	}
	c := adapterValues(t, filepath.Join(stopped, "adapter.gguf"))
	if maxAbsDiff(b, c) != 0 {
		t.Errorf("the resumed 2-rank adapter differs from the uninterrupted one by %g", maxAbsDiff(b, c))
	}
}

// compareMetrics checks that two runs logged the same steps with the same losses.
func compareMetrics(t *testing.T, a, b string) {
	t.Helper()
	read := func(dir string) []map[string]float64 {
		raw, err := os.ReadFile(filepath.Join(dir, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]float64
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			m := map[string]float64{}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		return out
	}
	ma, mb := read(a), read(b)
	if len(ma) != len(mb) {
		t.Fatalf("%d and %d metrics lines", len(ma), len(mb))
	}
	for i := range ma {
		for _, k := range []string{"step", "epoch", "loss", "cal_weight_mean", "grad_norm", "val_loss"} {
			x, y := ma[i][k], mb[i][k]
			if math.Abs(x-y) > 1e-5*max(math.Abs(x), 1) {
				t.Errorf("step %v: %s %v (1 process) vs %v (2 ranks)", ma[i]["step"], k, x, y)
			}
		}
	}
}

// TestMPIScoreMatchesOneProcess scores with 2 ranks: the same JSONL and HTML, byte for
// byte, as one process writes.
func TestMPIScoreMatchesOneProcess(t *testing.T) {
	mpiSetup(t)
	d := tinyDir(t)
	dir := t.TempDir()
	args := func(name string) []string {
		return []string{"score", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
			"--data", filepath.Join(d, "data.json"), "--out", filepath.Join(dir, name+".jsonl"), "--html", filepath.Join(dir, name+".html"),
			"--html-samples", "5", "--threads", "1", "--cache-dir", filepath.Join(dir, "cache")}
	}
	if msg, code := run(t, args("one")...); code != 0 {
		t.Fatalf("one process: exit %d\n%s", code, msg)
	}
	if msg, code, _ := mpirun(t, 2, 60*time.Second, args("two")...); code != 0 {
		t.Fatalf("2 ranks: exit %d\n%s", code, msg)
	}
	for _, ext := range []string{".jsonl", ".html"} {
		a, _ := os.ReadFile(filepath.Join(dir, "one"+ext))
		b, _ := os.ReadFile(filepath.Join(dir, "two"+ext))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("score%s: 2 ranks wrote %d bytes, one process %d; they differ", ext, len(b), len(a))
		}
	}
}

// TestMPIFailingRankEndsTheJob: a rank that fails (an error at a step, SIGKILL, a run
// that cannot start) ends every rank, with an error, in bounded time.
func TestMPIFailingRankEndsTheJob(t *testing.T) {
	mpiSetup(t)
	d := tinyDir(t)
	for _, c := range []struct {
		name, fault, want string
	}{
		{"error", "1:3", "test fault: rank 1 fails at step 3"},
		{"sigkill", "1:3:kill", ""},
	} {
		out := filepath.Join(t.TempDir(), c.name)
		msg, code, took := mpirun(t, 2, 30*time.Second, mpiTrainArgs(d, out, 2, "--fault", c.fault)...)
		if code == 0 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: exit %d after %v, want an error (%q)\n%s", c.name, code, took, c.want, msg)
		}
		if _, err := os.Stat(filepath.Join(out, "adapter.gguf")); err == nil {
			t.Errorf("%s: the run wrote an adapter", c.name)
		}
	}
	// A run that cannot start (its folder holds a run) says so once, from rank 0.
	out := filepath.Join(t.TempDir(), "taken")
	os.MkdirAll(filepath.Join(out, "checkpoints"), 0o755)
	msg, code, _ := mpirun(t, 2, 30*time.Second, mpiTrainArgs(d, out, 2)...)
	if code == 0 || strings.Count(msg, "already holds a run") != 1 {
		t.Errorf("a taken --out: exit %d, want one message from rank 0\n%s", code, msg)
	}
}
