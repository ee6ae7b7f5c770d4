package gguf

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/calft/calft/internal/fsutil"
)

// atomicFile is a temporary file in the destination's directory that
// becomes the destination only on commit, so a crash or an error never
// leaves a half-written model under the final name.
type atomicFile struct {
	*os.File
	dest string
}

func createAtomic(dest string) (*atomicFile, error) {
	dir, base := filepath.Split(dest)
	if dir == "" {
		dir = "."
	}
	fsutil.SweepTemps(dir, base) // left by a writer that was killed
	tmp, err := os.CreateTemp(dir, fsutil.TempPattern(base))
	if err != nil {
		return nil, fmt.Errorf("%s: cannot create a temporary file next to it: %w", dest, err)
	}
	return &atomicFile{File: tmp, dest: dest}, nil
}

// commit flushes the data to disk, then renames the temporary file over the
// destination and syncs the directory so the rename itself is durable.
func (a *atomicFile) commit() error {
	if err := a.Sync(); err != nil {
		a.abort()
		return fmt.Errorf("%s: sync failed: %w", a.dest, err)
	}
	// CreateTemp makes the file private; a model file is ordinary data.
	if err := a.Chmod(0o644); err != nil {
		a.abort()
		return fmt.Errorf("%s: chmod failed: %w", a.dest, err)
	}
	if err := a.Close(); err != nil {
		os.Remove(a.Name())
		return fmt.Errorf("%s: close failed: %w", a.dest, err)
	}
	if err := os.Rename(a.Name(), a.dest); err != nil {
		os.Remove(a.Name())
		return fmt.Errorf("%s: cannot move the finished file into place: %w", a.dest, err)
	}
	if d, err := os.Open(filepath.Dir(a.dest)); err == nil {
		d.Sync() // best effort: some filesystems cannot sync directories
		d.Close()
	}
	return nil
}

// abort discards the temporary file.
func (a *atomicFile) abort() {
	a.Close()
	os.Remove(a.Name())
}
