package fsutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock a command holds in the folder it writes.
const LockFile = ".calft.lock"

// Lock is an exclusive hold on a folder by one process (an advisory lock on a file in
// it, released by the system when the process ends however it ends).
type Lock struct{ f *os.File }

// LockDir takes the folder's lock, creating the folder when missing, or says which
// process holds it.
func LockDir(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(f.Name())
		f.Close()
		who := "another calft process"
		if p := strings.TrimSpace(string(pid)); p != "" {
			who += " (pid " + p + ")"
		}
		return nil, fmt.Errorf("%s is in use by %s; wait for it to finish, or choose another folder", dir, who)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f}, nil
}

// Unlock releases the folder.
func (l *Lock) Unlock() {
	if l == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
