package imageio

import "encoding/binary"

// EXIF orientation values (TIFF tag 0x0112): how the stored pixels must be turned to
// be displayed upright.
const (
	OrientNormal     = 1 // as stored
	OrientFlipH      = 2 // mirrored left-right
	OrientRotate180  = 3
	OrientFlipV      = 4 // mirrored top-bottom
	OrientTranspose  = 5 // mirrored across the main diagonal
	OrientRotate90   = 6 // turn 90° clockwise to display
	OrientTransverse = 7 // mirrored across the anti-diagonal
	OrientRotate270  = 8 // turn 90° counter-clockwise to display
)

const tagOrientation = 0x0112

// JPEGOrientation returns the EXIF orientation stored in a JPEG's APP1 segment, or
// OrientNormal when there is none or it cannot be read: a damaged EXIF block must not
// make an otherwise good image unreadable.
func JPEGOrientation(data []byte) int {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return OrientNormal
	}
	p := 2
	for p+4 <= len(data) {
		if data[p] != 0xFF {
			return OrientNormal
		}
		marker := data[p+1]
		switch {
		case marker == 0xFF: // fill byte before a marker
			p++
			continue
		case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7): // no length field
			p += 2
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan / end: no metadata after
			return OrientNormal
		}
		n := int(binary.BigEndian.Uint16(data[p+2:]))
		if n < 2 || p+2+n > len(data) {
			return OrientNormal
		}
		seg := data[p+4 : p+2+n]
		if marker == 0xE1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := tiffOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		p += 2 + n
	}
	return OrientNormal
}

// tiffOrientation reads the orientation tag from IFD0 of a TIFF block (either byte
// order), or returns 0.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	ifd := int64(bo.Uint32(t[4:]))
	if ifd < 8 || ifd+2 > int64(len(t)) {
		return 0
	}
	count := int64(bo.Uint16(t[ifd:]))
	for i := int64(0); i < count; i++ {
		e := ifd + 2 + 12*i
		if e+12 > int64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != tagOrientation {
			continue
		}
		typ, n := bo.Uint16(t[e+2:]), bo.Uint32(t[e+4:])
		var v int
		switch {
		case typ == 3 && n >= 1: // SHORT, stored in the first two bytes of the value field
			v = int(bo.Uint16(t[e+8:]))
		case typ == 4 && n >= 1: // LONG, written by a few tools
			v = int(bo.Uint32(t[e+8:]))
		default:
			return 0
		}
		if v >= OrientNormal && v <= OrientRotate270 {
			return v
		}
		return 0
	}
	return 0
}

// Orient returns m turned and mirrored as EXIF orientation o says; values outside
// 2…8 return m unchanged.
func Orient(m *RGB, o int) *RGB {
	if o <= OrientNormal || o > OrientRotate270 {
		return m
	}
	w, h := m.W, m.H
	ow, oh := w, h
	if o >= OrientTranspose {
		ow, oh = h, w
	}
	// src gives the stored pixel shown at display position (x, y).
	src := func(x, y int) (int, int) {
		switch o {
		case OrientFlipH:
			return w - 1 - x, y
		case OrientRotate180:
			return w - 1 - x, h - 1 - y
		case OrientFlipV:
			return x, h - 1 - y
		case OrientTranspose:
			return y, x
		case OrientRotate90:
			return y, h - 1 - x
		case OrientTransverse:
			return w - 1 - y, h - 1 - x
		default: // OrientRotate270
			return w - 1 - y, x
		}
	}
	out := &RGB{W: ow, H: oh, Pix: make([]byte, len(m.Pix))}
	for y := 0; y < oh; y++ {
		for x := 0; x < ow; x++ {
			sx, sy := src(x, y)
			copy(out.Pix[3*(y*ow+x):3*(y*ow+x)+3], m.Pix[3*(sy*w+sx):])
		}
	}
	return out
}
