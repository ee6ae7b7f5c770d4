// Package imageio decodes image files to packed 8-bit RGB, the input the multimodal
// projector takes. It reads PNG, JPEG, GIF (first frame), WebP and BMP, and applies a
// JPEG's EXIF orientation so that the model sees the photo the way a viewer shows it.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // registers GIF with image.Decode
	_ "image/jpeg" // registers JPEG with image.Decode
	_ "image/png"  // registers PNG with image.Decode
	"os"

	_ "golang.org/x/image/bmp"  // registers BMP with image.Decode
	_ "golang.org/x/image/webp" // registers WebP with image.Decode
)

// Supported names the formats Load reads, for error messages.
const Supported = "PNG, JPEG, GIF, WebP, BMP"

// MaxPixels bounds the decoded size so that a hostile header cannot make Load
// allocate gigabytes; real photos are far below it.
const MaxPixels = 1 << 27

// MaxSide bounds each side: no camera or scan comes near it, and a model sees a
// 100000×1 strip as nothing but would still be handed it.
const MaxSide = 1 << 15

// RGB is a decoded image: W·H pixels, row-major, 3 bytes (R, G, B) each.
type RGB struct {
	W, H int
	Pix  []byte
}

// At returns the colour of pixel (x, y).
func (m *RGB) At(x, y int) (r, g, b byte) {
	i := 3 * (y*m.W + x)
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// Options changes how Load interprets a file.
type Options struct {
	// IgnoreOrientation keeps a JPEG's stored pixel layout, as stb_image (and so
	// llama.cpp's own CLI) does, instead of applying its EXIF orientation.
	IgnoreOrientation bool
}

// Load decodes the image file at path to RGB, applying a JPEG's EXIF orientation.
func Load(path string) (*RGB, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with options.
func LoadWith(path string, o Options) (*RGB, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("image %w", err) // the PathError names the file
	}
	m, err := DecodeWith(data, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Decode decodes an encoded image held in memory, applying a JPEG's EXIF orientation.
func Decode(data []byte) (*RGB, error) { return DecodeWith(data, Options{}) }

// DecodeWith is Decode with options.
func DecodeWith(data []byte, o Options) (*RGB, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, unreadable(err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, unreadable(fmt.Errorf("%s with empty size %dx%d", format, cfg.Width, cfg.Height))
	}
	// Every check below reads only the header: image.Decode allocates the whole image
	// before it reads the pixel data, so a hostile header must be refused here.
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s image of %dx%d pixels is larger than the %d-pixel limit", format, cfg.Width, cfg.Height, MaxPixels)
	}
	if cfg.Width > MaxSide || cfg.Height > MaxSide {
		return nil, fmt.Errorf("%s image of %dx%d pixels has a side longer than the %d-pixel limit", format, cfg.Width, cfg.Height, MaxSide)
	}
	if need := minFileSize(format, int64(cfg.Width), int64(cfg.Height)); int64(len(data)) < need {
		return nil, fmt.Errorf("%s image declares %dx%d pixels in only %d bytes (at least %d expected): it is truncated or a decompression bomb",
			format, cfg.Width, cfg.Height, len(data), need)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, unreadable(fmt.Errorf("%s: %w", format, err))
	}
	m := toRGB(img)
	if format == "jpeg" && !o.IgnoreOrientation {
		m = Orient(m, JPEGOrientation(data))
	}
	return m, nil
}

// Beyond bombFloor pixels, a file must hold at least one byte per bombRatio pixels.
const (
	bombFloor = 1 << 22 // 4 megapixels: 28 MB decoded, whatever the file
	bombRatio = 1 << 14 // twice deflate's best on a 1-bit image; JPEG and GIF stay below it too
)

// minFileSize is a lower bound on the size of a file of the format holding a w×h
// image. The decoders refuse a file whose pixel data runs out, but only after
// allocating the image; and a flat image in WebP takes a few bytes at any size (34 bytes
// decode to 16384×8192 pixels, close to a gigabyte).
func minFileSize(format string, w, h int64) int64 {
	var n int64
	switch format {
	case "bmp":
		// Uncompressed rows (the only kind decoded) of at least 1 bit per pixel,
		// each padded to 4 bytes.
		n = h * ((w + 31) / 32 * 4)
	case "png":
		// Rows of at least 1 bit per pixel after a filter byte, deflated: deflate's
		// best is 258 bytes for 2 bits, 1032:1.
		n = h * (1 + (w+7)/8) / 1032
	case "jpeg":
		// Every 8×8 block of the full-resolution component takes at least 1 bit (its
		// DC coefficient, in a sequential scan or a progressive DC scan); counted per
		// 16×16 so that a subsampled first component stays within the bound.
		n = (w + 15) / 16 * ((h + 15) / 16) / 8
	}
	// Any format, WebP and GIF (whose first frame may be far smaller than its screen)
	// included: only an image of one colour made to be small falls below this.
	if px := w * h; px > bombFloor {
		n = max(n, px/bombRatio)
	}
	return n
}

func unreadable(err error) error {
	if errors.Is(err, image.ErrFormat) {
		err = errors.New("unknown format")
	}
	return fmt.Errorf("unreadable image (%v); supported formats: %s", err, Supported)
}

// toRGB flattens any decoded image to RGB. Alpha is dropped rather than blended, the
// way stb_image's 3-channel load treats it in llama.cpp, so colours stay the stored
// (non-premultiplied) ones.
func toRGB(img image.Image) *RGB {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	m := &RGB{W: w, H: h, Pix: make([]byte, 3*w*h)}
	i := 0
	put := func(r, g, bl uint8) {
		m.Pix[i], m.Pix[i+1], m.Pix[i+2] = r, g, bl
		i += 3
	}
	switch src := img.(type) {
	case *image.NRGBA:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				put(row[4*x], row[4*x+1], row[4*x+2])
			}
		}
	case *image.YCbCr:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				yi, ci := src.YOffset(x, y), src.COffset(x, y)
				put(color.YCbCrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci]))
			}
		}
	case *image.Gray:
		for y := b.Min.Y; y < b.Max.Y; y++ {
			row := src.Pix[src.PixOffset(b.Min.X, y):]
			for x := 0; x < w; x++ {
				put(row[x], row[x], row[x])
			}
		}
	default:
		// Covers RGBA (premultiplied: un-premultiplied here), Paletted (GIF), CMYK,
		// 16-bit and the rest through the NRGBA colour model.
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				put(c.R, c.G, c.B)
			}
		}
	}
	return m
}
