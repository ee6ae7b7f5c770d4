package demo

import (
	"bytes"

	"gonum.org/v1/plot/vg/vgimg"

	"github.com/calft/calft/internal/fsutil"
)

// savePNG encodes a canvas and writes it atomically.
func savePNG(img *vgimg.Canvas, path string) error {
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b.Bytes())
}
