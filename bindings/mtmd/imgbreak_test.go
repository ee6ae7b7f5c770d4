package mtmd

import (
	"math"
	"testing"
)

// TestRepairBreakRows: a 3×2 grid of patch rows with a break row after each row of 3
// but the last (7 rows); non-finite break rows are written back, anything else is left.
func TestRepairBreakRows(t *testing.T) {
	b := []float32{0.5, -1}
	nan := float32(math.NaN())
	grid := func() []float32 {
		var d []float32
		for r := 0; r < 7; r++ {
			if r == 3 {
				d = append(d, b...)
			} else {
				d = append(d, float32(r), float32(-r))
			}
		}
		return d
	}
	d := grid()
	d[6], d[7] = nan, nan // row 3, the break row
	if !repairBreakRows(d, b) || d[6] != b[0] || d[7] != b[1] {
		t.Fatalf("break row not repaired: %v", d)
	}
	d = grid()
	d[2] = nan // row 1, a patch row: not ours to guess
	if repairBreakRows(d, b) || !math.IsNaN(float64(d[2])) {
		t.Fatalf("a patch row was overwritten: %v", d)
	}
	if repairBreakRows(grid()[:5], b) {
		t.Fatal("a ragged embedding was accepted")
	}
}
