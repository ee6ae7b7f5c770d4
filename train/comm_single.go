//go:build !mpi

package train

// MPI says whether this binary was built with MPI (make mpi).
const MPI = false

// World is the process's communicator: Single in a build without MPI.
func World() (Comm, error) { return Single, nil }

// FinalizeWorld ends MPI where World started it; here, nothing.
func FinalizeWorld() {}
