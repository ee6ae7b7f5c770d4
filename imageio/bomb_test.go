package imageio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

// Hand-made headers: a small valid file of each format with its declared size patched,
// so that the header claims a huge image while the file holds a few bytes of pixels.

func small(tb testing.TB, enc func(*bytes.Buffer) error) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := enc(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// pngOfSize patches IHDR (right after the signature) and its CRC.
func pngOfSize(tb testing.TB, w, h uint32) []byte {
	b := small(tb, func(b *bytes.Buffer) error { return png.Encode(b, quadrants(8, 8)) })
	if string(b[12:16]) != "IHDR" {
		tb.Fatal("no IHDR first")
	}
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// jpegOfSize patches the baseline SOF0 segment.
func jpegOfSize(tb testing.TB, w, h uint16) []byte {
	b := small(tb, func(b *bytes.Buffer) error { return jpeg.Encode(b, quadrants(16, 16), nil) })
	for i := 2; i+9 < len(b); i++ {
		if b[i] == 0xFF && b[i+1] == 0xC0 {
			binary.BigEndian.PutUint16(b[i+5:], h)
			binary.BigEndian.PutUint16(b[i+7:], w)
			return b
		}
	}
	tb.Fatal("no SOF0")
	return nil
}

// gifOfSize patches the logical screen and the first frame's descriptor.
func gifOfSize(tb testing.TB, w, h uint16) []byte {
	b := small(tb, func(b *bytes.Buffer) error { return gif.Encode(b, quadrants(8, 8), nil) })
	binary.LittleEndian.PutUint16(b[6:], w)
	binary.LittleEndian.PutUint16(b[8:], h)
	p := 13
	if b[10]&0x80 != 0 { // global colour table
		p += 3 << (b[10]&7 + 1)
	}
	for p < len(b) && b[p] == 0x21 { // extensions: label, then sub-blocks
		p += 2
		for p < len(b) && b[p] != 0 {
			p += int(b[p]) + 1
		}
		p++
	}
	if p+9 > len(b) || b[p] != 0x2C {
		tb.Fatal("no image descriptor")
	}
	binary.LittleEndian.PutUint16(b[p+5:], w)
	binary.LittleEndian.PutUint16(b[p+7:], h)
	return b
}

// bmpOfSize patches the BITMAPINFOHEADER.
func bmpOfSize(tb testing.TB, w, h int32) []byte {
	b := small(tb, func(b *bytes.Buffer) error { return bmp.Encode(b, quadrants(8, 8)) })
	binary.LittleEndian.PutUint32(b[18:], uint32(w))
	binary.LittleEndian.PutUint32(b[22:], uint32(h))
	return b
}

func webpProbe(tb testing.TB, lossless bool) []byte {
	s := "UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA"
	if lossless {
		s = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA=="
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// webpLosslessOfSize patches the VP8L header: 14 bits of width−1, 14 of height−1.
func webpLosslessOfSize(tb testing.TB, w, h uint32) []byte {
	b := webpProbe(tb, true)
	if b[20] != 0x2F {
		tb.Fatal("no VP8L signature")
	}
	bits := binary.LittleEndian.Uint32(b[21:])
	bits = bits&^(1<<28-1) | (w-1)&0x3FFF | ((h-1)&0x3FFF)<<14
	binary.LittleEndian.PutUint32(b[21:], bits)
	return b
}

// webpLossyOfSize patches the VP8 key frame header after its start code.
func webpLossyOfSize(tb testing.TB, w, h uint16) []byte {
	b := webpProbe(tb, false)
	i := bytes.Index(b, []byte{0x9D, 0x01, 0x2A})
	if i < 0 {
		tb.Fatal("no VP8 start code")
	}
	binary.LittleEndian.PutUint16(b[i+3:], w&0x3FFF)
	binary.LittleEndian.PutUint16(b[i+5:], h&0x3FFF)
	return b
}

// webpExtendedOfSize puts a VP8X chunk (24-bit canvas sides) before the lossy probe's
// frame, which the decoder only reaches after the canvas size passed.
func webpExtendedOfSize(tb testing.TB, w, h uint32) []byte {
	frame := webpProbe(tb, false)[12:]
	x := []byte("VP8X\x0a\x00\x00\x00\x00\x00\x00\x00")
	x = append(x, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	body := append(append([]byte("WEBP"), x...), frame...)
	out := []byte("RIFF\x00\x00\x00\x00")
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	return append(out, body...)
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestDecompressionBombs: a small file of each format declaring a huge image (too many
// pixels, too long a side, or more pixels than its bytes can encode) is refused from
// its header, before the decoder allocates the image.
func TestDecompressionBombs(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"png 30000x30000", pngOfSize(t, 30000, 30000), "pixel limit"},
		{"png 100000x1", pngOfSize(t, 100000, 1), "side longer"},
		{"png 1x100000", pngOfSize(t, 1, 100000), "side longer"},
		{"png 11000x11000", pngOfSize(t, 11000, 11000), "decompression bomb"},
		{"jpeg 30000x30000", jpegOfSize(t, 30000, 30000), "pixel limit"},
		{"jpeg 65535x65535", jpegOfSize(t, 65535, 65535), "pixel limit"},
		{"jpeg 40000x1", jpegOfSize(t, 40000, 1), "side longer"},
		{"jpeg 11000x11000", jpegOfSize(t, 11000, 11000), "decompression bomb"},
		{"gif 30000x30000", gifOfSize(t, 30000, 30000), "pixel limit"},
		{"gif 65535x65535", gifOfSize(t, 65535, 65535), "pixel limit"},
		{"gif 40000x1", gifOfSize(t, 40000, 1), "side longer"},
		{"bmp 30000x30000", bmpOfSize(t, 30000, 30000), "pixel limit"},
		{"bmp 30000x-30000", bmpOfSize(t, 30000, -30000), "pixel limit"},
		{"bmp 100000x1", bmpOfSize(t, 100000, 1), "side longer"},
		{"bmp 11000x11000", bmpOfSize(t, 11000, 11000), "decompression bomb"},
		{"webp lossless 16384x16384", webpLosslessOfSize(t, 16384, 16384), "pixel limit"},
		{"webp lossy 16383x16383", webpLossyOfSize(t, 16383, 16383), "pixel limit"},
		{"webp extended 30000x30000", webpExtendedOfSize(t, 30000, 30000), "pixel limit"},
		{"webp extended 100000x1", webpExtendedOfSize(t, 100000, 1), "side longer"},
		// Within both limits, but far more pixels than the bytes can encode.
		{"gif 16384x8192", gifOfSize(t, 16384, 8192), "decompression bomb"},
		{"webp lossless 16384x8192", webpLosslessOfSize(t, 16384, 8192), "decompression bomb"},
		{"webp lossy 16383x8192", webpLossyOfSize(t, 16383, 8192), "decompression bomb"},
		{"webp extended 16383x8192", webpExtendedOfSize(t, 16383, 8192), "decompression bomb"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if len(c.data) > 1000 {
				t.Fatalf("the bomb takes %d bytes; it should be small", len(c.data))
			}
			// The header parses: it is the declared size that is refused.
			cfg, _, err := image.DecodeConfig(bytes.NewReader(c.data))
			if err != nil {
				t.Fatalf("hand-made header does not parse: %v", err)
			}
			var derr error
			n := allocated(func() { _, derr = Decode(c.data) })
			if derr == nil || !strings.Contains(derr.Error(), c.want) {
				t.Fatalf("%dx%d: got %v, want an error about the %s", cfg.Width, cfg.Height, derr, c.want)
			}
			if n > 1<<20 {
				t.Errorf("refusing it allocated %d bytes", n)
			}
		})
	}
}

// TestSmallFlatWebPStillDecodes: up to 4 megapixels a flat image may take a few bytes
// (the lossless probe is one colour: at 2048×2048 it is still 34 bytes).
func TestSmallFlatWebPStillDecodes(t *testing.T) {
	for _, s := range [][2]uint32{{1000, 1000}, {2048, 2048}, {16384, 1}} {
		m, err := Decode(webpLosslessOfSize(t, s[0], s[1]))
		if err != nil || m.W != int(s[0]) || m.H != int(s[1]) {
			t.Fatalf("%dx%d: %v", s[0], s[1], err)
		}
	}
}

// TestLargeFlatImagesStillDecode: the size bound is below what the encoders write for
// the most compressible image there is, one colour.
func TestLargeFlatImagesStillDecode(t *testing.T) {
	const w, h = 4000, 3000
	flat := image.NewPaletted(image.Rect(0, 0, w, h), color.Palette{color.White, color.Black})
	gray := image.NewGray(image.Rect(0, 0, w, h))
	for i := range gray.Pix {
		gray.Pix[i] = 255
	}
	cases := map[string][]byte{
		"png 1-bit": small(t, func(b *bytes.Buffer) error {
			return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(b, flat)
		}),
		"jpeg": small(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, gray, &jpeg.Options{Quality: 1}) }),
		"bmp":  small(t, func(b *bytes.Buffer) error { return bmp.Encode(b, flat) }),
	}
	for name, data := range cases {
		m, err := Decode(data)
		if err != nil {
			t.Errorf("%s of %d bytes: %v", name, len(data), err)
			continue
		}
		if m.W != w || m.H != h {
			t.Errorf("%s: %dx%d", name, m.W, m.H)
		}
	}
}

// TestMinFileSizeIsBelowRealFiles compares the bound with the smallest files the
// standard encoders write at a few sizes, down to 1×1.
func TestMinFileSizeIsBelowRealFiles(t *testing.T) {
	for _, s := range [][2]int{{1, 1}, {1, 2000}, {2000, 1}, {17, 9}, {640, 480}} {
		flat := image.NewPaletted(image.Rect(0, 0, s[0], s[1]), color.Palette{color.White, color.Black})
		for _, c := range []struct {
			format string
			data   []byte
		}{
			{"png", small(t, func(b *bytes.Buffer) error {
				return (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(b, flat)
			})},
			{"jpeg", small(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, flat, &jpeg.Options{Quality: 1}) })},
			{"bmp", small(t, func(b *bytes.Buffer) error { return bmp.Encode(b, flat) })},
		} {
			if need := minFileSize(c.format, int64(s[0]), int64(s[1])); int64(len(c.data)) < need {
				t.Errorf("%s %dx%d: the encoder wrote %d bytes, the bound says at least %d", c.format, s[0], s[1], len(c.data), need)
			}
			if _, err := Decode(c.data); err != nil {
				t.Errorf("%s %dx%d: %v", c.format, s[0], s[1], err)
			}
		}
	}
}
