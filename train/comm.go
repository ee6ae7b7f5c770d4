package train

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Comm is how the processes of a data-parallel job (MPI ranks) talk to each other.
// Every rank makes the same calls in the same order; a process that runs alone uses
// Single, whose calls do nothing.
type Comm interface {
	Rank() int
	Size() int
	// AllreduceSum and AllreduceF64 replace x, on every rank, with its element-wise sum
	// over the ranks.
	AllreduceSum(x []float32) error
	AllreduceF64(x []float64) error
	// Gather collects every rank's bytes on rank 0, in rank order; other ranks get nil.
	Gather(b []byte) ([][]byte, error)
	Barrier() error
	// Abort ends every rank of the job with code; it does not return.
	Abort(code int)
}

// Single is the communicator of a process that runs alone.
var Single Comm = single{}

type single struct{}

func (single) Rank() int                         { return 0 }
func (single) Size() int                         { return 1 }
func (single) AllreduceSum([]float32) error      { return nil }
func (single) AllreduceF64([]float64) error      { return nil }
func (single) Gather(b []byte) ([][]byte, error) { return [][]byte{b}, nil }
func (single) Barrier() error                    { return nil }
func (single) Abort(code int)                    { os.Exit(code) }

// RanksError is what every rank of a job returns when some ranks failed at a point
// they all reach (see agree), so that none goes on to wait for one that stopped.
// Err is this rank's own error (nil when it did its part); Failed are the ranks that
// failed, in order.
type RanksError struct {
	Err    error
	Failed []int
	// finished: every failed rank found a finished run (ErrFinished).
	finished bool
}

func (e *RanksError) Error() string {
	if e.Err != nil {
		return e.Err.Error()
	}
	s := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		s[i] = fmt.Sprint(r)
	}
	return fmt.Sprintf("stopped: rank %s failed (its message is above)", strings.Join(s, ", "))
}

func (e *RanksError) Unwrap() error {
	if e.Err == nil && e.finished {
		return ErrFinished
	}
	return e.Err
}

// Reported says whether rank 0 prints this error: true when rank 0 failed itself.
func (e *RanksError) Reported() bool { return len(e.Failed) > 0 && e.Failed[0] == 0 }

// agree is a point every rank reaches with its own outcome (nil: it did its part). It
// returns nil when every rank succeeded, and otherwise a *RanksError on every rank.
// Alone, it returns err as it is.
func agree(c Comm, err error) error {
	if c.Size() == 1 {
		return err
	}
	flags := make([]float64, c.Size())
	if err != nil {
		flags[c.Rank()] = 1
		if errors.Is(err, ErrFinished) {
			flags[c.Rank()] = 2
		}
	}
	if e := c.AllreduceF64(flags); e != nil {
		return errors.Join(err, e)
	}
	re := &RanksError{Err: err, finished: true}
	for r, f := range flags {
		if f != 0 {
			re.Failed = append(re.Failed, r)
			re.finished = re.finished && f == 2
		}
	}
	if len(re.Failed) == 0 {
		return nil
	}
	return re
}

// alike marks an error that every rank meets at the same point of the same step (a
// loss or gradient norm that is not finite: both are global values).
func alike(c Comm, err error) error {
	if c.Size() == 1 || err == nil {
		return err
	}
	all := make([]int, c.Size())
	for i := range all {
		all[i] = i
	}
	return &RanksError{Err: err, Failed: all}
}
