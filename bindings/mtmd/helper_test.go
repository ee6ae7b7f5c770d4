package mtmd

import (
	"testing"

	"github.com/calft/calft/tiny"
)

// testDir writes the tiny synthetic models (base.gguf, mmproj.gguf, images/) into a
// fresh temporary directory.
func testDir(t *testing.T) string { return tiny.TestDir(t, 1) }
