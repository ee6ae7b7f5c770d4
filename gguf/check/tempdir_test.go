package check_test

import (
	"os"
	"testing"
)

// mkdirTemp makes the directory the tiny model is generated into, shared
// by all tests of this package and removed by TestMain.
func mkdirTemp() (string, error) { return os.MkdirTemp("", "gguf-tiny-") }

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}
