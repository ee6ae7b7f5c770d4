package train

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// TestScoreProbsMatchesSoftmax checks ScoreProbs against the softmax of both passes'
// full logits computed by independent graphs, and that its Δ equals Score's.
func TestScoreProbsMatchesSoftmax(t *testing.T) {
	dir := t.TempDir()
	if err := tiny.Generate(dir, 21); err != nil {
		t.Fatal(err)
	}
	env := DefaultEnv()
	env.Model, env.Mmproj, env.Threads, env.CacheDir = filepath.Join(dir, "base.gguf"), filepath.Join(dir, "mmproj.gguf"), 2, "none"
	dataPath := filepath.Join(dir, "data.json")
	sc, err := NewScorer(env, dataPath, "", cal.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	recs, err := data.Load(dataPath)
	if err != nil {
		t.Fatal(err)
	}
	V := sc.Env.Model.HP.NVocab
	dec := &llava.Decoder{HP: sc.Env.Model.HP, W: &sc.Env.Model.W}
	// A plain sample, a multi-turn one and a text-only one.
	for _, rec := range []data.Record{recs[0], recs[3], recs[len(recs)-1]} {
		s, plain, err := sc.ScoreRecord(&rec)
		if err != nil {
			t.Fatal(err)
		}
		scores, probs, err := sc.ScoreProbs(s)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := sc.Env.Sequence(s)
		if err != nil {
			t.Fatal(err)
		}
		b := &llava.Batch{Seqs: []llava.Sequence{seq}}
		img, err := llava.ComputeLogits(sc.Env.Backend, dec, b, false)
		if err != nil {
			t.Fatal(err)
		}
		noImg, err := llava.ComputeLogits(sc.Env.Backend, dec, b, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(scores) != len(plain) || len(probs) != len(plain) || len(plain) == 0 {
			t.Fatalf("%s: %d scores, %d probabilities, %d from Score", rec.ID, len(scores), len(probs), len(plain))
		}
		for i, ts := range scores {
			if math.Abs(ts.Delta-plain[i].Delta) > 1e-4 {
				t.Errorf("%s token %d: Δ %v from ScoreProbs, %v from Score", rec.ID, i, ts.Delta, plain[i].Delta)
			}
			r := ts.Pos - 1
			pi, top, ptop := softmaxAt(img[r*V:(r+1)*V], int(ts.Token))
			pn, _, _ := softmaxAt(noImg[r*V:(r+1)*V], int(ts.Token))
			p := probs[i]
			if math.Abs(math.Exp(p.LogPImg)-pi) > 1e-5 || math.Abs(math.Exp(p.LogPNoImg)-pn) > 1e-5 || math.Abs(math.Exp(p.LogPTop)-ptop) > 1e-5 || int(p.Top) != top {
				t.Errorf("%s token %d: got %+v, want P(img) %v, P(no img) %v, top %d at %v", rec.ID, i, p, pi, pn, top, ptop)
			}
		}
	}
}

// softmaxAt returns the softmax of z at y, the argmax and its probability, in float64.
func softmaxAt(z []float32, y int) (py float64, top int, ptop float64) {
	m := math.Inf(-1)
	for i, v := range z {
		if float64(v) > m {
			m, top = float64(v), i
		}
	}
	var sum float64
	for _, v := range z {
		sum += math.Exp(float64(v) - m)
	}
	return math.Exp(float64(z[y])-m) / sum, top, 1 / sum
}
