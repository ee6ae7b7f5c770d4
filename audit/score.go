package audit

import (
	"math"
	"slices"
	"sort"
)

// minCount is how often a token id must occur in the audited dataset to be judged
// against its own typical values; a rarer one is judged against the text alone.
const minCount = 5

// Token is one supervised token of a sample as the audit sees it.
type Token struct {
	Pos   int     `json:"pos"`   // row of the token in the sample's sequence (as in calft score)
	Token int32   `json:"token"` // token id
	Piece string  `json:"piece"`
	Score float64 `json:"score"` // min(Surprise, Support): how strongly the image contradicts it, in nats
	// Surprise is how much less likely the model, seeing the image, finds this token than
	// it typically finds this token id in the dataset: median log P(img) − log P(img).
	Surprise float64 `json:"surprise"`
	// Support is how much less the image supports it than it typically supports this
	// token id: median PMI − PMI, where PMI = log P(img) − log P(no image).
	Support float64 `json:"support"`
	Delta   float64 `json:"delta"` // CAL's Δ: logit with the image − logit with it hidden
	Weight  float64 `json:"weight"`
	PImg    float64 `json:"p_img"`   // P(token | image)
	PNoImg  float64 `json:"p_noimg"` // P(token | image hidden)
	Top     string  `json:"top"`     // the model's own choice with the image (argmax)
	TopID   int32   `json:"top_token"`
	PTop    float64 `json:"p_top"`

	lp, lpNo float64 // log P(token | image), log P(token | image hidden)
}

// Sample is one line of audit's JSONL: a sample, its score and the tokens behind it.
type Sample struct {
	ID      string  `json:"id"`
	Record  int     `json:"record"` // 1-based position of the record in the dataset
	Score   float64 `json:"score"`  // the largest token score (0 for a sample without an image)
	Flagged bool    `json:"flagged"`
	Image   string  `json:"image,omitempty"` // the (first) image's path as the record gives it
	Answer  string  `json:"answer"`
	Tokens  []Token `json:"tokens"` // most suspicious first (--tokens of them)

	question  string
	imagePath string  // the image's resolved path
	inOrder   []Token // every supervised token, in sequence order
	hasImage  bool
}

// typical is the median log P(img) and PMI of one token id over the dataset.
type typical struct {
	lp, pmi float64
	n       int
}

// Rate scores every token and sample. A token's score is min(Surprise, Support): the
// model, seeing the image, finds it less likely than is typical for that token id, and
// it is the image that makes it so. Typical values are medians over the dataset's
// samples with an image; a token id seen fewer than minCount times is judged against
// the text alone (typical log P(img) = its log P(no image), typical PMI = 0), where
// both parts equal −PMI. A sample's score is its highest token score; samples without
// an image score 0 (no image can contradict them).
func Rate(samples []*Sample) {
	typ := typicalValues(samples)
	for _, s := range samples {
		s.Score = 0
		for i := range s.inOrder {
			t := &s.inOrder[i]
			ty := typ[t.Token]
			lpTyp, pmiTyp := ty.lp, ty.pmi
			if ty.n < minCount {
				lpTyp, pmiTyp = t.lpNo, 0
			}
			t.Surprise = lpTyp - t.lp
			t.Support = pmiTyp - (t.lp - t.lpNo)
			t.Score = 0
			if s.hasImage {
				t.Score = math.Min(t.Surprise, t.Support)
			}
			s.Score = math.Max(s.Score, t.Score)
		}
	}
}

// typicalValues are the medians per token id over the samples with an image.
func typicalValues(samples []*Sample) map[int32]typical {
	lps, pmis := map[int32][]float64{}, map[int32][]float64{}
	for _, s := range samples {
		if !s.hasImage {
			continue
		}
		for _, t := range s.inOrder {
			lps[t.Token] = append(lps[t.Token], t.lp)
			pmis[t.Token] = append(pmis[t.Token], t.lp-t.lpNo)
		}
	}
	out := make(map[int32]typical, len(lps))
	for id, v := range lps {
		out[id] = typical{lp: median(v), pmi: median(pmis[id]), n: len(v)}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Rank sorts samples most suspicious first (ties in dataset order) and fills each
// one's Tokens with its k most suspicious tokens (k = 0: all).
func Rank(samples []*Sample, k int) {
	sort.SliceStable(samples, func(i, j int) bool {
		if samples[i].Score != samples[j].Score {
			return samples[i].Score > samples[j].Score
		}
		return samples[i].Record < samples[j].Record
	})
	for _, s := range samples {
		toks := slices.Clone(s.inOrder)
		sort.SliceStable(toks, func(i, j int) bool { return toks[i].Score > toks[j].Score })
		if k > 0 && len(toks) > k {
			toks = toks[:k]
		}
		s.Tokens = toks
	}
}

// Flag marks the samples to drop: the top k of the ranked samples when k > 0, else
// those scoring at least threshold. It returns how many it marked.
func Flag(ranked []*Sample, threshold float64, k int) int {
	n := 0
	for i, s := range ranked {
		s.Flagged = (k > 0 && i < k) || (k == 0 && s.Score >= threshold)
		if s.Flagged {
			n++
		}
	}
	return n
}
