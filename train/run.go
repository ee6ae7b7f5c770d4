package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"syscall"
	"time"

	"github.com/calft/calft/cal"
)

// ErrInterrupted is returned when a run stopped on a signal after saving a checkpoint.
var ErrInterrupted = errors.New("interrupted")

// ErrFinished is returned by --resume on a run that has finished: nothing to do, and
// nothing is changed.
var ErrFinished = errors.New("nothing to resume")

// Options are the run's ways of talking to a person and hooks for tests.
type Options struct {
	Log       io.Writer // progress and messages; nil: quiet
	StopAfter int       // act as if interrupted after this step (tests); 0: never
	// CrashInCheckpoint kills the process (SIGKILL) halfway through writing the
	// checkpoint of this step (tests); 0: never.
	CrashInCheckpoint int
	// Comm is the data-parallel job this process is a rank of (see dist.go); nil: alone.
	Comm  Comm
	Fault Fault // a rank that fails at a step (tests)
}

// Run trains a LoRA adapter as configured. It returns ErrInterrupted (wrapped) when ctx
// is cancelled, after saving a checkpoint that --resume continues from. A dry run
// checks the data, prints samples and returns a nil Summary.
//
// The loop below is the whole of training; set-up, bookkeeping and checkpoints live in
// the functions it calls.
func Run(ctx context.Context, c Config, o Options) (*Summary, error) {
	r, err := start(ctx, c, o)
	if err != nil || r == nil {
		return nil, err
	}
	defer r.close()
	for step := r.first; step < r.total; step++ {
		t0 := time.Now()
		r.tr.ZeroGrad()
		var s stepStats
		n, k := r.ranks(), r.rank()
		for micro := 0; micro < c.Accum; micro++ {
			g := micro*n + k // this rank's micro-batches of the step's Accum·n (dist.go)
			b, err := r.env.Pack(r.order.pick(r.ds.Train, c.Batch, c.Accum*n, step, g))
			if err != nil {
				return nil, err
			}
			m, err := r.tr.Accumulate(b, c.Seed^uint64(step*c.Accum*n+g+1)*0x9e3779b97f4a7c15)
			if err != nil {
				return nil, err
			}
			if err := r.share(&s, m, b, step, micro); err != nil {
				return nil, r.failed(step, err)
			}
		}
		norm, err := r.update(step)
		if err != nil {
			return nil, r.failed(step, err)
		}
		if err := r.record(step, &s, norm, time.Since(t0)); err != nil {
			return nil, err
		}
		stop, err := r.agreeStop(ctx.Err() != nil || (o.StopAfter > 0 && step+1 == o.StopAfter))
		if err != nil {
			return nil, err
		}
		if err := r.checkpoint(step, stop); err != nil {
			return r.sum, err
		}
	}
	return r.finish()
}

// stepStats add up one optimizer step's micro-batches.
type stepStats struct {
	loss, wSum float64
	wN, tokens int
}

// add counts a micro-batch; a loss that is not a finite number stops the run.
func (s *stepStats) add(m Micro, b *Batch) error {
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return fmt.Errorf("the loss is %v", m.Loss)
	}
	s.loss += m.Loss
	for _, w := range m.Weights {
		s.wSum += float64(w)
	}
	s.wN += len(m.Weights)
	s.tokens += b.Real
	return nil
}

// adamw is the optimiser's settings at a step (the learning rate follows the schedule).
func (r *run) adamw(step int) AdamW {
	c := &r.c
	return AdamW{LR: c.LRAt(step, r.total), Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay}
}

// failed is the error of a step whose loss or gradient is not finite: nothing of it was
// applied, and the last checkpoint is good.
func (r *run) failed(step int, err error) error {
	where := "no checkpoint was saved before it (see --save-every)"
	if dir, _ := latestCheckpoint(r.c.Out); dir != "" {
		where = "the last good checkpoint is " + dir
	}
	msg := fmt.Errorf("step %d: %v; training stopped and nothing of this step was applied; %s (lower --lr, or check the data)",
		step+1, err, where)
	if re, ok := err.(*RanksError); ok {
		return &RanksError{Err: msg, Failed: re.Failed} // every rank stops here alike
	}
	return msg
}

// record writes a step's metrics line (with a validation loss when one is due) and
// moves the progress report on.
func (r *run) record(step int, s *stepStats, norm float64, took time.Duration) error {
	c := &r.c
	r.tokens += s.tokens
	m := Metrics{Step: step + 1, Epoch: float64((step+1)*c.Batch*c.Accum*r.ranks()) / float64(len(r.ds.Train)), LR: r.adamw(step).LR,
		Loss: s.loss / float64(c.Accum), GradNorm: norm, TokensPerSec: float64(s.tokens) / took.Seconds(), SyncSec: r.dp.takeSync()}
	if s.wN > 0 {
		m.CALWeight = s.wSum / float64(s.wN)
	}
	if step == r.first {
		r.sum.FirstLoss = m.Loss
	}
	r.sum.LastLoss = m.Loss
	if len(r.ds.Val) > 0 && ((c.ValEvery > 0 && (step+1)%c.ValEvery == 0) || step+1 == r.total) {
		v, err := r.valLoss()
		if err != nil {
			return err
		}
		m.ValLoss = &v
		r.sum.Val = append(r.sum.Val, ValPoint{step + 1, v})
	}
	if r.lead() {
		if err := r.metrics.write(m); err != nil {
			return err
		}
	}
	r.progress.Set(step+1, fmt.Sprintf("loss %.4f | %.0f tok/s", m.Loss, m.TokensPerSec))
	return nil
}

// checkpoint saves the run after a step when one is due, and when the run stops
// early: then it returns ErrInterrupted, wrapped with how to continue.
func (r *run) checkpoint(step int, stop bool) error {
	c := &r.c
	if !stop && !(c.SaveEvery > 0 && (step+1)%c.SaveEvery == 0 && step+1 < r.total) {
		return nil
	}
	dir, err := r.save(step + 1)
	if err != nil || !stop {
		return err
	}
	r.progress.Finish()
	fmt.Fprintf(r.log, "stopped after step %d; checkpoint %s; continue with --resume\n", step+1, dir)
	return fmt.Errorf("%w after step %d of %d (checkpoint %s; continue with --resume)", ErrInterrupted, step+1, r.total, dir)
}

// crashHook is the CrashInCheckpoint test hook for the checkpoint of a step, or nil.
func (r *run) crashHook(step int) func() {
	if r.crashAt != step {
		return nil
	}
	return func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
}

// state is what a checkpoint after step optimizer steps records.
func (r *run) state(step int) checkpointState {
	st := checkpointState{Step: step, OptStep: r.tr.Opt.Step, Total: r.total, Config: r.c, DataDigest: r.digest}
	if r.ranks() > 1 {
		st.Ranks = r.ranks()
	}
	return st
}

// objective is the run's parsed objective (Validate accepted it).
func (c *Config) objective() cal.Objective {
	obj, _ := cal.ParseObjective(c.Objective)
	return obj
}
