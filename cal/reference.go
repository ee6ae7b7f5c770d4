// Package cal is the Contrastive ALignment objective (Xiao et al., arXiv 2405.17871):
// each supervised token's cross-entropy is weighted by how much the image raises the
// target token's logit, clamped and smoothed. This file is the plain-Go float64
// reference that the ggml implementation is tested against.
package cal

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Options are the weighting knobs, declared once for every command that takes them
// (package internal/options). The zero value is not useful; start from Defaults.
type Options struct {
	Lo     float64 `mapstructure:"cal-lo" json:"cal_lo" help:"CAL: lower clamp of the logit gap Δ"`
	Hi     float64 `mapstructure:"cal-hi" json:"cal_hi" help:"CAL: upper clamp of Δ"`
	Window int     `mapstructure:"cal-window" json:"cal_window" help:"CAL: moving-average width within a run of answer tokens (odd)"`
	Smooth bool    `mapstructure:"cal-smooth" json:"cal_smooth" help:"CAL: smooth the weights (--cal-smooth=false turns it off)"`
}

// Defaults are the paper's settings: clamp to [1, 5], 3-wide average.
func Defaults() Options { return Options{Lo: 1, Hi: 5, Window: 3, Smooth: true} }

// Validate refuses knobs that give no usable weights: an even or non-positive window
// (a moving average needs a centre), a clamp range upside down, a negative lower clamp
// (a negative weight would push a token's probability down), an upper clamp of zero
// (every weight 0: nothing is learned), or values that are not finite numbers.
func (o Options) Validate() error {
	var errs []string
	if math.IsNaN(o.Lo) || math.IsNaN(o.Hi) || math.IsInf(o.Lo, 0) || math.IsInf(o.Hi, 0) {
		errs = append(errs, fmt.Sprintf("--cal-lo %g and --cal-hi %g must be finite numbers", o.Lo, o.Hi))
	} else {
		if o.Lo < 0 {
			errs = append(errs, fmt.Sprintf("--cal-lo %g is negative: a weight below 0 would push the token's probability down", o.Lo))
		}
		if o.Hi <= 0 {
			errs = append(errs, fmt.Sprintf("--cal-hi %g must be above 0, or every weight is 0 and nothing is learned", o.Hi))
		}
		if o.Lo > o.Hi {
			errs = append(errs, fmt.Sprintf("--cal-lo %g is above --cal-hi %g", o.Lo, o.Hi))
		}
	}
	if o.Window < 1 || o.Window%2 == 0 {
		errs = append(errs, fmt.Sprintf("--cal-window must be a positive odd number (the average is centred on the token), got %d", o.Window))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// RefRow is one scored position: its logits with and without the image, its target and
// whether it is supervised.
type RefRow struct {
	LogitsImg   []float64
	LogitsNoImg []float64
	Target      int
	Supervised  bool
}

// RefResult is what the reference computes for a sequence of rows.
type RefResult struct {
	Delta  []float64 // logit_img[y] − logit_noimg[y]; 0 at unsupervised rows
	Weight []float64 // smoothed clamped Δ; 0 at unsupervised rows
	CE     []float64 // −log softmax(logits_img)[y]; 0 at unsupervised rows
}

// Reference computes Δ, weights and per-token cross-entropy for one sequence, in row
// order. Runs of consecutive supervised rows are smoothed separately.
func Reference(rows []RefRow, opt Options) RefResult {
	n := len(rows)
	r := RefResult{Delta: make([]float64, n), Weight: make([]float64, n), CE: make([]float64, n)}
	clamped := make([]float64, n)
	for i, row := range rows {
		if !row.Supervised {
			continue
		}
		r.Delta[i] = row.LogitsImg[row.Target] - row.LogitsNoImg[row.Target]
		clamped[i] = math.Min(math.Max(r.Delta[i], opt.Lo), opt.Hi)
		r.CE[i] = logSumExp(row.LogitsImg) - row.LogitsImg[row.Target]
	}
	half := 0
	if opt.Smooth && opt.Window > 1 {
		half = opt.Window / 2
	}
	for i := range rows {
		if !rows[i].Supervised {
			continue
		}
		// Average over the neighbours inside the same run of supervised rows only: at the
		// run's edges the missing neighbours are left out, not counted as zeros.
		sum, cnt := 0.0, 0
		for j := i - half; j <= i+half; j++ {
			if j >= 0 && j < n && rows[j].Supervised && sameRun(rows, i, j) {
				sum += clamped[j]
				cnt++
			}
		}
		r.Weight[i] = sum / float64(cnt)
	}
	return r
}

// sameRun reports whether every row between i and j is supervised.
func sameRun(rows []RefRow, i, j int) bool {
	if i > j {
		i, j = j, i
	}
	for k := i; k <= j; k++ {
		if !rows[k].Supervised {
			return false
		}
	}
	return true
}

// RefLoss is Σ w·CE / Σ w over every sequence's supervised rows (0 when there are none).
func RefLoss(results []RefResult) float64 {
	num, den := 0.0, 0.0
	for _, r := range results {
		for i := range r.Weight {
			num += r.Weight[i] * r.CE[i]
			den += r.Weight[i]
		}
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func logSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}
