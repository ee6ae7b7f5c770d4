package imageio

import (
	"bytes"
	"encoding/binary"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/bmp"
)

// FuzzDecode feeds arbitrary bytes to the decoder of every format: it must return an
// image that matches its size or an error, never panic, and never allocate the image a
// header declares beyond the limits (TestDecompressionBombs checks that part exactly).
func FuzzDecode(f *testing.F) {
	src := quadrants(12, 6)
	jpg := small(f, func(b *bytes.Buffer) error { return jpeg.Encode(b, src, &jpeg.Options{Quality: 90}) })
	app0 := []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	f.Add(small(f, func(b *bytes.Buffer) error { return png.Encode(b, src) }))
	f.Add(small(f, func(b *bytes.Buffer) error { return (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(b, src) }))
	f.Add(jpg)
	f.Add(withSegments(jpg, app0, exifAPP1(6, binary.LittleEndian)))
	f.Add(withSegments(jpg, exifAPP1(7, binary.BigEndian)))
	f.Add(small(f, func(b *bytes.Buffer) error { return gif.Encode(b, src, nil) }))
	f.Add(small(f, func(b *bytes.Buffer) error { return bmp.Encode(b, src) }))
	f.Add(webpProbe(f, true))
	f.Add(webpProbe(f, false))
	f.Add(webpExtendedOfSize(f, 1, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := JPEGOrientation(data)
		if o < OrientNormal || o > OrientRotate270 {
			t.Fatalf("orientation %d", o)
		}
		opts := []Options{{}}
		if o != OrientNormal {
			opts = append(opts, Options{IgnoreOrientation: true}) // the stored layout
		}
		var sizes [][2]int
		for _, opt := range opts {
			m, err := DecodeWith(data, opt)
			if err != nil {
				if m != nil {
					t.Fatal("an image with an error")
				}
				return
			}
			if m.W <= 0 || m.H <= 0 || m.W > MaxSide || m.H > MaxSide || int64(m.W)*int64(m.H) > MaxPixels {
				t.Fatalf("decoded %dx%d", m.W, m.H)
			}
			if len(m.Pix) != 3*m.W*m.H {
				t.Fatalf("%dx%d with %d bytes", m.W, m.H, len(m.Pix))
			}
			sizes = append(sizes, [2]int{m.W, m.H})
		}
		if len(sizes) == 2 && o >= OrientTranspose && sizes[0] != [2]int{sizes[1][1], sizes[1][0]} {
			t.Fatalf("orientation %d: %v, stored %v", o, sizes[0], sizes[1])
		}
	})
}
