package train

import (
	"github.com/calft/calft/data"
	"github.com/calft/calft/llava"
)

// Pack builds the padded micro-batch of some samples: their sequences one after the
// other, then padding rows (one extra sequence of BOS tokens that nothing scores) up to
// a multiple of rowBucket, so that batches of similar length share a graph.
func (e *Env) Pack(samples []*data.Sample) (*Batch, error) {
	b := &Batch{Seqs: &llava.Batch{}}
	run := 0
	for _, s := range samples {
		seq, err := e.Sequence(s)
		if err != nil {
			return nil, err
		}
		rs, ts, next := s.Scored(int32(b.Seqs.Rows()), run)
		run = next
		b.Rows, b.Targets = append(b.Rows, rs...), append(b.Targets, ts...)
		b.Seqs.Seqs = append(b.Seqs.Seqs, seq)
		b.Real += len(s.Rows)
	}
	if pad := roundUp(b.Seqs.Rows(), rowBucket) - b.Seqs.Rows(); pad > 0 {
		toks := make([]int32, pad)
		for i := range toks {
			toks[i] = e.Vocab.BOS()
		}
		b.Seqs.Seqs = append(b.Seqs.Seqs, llava.Sequence{Tokens: toks})
	}
	return b, nil
}

// epochOrder picks the samples of every micro-batch: epoch by epoch, a permutation
// fixed by the seed and the epoch, so a resumed run sees exactly the samples an
// uninterrupted one would.
type epochOrder struct {
	seed  uint64
	n     int
	epoch int
	perm  []int
}

// pick returns the samples of micro-batch micro of step step.
func (o *epochOrder) pick(train []*data.Sample, batch, accum, step, micro int) []*data.Sample {
	cursor := (step*accum + micro) * batch
	var out []*data.Sample
	for k := 0; k < batch; k++ {
		idx := cursor + k
		if o.perm == nil || idx/o.n != o.epoch {
			o.epoch, o.perm = idx/o.n, order(o.seed, idx/o.n, o.n)
		}
		out = append(out, train[o.perm[idx%o.n]])
	}
	return out
}

// crossEntropy is the mean cross-entropy per supervised token over samples, one at a
// time: the same measure for either objective, so runs compare fairly.
func crossEntropy(e *Env, t *Trainer, samples []*data.Sample) (float64, error) {
	var sum float64
	var n int
	for _, s := range samples {
		b, err := e.Pack([]*data.Sample{s})
		if err != nil {
			return 0, err
		}
		ce, err := t.CrossEntropy(b)
		if err != nil {
			return 0, err
		}
		for _, x := range ce {
			sum += float64(x)
		}
		n += len(ce)
	}
	if n == 0 {
		return 0, nil
	}
	return sum / float64(n), nil
}
