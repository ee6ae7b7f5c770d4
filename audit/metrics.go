package audit

import "sort"

// AUROC is the probability that a random positive scores above a random negative (ties
// count half): 1 ranks every positive first, 0.5 is chance. NaN without both kinds.
func AUROC(scores []float64, positive []bool) float64 {
	type sv struct {
		s   float64
		pos bool
	}
	v := make([]sv, len(scores))
	var nPos, nNeg float64
	for i, s := range scores {
		v[i] = sv{s, positive[i]}
		if positive[i] {
			nPos++
		} else {
			nNeg++
		}
	}
	sort.Slice(v, func(i, j int) bool { return v[i].s < v[j].s })
	// Mann-Whitney U over ranks, tied scores sharing their mean rank.
	var rankSum float64
	for i := 0; i < len(v); {
		j := i
		for j < len(v) && v[j].s == v[i].s {
			j++
		}
		mean := float64(i+j+1) / 2 // ranks i+1 … j
		for k := i; k < j; k++ {
			if v[k].pos {
				rankSum += mean
			}
		}
		i = j
	}
	return (rankSum - nPos*(nPos+1)/2) / (nPos * nNeg)
}

// PrecisionAtK is the fraction of positives among the k highest scores (ties broken
// against the positives, so the figure never flatters).
func PrecisionAtK(scores []float64, positive []bool, k int) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if scores[idx[a]] != scores[idx[b]] {
			return scores[idx[a]] > scores[idx[b]]
		}
		return !positive[idx[a]] && positive[idx[b]]
	})
	if k <= 0 || k > len(idx) {
		return 0
	}
	hit := 0
	for _, i := range idx[:k] {
		if positive[i] {
			hit++
		}
	}
	return float64(hit) / float64(k)
}
