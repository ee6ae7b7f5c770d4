package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests below kill, damage and starve training runs; every run must end, after
// --resume, with exactly the adapter of a run nothing happened to.

// reliabilityArgs is a run of 24 steps that checkpoints every 3.
func reliabilityArgs(d, out string, extra ...string) []string {
	return trainArgs(d, out, append([]string{"--objective", "cal", "--steps", "24", "--save-every", "3"}, extra...)...)
}

func referenceAdapter(t *testing.T, d string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "whole")
	if msg, code := run(t, reliabilityArgs(d, out)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, msg)
	}
	b, err := os.ReadFile(filepath.Join(out, "adapter.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// finishWithResume resumes a run until it completes (at most a few times).
func finishWithResume(t *testing.T, d, out string) []byte {
	t.Helper()
	for range 3 {
		msg, code := run(t, reliabilityArgs(d, out, "--resume")...)
		if code == 0 {
			b, err := os.ReadFile(filepath.Join(out, "adapter.gguf"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		t.Logf("resume: exit %d\n%s", code, msg)
	}
	t.Fatal("the run never finished")
	return nil
}

// TestSIGKILLAndResume kills runs at random moments, and in the middle of checkpoint
// writes; each resumed run ends with the uninterrupted run's adapter, byte for byte.
func TestSIGKILLAndResume(t *testing.T) {
	d := tinyDir(t)
	want := referenceAdapter(t, d)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := range 4 {
		out := filepath.Join(t.TempDir(), "killed")
		cmd := exec.Command(calftBin, reliabilityArgs(d, out)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait for the first checkpoint, then kill at a random moment of the run.
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(filepath.Join(out, "checkpoints", "latest")); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		if !bytes.Equal(finishWithResume(t, d, out), want) {
			t.Errorf("kill %d: the resumed adapter differs from the uninterrupted run's", i)
		}
	}
	for _, step := range []string{"3", "9", "24"} {
		out := filepath.Join(t.TempDir(), "crashed")
		msg, code := run(t, reliabilityArgs(d, out, "--crash-in-checkpoint", step)...)
		if code == 0 {
			t.Fatalf("the run did not die in checkpoint %s:\n%s", step, msg)
		}
		got := finishWithResume(t, d, out)
		if !bytes.Equal(got, want) {
			t.Errorf("killed while writing checkpoint %s: the resumed adapter differs", step)
		}
		if leftovers, _ := filepath.Glob(filepath.Join(out, "checkpoints", ".tmp-*")); len(leftovers) > 0 {
			t.Errorf("killed while writing checkpoint %s: %v left behind", step, leftovers)
		}
	}
}

// damage changes one float of a checkpoint file in place (same size), or cuts it.
func damage(t *testing.T, path string, truncate bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if truncate {
		b = b[:len(b)/2]
	} else {
		b[len(b)-3] ^= 0x40 // a bit of the last value's exponent
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedCheckpointFallsBack: a damaged latest checkpoint is passed over for the one
// before, with a warning, and the run still ends with the right adapter; when none is
// good, resume says so and exits 1.
func TestDamagedCheckpointFallsBack(t *testing.T) {
	d := tinyDir(t)
	want := referenceAdapter(t, d)
	for _, c := range []struct {
		file     string
		truncate bool
	}{{"adapter.gguf", false}, {"optimizer.bin", false}, {"adapter.gguf", true}, {"state.json", true}} {
		out := filepath.Join(t.TempDir(), "run")
		if _, code := run(t, reliabilityArgs(d, out, "--stop-after", "9")...); code != 1 {
			t.Fatal("--stop-after did not stop the run")
		}
		damage(t, filepath.Join(out, "checkpoints", "step-0000009", c.file), c.truncate)
		msg, code := run(t, reliabilityArgs(d, out, "--resume")...)
		if code != 0 || !strings.Contains(msg, "warning") || !strings.Contains(msg, "step-0000006") {
			t.Fatalf("%s damaged (truncated %v): exit %d, want a warning and a resume from step 6:\n%s", c.file, c.truncate, code, msg)
		}
		got, _ := os.ReadFile(filepath.Join(out, "adapter.gguf"))
		if !bytes.Equal(got, want) {
			t.Errorf("%s damaged: the adapter differs from the uninterrupted run's", c.file)
		}
	}
	out := filepath.Join(t.TempDir(), "run")
	if _, code := run(t, reliabilityArgs(d, out, "--stop-after", "9")...); code != 1 {
		t.Fatal("--stop-after did not stop the run")
	}
	damage(t, filepath.Join(out, "checkpoints", "step-0000009", "adapter.gguf"), false)
	damage(t, filepath.Join(out, "checkpoints", "step-0000006", "optimizer.bin"), true)
	msg := expectRefusal(t, []string{"no usable checkpoint", "step-0000009", "step-0000006"}, reliabilityArgs(d, out, "--resume")...)
	t.Logf("none good:\n%s", msg)
}

// TestDiskFullKeepsThePreviousCheckpoint starves the run of file space (the file size
// limit: writes fail as on a full disk) while it writes a checkpoint: it must stop with a
// clear error and leave the checkpoint before intact, so a later resume ends right.
func TestDiskFullKeepsThePreviousCheckpoint(t *testing.T) {
	d := tinyDir(t)
	want := referenceAdapter(t, d)
	out := filepath.Join(t.TempDir(), "run")
	if _, code := run(t, reliabilityArgs(d, out, "--stop-after", "6")...); code != 1 {
		t.Fatal("--stop-after did not stop the run")
	}
	before, _ := os.ReadFile(filepath.Join(out, "checkpoints", "step-0000006", "adapter.gguf"))
	// 20 KiB: enough for the metrics and configuration, not for an adapter or moments.
	args := append([]string{"-c", `ulimit -f 20 && exec "$0" "$@"`, calftBin}, reliabilityArgs(d, out, "--resume")...)
	cmd := exec.Command("sh", args...)
	msg, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || !strings.Contains(string(msg), "file too large") {
		t.Fatalf("want exit 1 with the write error, got %v:\n%s", err, msg)
	}
	t.Logf("with the disk full: %s", bytes.TrimSpace(msg[bytes.LastIndex(msg, []byte("calft:")):]))
	after, _ := os.ReadFile(filepath.Join(out, "checkpoints", "step-0000006", "adapter.gguf"))
	if !bytes.Equal(before, after) || len(after) == 0 {
		t.Fatal("the previous checkpoint changed")
	}
	if !bytes.Equal(finishWithResume(t, d, out), want) {
		t.Error("after the full disk, the resumed run's adapter differs")
	}
	_ = syscall.SIGXFSZ // ignored by Go programs: writes past the limit fail with EFBIG
}
