package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Path is a file a command reads or writes, with the flag that named it.
type Path struct {
	Flag string // "--out", "--model", …
	Path string
}

// CheckOutputs refuses outputs that would destroy something: an output that is one of
// the inputs (the same file, however its path is spelled), two outputs that are the same
// file, an output that exists but is not a regular file (a folder, a FIFO, a device, a
// symlink: writing would replace it), and an output whose folder cannot be written. It
// is called before any work, so a mistake costs nothing. Empty paths are skipped.
func CheckOutputs(outs, ins []Path) error {
	for i, o := range outs {
		if o.Path == "" {
			continue
		}
		for _, in := range ins {
			if in.Path != "" && SameFile(o.Path, in.Path) {
				return fmt.Errorf("%s %s is also the %s input; writing it would destroy that input: choose another path", o.Flag, o.Path, in.Flag)
			}
		}
		for _, o2 := range outs[:i] {
			if o2.Path != "" && SameFile(o.Path, o2.Path) {
				return fmt.Errorf("%s and %s are both %s; one would overwrite the other: give them different paths", o2.Flag, o.Flag, o.Path)
			}
		}
		if err := checkWritable(o); err != nil {
			return err
		}
	}
	return nil
}

// checkWritable refuses an output that is not, or cannot become, a regular file.
func checkWritable(o Path) error {
	st, err := os.Lstat(o.Path)
	switch {
	case err == nil && st.Mode()&os.ModeSymlink != 0:
		return fmt.Errorf("%s %s is a symbolic link; calft writes a new file and would replace the link: give the target's path or another one", o.Flag, o.Path)
	case err == nil && st.IsDir():
		return fmt.Errorf("%s %s is a folder; give a file path", o.Flag, o.Path)
	case err == nil && !st.Mode().IsRegular():
		return fmt.Errorf("%s %s is not a regular file (%s); calft writes files atomically by renaming a new one over the old, which would replace it: give a file path", o.Flag, o.Path, st.Mode().Type())
	case err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s %s: %w", o.Flag, o.Path, err)
	}
	return CheckDirWritable(o.Flag, filepath.Dir(o.Path))
}

// CheckDirWritable refuses a folder calft could not write into, or could not create:
// the nearest folder that exists must be one this process can write. Nothing is left
// behind.
func CheckDirWritable(flag, dir string) error {
	d := dir
	for {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("%s: %s is not a folder, so %s cannot be created", flag, d, dir)
			}
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("%s: no part of %s exists", flag, dir)
		}
		d = parent
	}
	// A file made and removed at once: permission bits alone do not tell (root, read-only
	// and special file systems).
	f, err := os.CreateTemp(d, ".calft-write-check-*")
	if err != nil {
		return fmt.Errorf("%s: cannot write into %s: %w", flag, d, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// SameFile reports whether two paths name one file: the same file on disk, or the same
// absolute path when neither exists yet.
func SameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	pa, e1 := filepath.Abs(a)
	pb, e2 := filepath.Abs(b)
	return e1 == nil && e2 == nil && pa == pb
}

// TempPattern is the name pattern of a temporary file that becomes base: hidden, with
// the writing process's id, so that a later run can tell a stale one from a live one.
func TempPattern(base string) string {
	return "." + base + ".tmp-" + strconv.Itoa(os.Getpid()) + "-*"
}

// SweepTemps removes, from dir, temporary files and folders of base left by processes
// that no longer run (killed while writing). It returns how many it removed.
func SweepTemps(dir, base string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	prefix := "." + base + ".tmp-"
	n := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || alive(pid) {
			continue
		}
		if os.RemoveAll(filepath.Join(dir, e.Name())) == nil {
			n++
		}
	}
	return n
}

// alive reports whether a process with this id runs.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
