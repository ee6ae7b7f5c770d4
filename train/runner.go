package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/llava"
)

// Rows and scored rows are rounded up to these multiples, so that batches of similar
// size share one built graph.
const (
	rowBucket    = 32
	scoredBucket = 16
	maxGraphs    = 6
)

// runner turns micro-batches into computed steps, keeping a few built graphs.
type runner struct {
	env     *Env
	dec     *llava.Decoder
	opt     *Optimizer
	calOpt  cal.Options
	dropout bool // LoRA dropout is on
	graphs  map[Shape]*StepGraph
	lru     []Shape
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// graph returns the built graph of a shape, building it (and dropping the least recently
// used one) when needed.
func (r *runner) graph(sh Shape) (*StepGraph, error) {
	if g, ok := r.graphs[sh]; ok {
		for i, s := range r.lru {
			if s == sh {
				r.lru = append(r.lru[:i], r.lru[i+1:]...)
				break
			}
		}
		r.lru = append(r.lru, sh)
		return g, nil
	}
	if len(r.lru) >= maxGraphs {
		old := r.lru[0]
		r.lru = r.lru[1:]
		r.graphs[old].Close()
		delete(r.graphs, old)
	}
	opt := r.opt
	if !sh.Backward {
		opt = nil
	}
	g, err := NewStepGraph(r.env.Backend, r.dec, opt, sh, r.calOpt)
	if err != nil {
		return nil, err
	}
	r.graphs[sh] = g
	r.lru = append(r.lru, sh)
	return g, nil
}

func (r *runner) close() {
	for _, g := range r.graphs {
		g.Close()
	}
}

// pack builds the padded batch of some samples: padding rows form one extra sequence of
// BOS tokens that nothing scores.
func (r *runner) pack(samples []*data.Sample) (*llava.Batch, []int32, []cal.Target, error) {
	b := &llava.Batch{}
	var rows []int32
	var targets []cal.Target
	run := 0
	for _, s := range samples {
		seq, err := r.env.Sequence(s)
		if err != nil {
			return nil, nil, nil, err
		}
		rs, ts, next := s.Scored(int32(b.Rows()), run)
		run = next
		rows, targets = append(rows, rs...), append(targets, ts...)
		b.Seqs = append(b.Seqs, seq)
	}
	if pad := roundUp(b.Rows(), rowBucket) - b.Rows(); pad > 0 {
		toks := make([]int32, pad)
		for i := range toks {
			toks[i] = r.env.Vocab.BOS()
		}
		b.Seqs = append(b.Seqs, llava.Sequence{Tokens: toks})
	}
	return b, rows, targets, nil
}

// step runs forward and backward over one micro-batch, adding into the gradients. It
// returns the loss, the CAL weights of the real scored rows and the rows processed.
// dropSeed draws the micro-batch's LoRA dropout masks.
func (r *runner) step(obj cal.Objective, samples []*data.Sample, dropSeed uint64) (float64, []float32, int, error) {
	b, rows, targets, err := r.pack(samples)
	if err != nil {
		return 0, nil, 0, err
	}
	sh := Shape{Rows: b.Rows(), Scored: roundUp(max(len(rows), 1), scoredBucket), Obj: obj, Backward: true}
	if obj == cal.CAL && !r.dropout {
		// The shared image-absent pass reuses the training pass's unchanged rows, which
		// carry its dropout masks; with dropout, the separate dropout-free pass is used.
		sh.Hidden, sh.Kept = HiddenFor(b), KeptFor(b)
	}
	g, err := r.graph(sh)
	if err != nil {
		return 0, nil, 0, err
	}
	g.SetDropoutSeed(dropSeed)
	l, err := g.Run(b, rows, targets)
	if err != nil {
		return 0, nil, 0, err
	}
	real := 0
	for _, s := range samples {
		real += len(s.Rows)
	}
	return l, g.Loss.Weight.F32()[:len(targets)], real, nil
}

// valLoss is the mean cross-entropy per supervised token over samples: the same measure
// for either objective, so runs compare fairly.
func (r *runner) valLoss(samples []*data.Sample) (float64, error) {
	var sum float64
	var n int
	for _, s := range samples {
		b, rows, targets, err := r.pack([]*data.Sample{s})
		if err != nil {
			return 0, err
		}
		if len(rows) == 0 {
			continue
		}
		g, err := r.graph(Shape{Rows: b.Rows(), Scored: roundUp(len(rows), scoredBucket), Obj: cal.CE})
		if err != nil {
			return 0, err
		}
		if _, err := g.Run(b, rows, targets); err != nil {
			return 0, err
		}
		for _, ce := range g.Loss.CE.F32()[:len(targets)] {
			sum += float64(ce)
		}
		n += len(targets)
	}
	if n == 0 {
		return 0, nil
	}
	return sum / float64(n), nil
}

// metricsFile appends one JSON line per step to OUT/metrics.jsonl.
type metricsFile struct{ f *os.File }

// openMetrics opens the metrics of a run; a resumed run keeps the lines up to its
// checkpoint and drops any written after it.
func openMetrics(out string, keepUpTo int) (*metricsFile, error) {
	path := filepath.Join(out, "metrics.jsonl")
	var kept []byte
	if keepUpTo > 0 {
		if raw, err := os.ReadFile(path); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(raw))
			for sc.Scan() {
				var m Metrics
				if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step <= keepUpTo {
					kept = append(append(kept, sc.Bytes()...), '\n')
				}
			}
		}
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsFile{f}, nil
}

func (m *metricsFile) write(x Metrics) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	_, err = m.f.Write(append(b, '\n'))
	return err
}

func (m *metricsFile) Close() error { return m.f.Close() }
