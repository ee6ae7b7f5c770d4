package mtmd

import (
	"math"

	"github.com/calft/calft/gguf"
)

// The pinned clip.cpp builds a pixtral image's [IMG_BREAK] rows from a fresh tensor it
// "clears" by scaling whatever its memory holds by 0, then adds v.token_embd.img_break:
// where that memory holds NaN or Inf, the break rows come out non-finite (0·NaN is NaN),
// and memory that no other tensor writes keeps its garbage, so encoding again does not
// help. Every break row's value is img_break exactly (0·x + b for finite x), so such
// rows are written back to it.

// readImgBreak is a pixtral mmproj's v.token_embd.img_break, nil for other projectors.
func readImgBreak(path string) []float32 {
	f, err := gguf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if t, _ := f.String("clip.projector_type"); t != "pixtral" {
		return nil
	}
	v, err := f.TensorF32("v.token_embd.img_break")
	if err != nil {
		return nil
	}
	return v
}

// repairBreakRows writes b over the non-finite rows of data (rows of len(b) floats) when
// they are break rows: for some row length L (patches per row + 1) dividing the row count
// + 1, rows L−1, 2L−1, … are the break rows, every one of them either equal to b or
// non-finite, and no other row is non-finite. It reports whether data is finite after.
func repairBreakRows(data, b []float32) bool {
	n := len(b)
	if n == 0 || len(data)%n != 0 {
		return false
	}
	rows := len(data) / n
	finite := func(r int) bool {
		for _, x := range data[r*n : (r+1)*n] {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return false
			}
		}
		return true
	}
	isB := func(r int) bool {
		for i, x := range data[r*n : (r+1)*n] {
			if x != b[i] {
				return false
			}
		}
		return true
	}
	for L := 2; L <= rows+1; L++ {
		if (rows+1)%L != 0 {
			continue
		}
		ok := true
		for r := 0; r < rows && ok; r++ {
			if (r+1)%L == 0 {
				ok = !finite(r) || isB(r)
			} else {
				ok = finite(r)
			}
		}
		if ok {
			for r := L - 1; r < rows; r += L {
				copy(data[r*n:(r+1)*n], b)
			}
			return true
		}
	}
	return false
}
