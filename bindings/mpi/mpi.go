//go:build mpi

package mpi

/*
#if defined(__has_include)
#if !__has_include(<mpi.h>)
#error "mpi.h not found: build the MPI binary with make mpi (it writes bindings/mpi/zz_flags.go from mpicc)"
#endif
#endif
#include <mpi.h>
#include <stdlib.h>

static int calft_init(int *provided) {
	int done = 0;
	MPI_Initialized(&done);
	if (done) {
		return MPI_Query_thread(provided);
	}
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}
static int calft_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static int calft_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int calft_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int calft_allreduce_f32(float *x, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static int calft_allreduce_f64(double *x, int n) {
	return MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static int calft_gather_int(int v, int *all) {
	return MPI_Gather(&v, 1, MPI_INT, all, 1, MPI_INT, 0, MPI_COMM_WORLD);
}
static int calft_gatherv(void *b, int n, void *all, int *counts, int *displs) {
	return MPI_Gatherv(b, n, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, MPI_COMM_WORLD);
}
static int calft_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static void calft_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static int calft_finalize(void) {
	int started = 0, done = 0;
	MPI_Initialized(&started);
	MPI_Finalized(&done);
	return (!started || done) ? MPI_SUCCESS : MPI_Finalize();
}
static int calft_error_string(int code, char *buf, int *n) { return MPI_Error_string(code, buf, n); }
static int calft_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"sync"
	"unsafe"
)

// mu serializes the calls: MPI is initialised with MPI_THREAD_SERIALIZED, since a
// goroutine may move between OS threads.
var mu sync.Mutex

// check turns an MPI return code into an error naming the call.
func check(call string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	buf := make([]byte, int(C.calft_max_error_string()))
	var n C.int
	C.calft_error_string(rc, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	return fmt.Errorf("%s: %s (MPI error %d)", call, string(buf[:max(0, int(n))]), int(rc))
}

// Init starts MPI (MPI_Init_thread with MPI_THREAD_SERIALIZED; a second call does
// nothing) and returns this process's rank and the world's size.
func Init() (rank, size int, err error) {
	mu.Lock()
	defer mu.Unlock()
	var provided C.int
	if err := check("MPI_Init_thread", C.calft_init(&provided)); err != nil {
		return 0, 0, err
	}
	if provided < C.calft_thread_serialized() {
		return 0, 0, fmt.Errorf("MPI_Init_thread: the MPI library gave thread level %d; calft needs MPI_THREAD_SERIALIZED", int(provided))
	}
	var r, s C.int
	if err := check("MPI_Comm_rank", C.calft_rank(&r)); err != nil {
		return 0, 0, err
	}
	if err := check("MPI_Comm_size", C.calft_size(&s)); err != nil {
		return 0, 0, err
	}
	return int(r), int(s), nil
}

// chunk is the most elements one reduction call takes (MPI counts are C ints).
const chunk = 1 << 28

// AllreduceF32 replaces x, on every rank, with its element-wise sum over the ranks.
func AllreduceF32(x []float32) error {
	mu.Lock()
	defer mu.Unlock()
	for len(x) > 0 {
		n := min(len(x), chunk)
		if err := check("MPI_Allreduce", C.calft_allreduce_f32((*C.float)(unsafe.Pointer(&x[0])), C.int(n))); err != nil {
			return err
		}
		x = x[n:]
	}
	return nil
}

// AllreduceF64 replaces x, on every rank, with its element-wise sum over the ranks.
func AllreduceF64(x []float64) error {
	mu.Lock()
	defer mu.Unlock()
	for len(x) > 0 {
		n := min(len(x), chunk)
		if err := check("MPI_Allreduce", C.calft_allreduce_f64((*C.double)(unsafe.Pointer(&x[0])), C.int(n))); err != nil {
			return err
		}
		x = x[n:]
	}
	return nil
}

// Gather collects every rank's bytes on rank 0, in rank order; other ranks get nil.
func Gather(b []byte, rank, size int) ([][]byte, error) {
	if len(b) > math.MaxInt32 {
		return nil, fmt.Errorf("MPI_Gatherv: %d bytes is more than one gather carries", len(b))
	}
	mu.Lock()
	defer mu.Unlock()
	counts := make([]C.int, size)
	if err := check("MPI_Gather", C.calft_gather_int(C.int(len(b)), &counts[0])); err != nil {
		return nil, err
	}
	displs := make([]C.int, size)
	total := 0
	if rank == 0 {
		for i, c := range counts {
			if total+int(c) > math.MaxInt32 {
				return nil, fmt.Errorf("MPI_Gatherv: the ranks' %d+ bytes are more than one gather carries", total+int(c))
			}
			displs[i] = C.int(total)
			total += int(c)
		}
	}
	all := C.malloc(C.size_t(max(total, 1)))
	defer C.free(all)
	src := C.malloc(C.size_t(max(len(b), 1)))
	defer C.free(src)
	if len(b) > 0 {
		copy(unsafe.Slice((*byte)(src), len(b)), b)
	}
	if err := check("MPI_Gatherv", C.calft_gatherv(src, C.int(len(b)), all, &counts[0], &displs[0])); err != nil {
		return nil, err
	}
	if rank != 0 {
		return nil, nil
	}
	buf := C.GoBytes(all, C.int(total))
	out := make([][]byte, size)
	for i := range out {
		out[i] = buf[displs[i] : int(displs[i])+int(counts[i])]
	}
	return out, nil
}

// Barrier waits until every rank has called it.
func Barrier() error {
	mu.Lock()
	defer mu.Unlock()
	return check("MPI_Barrier", C.calft_barrier())
}

// Abort ends every process of the job with code (MPI_Abort); it does not return.
func Abort(code int) {
	C.calft_abort(C.int(code)) // without the lock: a call in flight may be what hangs
	os.Exit(code)
}

// Finalize shuts MPI down (once; later calls, and calls when Init was not, do nothing).
func Finalize() error {
	mu.Lock()
	defer mu.Unlock()
	return check("MPI_Finalize", C.calft_finalize())
}
