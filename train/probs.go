package train

import (
	"fmt"

	"github.com/calft/calft/data"
)

// TokenProbs are what calft audit reads beside a token's Δ: the log-probability of the
// target token with and without the image, and the model's own image-present choice.
// (Log-probabilities, so that a tiny probability keeps its size instead of becoming 0.)
type TokenProbs struct {
	LogPImg   float64 // log P(target | image)
	LogPNoImg float64 // log P(target | image hidden)
	Top       int32   // the token the model ranks first with the image
	TopPiece  string
	LogPTop   float64 // log P(Top | image)
}

// ScoreProbs is Score with each token's probabilities. Its image-absent pass computes
// every row's full logits, where Score's computes only the target logits of the rows
// after an image: slower, and meant for auditing a dataset, not for training.
func (sc *Scorer) ScoreProbs(s *data.Sample) ([]TokenScore, []TokenProbs, error) {
	scores, g, err := sc.score(s, true)
	if err != nil || g == nil {
		return scores, nil, err
	}
	l := &g.Loss
	if l.LSENoImg.Nil() {
		return nil, nil, fmt.Errorf("sample %s: the scoring graph has no image-absent log-sum-exp", s.ID)
	}
	lse, lseNo, zMax, top := l.LSE.F32(), l.LSENoImg.F32(), l.Max.F32(), l.ArgMax.I32()
	out := make([]TokenProbs, len(scores))
	for i, ts := range scores {
		piece, err := sc.Env.Vocab.TokenToPiece(top[i], true)
		if err != nil {
			return nil, nil, err
		}
		out[i] = TokenProbs{
			LogPImg:   ts.LogitImg - float64(lse[i]),
			LogPNoImg: ts.LogitNoImg - float64(lseNo[i]),
			Top:       top[i], TopPiece: piece,
			LogPTop: float64(zMax[i]) - float64(lse[i]),
		}
	}
	return scores, out, nil
}
