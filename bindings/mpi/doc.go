// Package mpi is a thin cgo layer over the MPI library (Open MPI, MPICH, …) for calft's
// data-parallel training: start-up, the rank and size of MPI_COMM_WORLD, in-place sum
// all-reduces, a gather of bytes to rank 0, a barrier, and MPI_Abort.
//
// It compiles only with the build tag mpi (make mpi): the default build needs no MPI.
// The compiler and linker flags come from zz_flags.go, which make mpi writes from
// mpicc --showme (or pkg-config); see scripts/mpi-flags.sh.
package mpi
