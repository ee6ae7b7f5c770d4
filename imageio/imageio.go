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
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("%s image of %dx%d pixels is larger than the %d-pixel limit", format, cfg.Width, cfg.Height, MaxPixels)
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
