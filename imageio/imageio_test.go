package imageio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
)

var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 255, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = color.NRGBA{255, 255, 255, 255}
)

// quadrants draws a w×h image whose four quadrants are red, green (top) and blue,
// white (bottom): any turn or mirror moves the colours to recognisable places.
func quadrants(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := [2][2]color.NRGBA{{red, green}, {blue, white}}[2*y/h][2*x/w]
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func encode(t *testing.T, enc func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// near reports whether pixel (x, y) of m is within tol of c in every channel.
func near(m *RGB, x, y int, c color.NRGBA, tol int) bool {
	r, g, b := m.At(x, y)
	d := func(a, b uint8) bool { return int(a)-int(b) <= tol && int(b)-int(a) <= tol }
	return d(r, c.R) && d(g, c.G) && d(b, c.B)
}

// checkQuadrants checks the centre of each quadrant of m.
func checkQuadrants(t *testing.T, m *RGB, tl, tr, bl, br color.NRGBA, tol int) {
	t.Helper()
	pts := []struct {
		x, y int
		c    color.NRGBA
		name string
	}{
		{m.W / 4, m.H / 4, tl, "top-left"}, {3 * m.W / 4, m.H / 4, tr, "top-right"},
		{m.W / 4, 3 * m.H / 4, bl, "bottom-left"}, {3 * m.W / 4, 3 * m.H / 4, br, "bottom-right"},
	}
	for _, p := range pts {
		if !near(m, p.x, p.y, p.c, tol) {
			r, g, b := m.At(p.x, p.y)
			t.Errorf("%s pixel (%d,%d) = (%d,%d,%d), want %v", p.name, p.x, p.y, r, g, b, p.c)
		}
	}
}

func TestLosslessFormats(t *testing.T) {
	src := quadrants(20, 10)
	cases := map[string][]byte{
		"a.png": encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }),
		"a.bmp": encode(t, func(b *bytes.Buffer) error { return bmp.Encode(b, src) }),
		"a.gif": encode(t, func(b *bytes.Buffer) error { return gif.Encode(b, src, &gif.Options{NumColors: 256}) }),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := Load(write(t, name, data))
			if err != nil {
				t.Fatal(err)
			}
			if m.W != 20 || m.H != 10 || len(m.Pix) != 3*20*10 {
				t.Fatalf("got %dx%d with %d bytes", m.W, m.H, len(m.Pix))
			}
			for y := 0; y < 10; y++ {
				for x := 0; x < 20; x++ {
					if !near(m, x, y, src.NRGBAAt(x, y), 0) {
						t.Fatalf("pixel (%d,%d) differs", x, y)
					}
				}
			}
		})
	}
}

func TestPNGAlphaKeepsStoredColour(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	src.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 128})
	src.SetNRGBA(1, 0, color.NRGBA{10, 20, 30, 0})
	m, err := Decode(encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Pix, []byte{200, 100, 50, 10, 20, 30}) {
		t.Fatalf("pixels %v", m.Pix)
	}
}

func TestGrayPNG(t *testing.T) {
	src := image.NewGray(image.Rect(0, 0, 3, 2))
	src.Pix = []byte{0, 50, 100, 150, 200, 250}
	m, err := Decode(encode(t, func(b *bytes.Buffer) error { return png.Encode(b, src) }))
	if err != nil {
		t.Fatal(err)
	}
	if r, g, b := m.At(2, 1); r != 250 || g != 250 || b != 250 {
		t.Fatalf("pixel (2,1) = %d,%d,%d", r, g, b)
	}
}

func TestGIFFirstFrame(t *testing.T) {
	frame := func(c color.Color) *image.Paletted {
		p := image.NewPaletted(image.Rect(0, 0, 4, 4), palette.Plan9)
		for i := range p.Pix {
			p.Pix[i] = uint8(p.Palette.Index(c))
		}
		return p
	}
	data := encode(t, func(b *bytes.Buffer) error {
		return gif.EncodeAll(b, &gif.GIF{Image: []*image.Paletted{frame(red), frame(blue)}, Delay: []int{10, 10}})
	})
	m, err := Load(write(t, "anim.gif", data))
	if err != nil {
		t.Fatal(err)
	}
	if !near(m, 1, 1, red, 0) {
		t.Fatalf("first frame not red: %v", m.Pix[:3])
	}
}

func TestWebP(t *testing.T) {
	// The 1×1 lossless and lossy probes browsers use to detect WebP support.
	for name, s := range map[string]string{
		"lossless": "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==",
		"lossy":    "UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA",
	} {
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Load(write(t, name+".webp", data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.W != 1 || m.H != 1 || len(m.Pix) != 3 {
			t.Fatalf("%s: got %dx%d", name, m.W, m.H)
		}
	}
}

// exifAPP1 builds an APP1 segment holding only an IFD0 orientation entry.
func exifAPP1(o uint16, bo binary.ByteOrder) []byte {
	var t bytes.Buffer
	if bo == binary.LittleEndian {
		t.WriteString("II")
	} else {
		t.WriteString("MM")
	}
	w := func(v any) { binary.Write(&t, bo, v) }
	w(uint16(42))
	w(uint32(8))      // IFD0 right after the header
	w(uint16(2))      // two entries: an unrelated tag first, then orientation
	w(uint16(0x010F)) // Make, ASCII, 4 bytes inline
	w(uint16(2))
	w(uint32(4))
	t.WriteString("cam\x00")
	w(uint16(tagOrientation))
	w(uint16(3)) // SHORT
	w(uint32(1))
	w(o)
	w(uint16(0))
	w(uint32(0)) // no next IFD
	payload := append([]byte("Exif\x00\x00"), t.Bytes()...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// withSegments inserts segments right after a JPEG's SOI marker.
func withSegments(jpg []byte, segs ...[]byte) []byte {
	out := append([]byte{}, jpg[:2]...)
	for _, s := range segs {
		out = append(out, s...)
	}
	return append(out, jpg[2:]...)
}

func TestJPEGOrientation(t *testing.T) {
	jpg := encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, quadrants(64, 32), &jpeg.Options{Quality: 95}) })
	app0 := []byte{0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0}
	R, G, B, W := red, green, blue, white
	want := map[int][4]color.NRGBA{ // top-left, top-right, bottom-left, bottom-right as displayed
		1: {R, G, B, W}, 2: {G, R, W, B}, 3: {W, B, G, R}, 4: {B, W, R, G},
		5: {R, B, G, W}, 6: {B, R, W, G}, 7: {W, G, B, R}, 8: {G, W, R, B},
	}
	for o := 1; o <= 8; o++ {
		for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
			data := withSegments(jpg, app0, exifAPP1(uint16(o), bo))
			if got := JPEGOrientation(data); got != o {
				t.Fatalf("orientation %d (%v): parsed %d", o, bo, got)
			}
			m, err := Load(write(t, "o.jpg", data))
			if err != nil {
				t.Fatal(err)
			}
			ww, wh := 64, 32
			if o >= 5 {
				ww, wh = 32, 64
			}
			if m.W != ww || m.H != wh {
				t.Fatalf("orientation %d: %dx%d, want %dx%d", o, m.W, m.H, ww, wh)
			}
			c := want[o]
			checkQuadrants(t, m, c[0], c[1], c[2], c[3], 40)
		}
	}
	// Without EXIF, and with the orientation ignored, the stored layout comes back.
	m, err := Decode(jpg)
	if err != nil {
		t.Fatal(err)
	}
	checkQuadrants(t, m, R, G, B, W, 40)
	m, err = DecodeWith(withSegments(jpg, exifAPP1(6, binary.BigEndian)), Options{IgnoreOrientation: true})
	if err != nil || m.W != 64 {
		t.Fatalf("ignored orientation: %v %v", m, err)
	}
}

func TestJPEGOrientationDamagedEXIF(t *testing.T) {
	jpg := encode(t, func(b *bytes.Buffer) error { return jpeg.Encode(b, quadrants(16, 16), nil) })
	data := withSegments(jpg, exifAPP1(6, binary.LittleEndian))
	// Every truncation and every single-byte corruption of the header region parses
	// without panicking.
	for n := 0; n < 80 && n < len(data); n++ {
		JPEGOrientation(data[:n])
		d := append([]byte{}, data...)
		d[n] ^= 0xFF
		JPEGOrientation(d)
	}
	bad := withSegments(jpg, []byte{0xFF, 0xE1, 0, 10, 'E', 'x', 'i', 'f', 0, 0, 'I', 'I'})
	if o := JPEGOrientation(bad); o != OrientNormal {
		t.Fatalf("short EXIF gave %d", o)
	}
	if _, err := Decode(bad); err != nil {
		t.Fatalf("a damaged EXIF block must not fail the image: %v", err)
	}
}

func TestErrors(t *testing.T) {
	good := encode(t, func(b *bytes.Buffer) error { return png.Encode(b, quadrants(8, 8)) })
	cases := map[string][]byte{
		"corrupt.png": good[:len(good)/2],
		"notes.txt":   []byte("this is not an image\n"),
		"empty.jpg":   nil,
	}
	for name, data := range cases {
		p := write(t, name, data)
		_, err := Load(p)
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		msg := err.Error()
		if !strings.Contains(msg, p) || !strings.Contains(msg, "unreadable image") || !strings.Contains(msg, Supported) {
			t.Errorf("%s: unhelpful error %q", name, msg)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.png")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v", err)
	}
}

func TestOrientKeepsPixels(t *testing.T) {
	m := &RGB{W: 3, H: 2, Pix: make([]byte, 18)}
	for i := range m.Pix {
		m.Pix[i] = byte(i)
	}
	for o := 1; o <= 8; o++ {
		// Applying an orientation twice (or its inverse) must restore the image.
		inv := map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}[o]
		back := Orient(Orient(m, o), inv)
		if back.W != 3 || back.H != 2 || !bytes.Equal(back.Pix, m.Pix) {
			t.Errorf("orientation %d then %d did not restore the image", o, inv)
		}
	}
}
