package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/calft/calft/train"
)

// train and score run as the ranks of an MPI job when calft is built with MPI (make mpi)
// and started by mpirun or srun; every rank runs the same command.

// quietError ends the process with exit code 1 without a message: it was printed
// already, or another rank of the job prints it.
type quietError struct{}

func (quietError) Error() string { return "" }

// rankLog is where a rank's progress goes: rank 0's to w, the others' nowhere (they
// would repeat it).
func rankLog(comm train.Comm, w io.Writer) io.Writer {
	if comm.Rank() != 0 {
		return io.Discard
	}
	return w
}

// endRank finishes a command run as a rank: it shuts MPI down and says which rank
// reports the error. An error every rank met at the same point (train.RanksError, an
// interrupt) is printed once, by rank 0 or by the rank that failed when rank 0 did not;
// a rank that failed alone prints its error and ends the whole job with MPI_Abort,
// since the others may be waiting for it.
func endRank(comm train.Comm, err error) error {
	if err == nil || comm.Size() == 1 {
		train.FinalizeWorld()
		return err
	}
	var re *train.RanksError
	switch {
	case errors.As(err, &re), errors.Is(err, train.ErrInterrupted):
		switch {
		case comm.Rank() == 0:
			fmt.Fprintln(os.Stderr, "calft:", err)
		case re != nil && re.Err != nil && !re.Reported():
			fmt.Fprintf(os.Stderr, "calft: rank %d of %d: %v\n", comm.Rank(), comm.Size(), err)
		}
		// mpirun ends the job at the first rank that exits with an error: wait until
		// every message is out.
		comm.Barrier()
		train.FinalizeWorld()
		return quietError{}
	}
	fmt.Fprintf(os.Stderr, "calft: rank %d of %d: %v\n", comm.Rank(), comm.Size(), err)
	comm.Abort(1)
	return err
}

// parseFault reads the hidden --fault RANK:STEP[:kill] of the tests.
func parseFault(s string) (train.Fault, error) {
	if s == "" {
		return train.Fault{}, nil
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 || (len(parts) == 3 && parts[2] != "kill" && parts[2] != "error") {
		return train.Fault{}, fmt.Errorf("--fault %q: use RANK:STEP[:error|kill]", s)
	}
	rank, err1 := strconv.Atoi(parts[0])
	step, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || rank < 0 || step < 1 {
		return train.Fault{}, fmt.Errorf("--fault %q: use RANK:STEP[:error|kill]", s)
	}
	return train.Fault{Rank: rank, Step: step, Kill: len(parts) == 3 && parts[2] == "kill"}, nil
}
