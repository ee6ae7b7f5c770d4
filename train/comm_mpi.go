//go:build mpi

package train

import (
	"fmt"
	"os"

	"github.com/calft/calft/bindings/mpi"
)

// MPI says whether this binary was built with MPI (make mpi).
const MPI = true

// World starts MPI (once) and returns MPI_COMM_WORLD: every process that mpirun or
// srun started is a rank. A binary started alone is a world of one.
func World() (Comm, error) {
	r, s, err := mpi.Init()
	if err != nil {
		return nil, fmt.Errorf("starting MPI: %w", err)
	}
	if s == 1 {
		return Single, nil
	}
	return world{rank: r, size: s}, nil
}

// FinalizeWorld ends MPI where World started it.
func FinalizeWorld() {
	if err := mpi.Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, "calft:", err)
	}
}

type world struct{ rank, size int }

func (w world) Rank() int                         { return w.rank }
func (w world) Size() int                         { return w.size }
func (w world) AllreduceSum(x []float32) error    { return mpi.AllreduceF32(x) }
func (w world) AllreduceF64(x []float64) error    { return mpi.AllreduceF64(x) }
func (w world) Gather(b []byte) ([][]byte, error) { return mpi.Gather(b, w.rank, w.size) }
func (w world) Barrier() error                    { return mpi.Barrier() }
func (w world) Abort(code int)                    { mpi.Abort(code) }
