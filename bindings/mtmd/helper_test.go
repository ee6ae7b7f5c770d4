package mtmd

import (
	"testing"

	"github.com/calft/calft/tiny"
)

// testDir writes the tiny synthetic models (base.gguf, mmproj.gguf, images/) into a
// fresh temporary directory; it takes a few tens of milliseconds.
func testDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.Generate(dir, 1); err != nil {
		t.Fatal(err)
	}
	return dir
}
