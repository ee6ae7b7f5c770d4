package fsutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheckOutputs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.gguf")
	os.WriteFile(in, []byte("x"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(filepath.Join(dir, "elsewhere"), link)
	for _, c := range []struct {
		outs []Path
		want string
	}{
		{[]Path{{"--out", in}}, "also the --model input"},
		{[]Path{{"--out", filepath.Join(dir, ".", "in.gguf")}}, "also the --model input"},
		{[]Path{{"--out", link}}, "symbolic link"},
		{[]Path{{"--out", dir}}, "folder"},
		{[]Path{{"--out", filepath.Join(dir, "a")}, {"--html", filepath.Join(dir, "a")}}, "both"},
		{[]Path{{"--out", filepath.Join(in, "sub", "x")}}, "not a folder"},
	} {
		err := CheckOutputs(c.outs, []Path{{"--model", in}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.outs, err, c.want)
		}
	}
	if err := CheckOutputs([]Path{{"--out", filepath.Join(dir, "new", "deeper", "out.jsonl")}}, []Path{{"--model", in}}); err != nil {
		t.Errorf("a new file in a new folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Error("the check created a folder")
	}
}

func TestSweepTempsKeepsLiveWriters(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	dead.Run()
	stale := filepath.Join(dir, ".m.gguf.tmp-"+itoa(dead.Process.Pid)+"-1")
	live := filepath.Join(dir, ".m.gguf.tmp-"+itoa(os.Getpid())+"-2")
	other := filepath.Join(dir, ".x.gguf.tmp-1-3")
	for _, p := range []string{stale, live, other} {
		os.WriteFile(p, nil, 0o644)
	}
	if n := SweepTemps(dir, "m.gguf"); n != 1 {
		t.Errorf("removed %d, want 1", n)
	}
	for p, want := range map[string]bool{stale: false, live: true, other: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s present = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}

func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files: a second open in this process conflicts too.
	if _, err := LockDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second lock: %v", err)
	}
	l.Unlock()
	l2, err := LockDir(dir)
	if err != nil {
		t.Errorf("lock after unlock: %v", err)
	}
	l2.Unlock()
}

func itoa(n int) string { return strconv.Itoa(n) }
