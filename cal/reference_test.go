package cal

import (
	"math"
	"testing"
)

// row makes a scored row whose target logit is zImg with the image and zNo without, over
// a two-token vocabulary.
func row(zImg, zNo float64, sup bool) RefRow {
	return RefRow{LogitsImg: []float64{zImg, 0}, LogitsNoImg: []float64{zNo, 0}, Target: 0, Supervised: sup}
}

func TestReferenceClampAndSmoothing(t *testing.T) {
	// Δ = 0.5, 3, 9, (unsupervised), 2: clamped to 1, 3, 5, –, 2.
	rows := []RefRow{row(1.5, 1, true), row(3, 0, true), row(9, 0, true), row(0, 0, false), row(2, 0, true)}
	r := Reference(rows, Defaults())
	// First run: edges average over the neighbours that exist (count_include_pad=False).
	want := []float64{(1 + 3) / 2.0, (1 + 3 + 5) / 3.0, (3 + 5) / 2.0, 0, 2}
	for i, w := range want {
		if math.Abs(r.Weight[i]-w) > 1e-12 {
			t.Errorf("weight %d = %v, want %v", i, r.Weight[i], w)
		}
	}
	if r.Delta[3] != 0 || r.CE[3] != 0 {
		t.Errorf("unsupervised row got Δ %v, CE %v", r.Delta[3], r.CE[3])
	}
	off := Reference(rows, Options{Lo: 1, Hi: 5, Smooth: false})
	for i, w := range []float64{1, 3, 5, 0, 2} {
		if off.Weight[i] != w {
			t.Errorf("unsmoothed weight %d = %v, want %v", i, off.Weight[i], w)
		}
	}
	// CE of logits (z, 0) at target 0 is log(1+e^−z).
	if ce := r.CE[1]; math.Abs(ce-math.Log1p(math.Exp(-3))) > 1e-12 {
		t.Errorf("CE %v", ce)
	}
	loss := RefLoss([]RefResult{r})
	var num, den float64
	for i := range want {
		num += want[i] * r.CE[i]
		den += want[i]
	}
	if math.Abs(loss-num/den) > 1e-12 {
		t.Errorf("loss %v, want %v", loss, num/den)
	}
	if RefLoss([]RefResult{Reference([]RefRow{row(1, 0, false)}, Defaults())}) != 0 {
		t.Error("no supervised row must give loss 0, not NaN")
	}
}
