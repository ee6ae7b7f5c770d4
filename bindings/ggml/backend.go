package ggml

// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-cpu.h"
// #include "ggml-backend.h"
// #include "ggml-alloc.h"
// #include "ggml-impl.h"
// static void calft_release_compute(struct ggml_cgraph * g) {
//     for (int pass = 0; pass < 2; pass++) {
//         int n = pass == 0 ? g->n_leafs : g->n_nodes;
//         for (int i = 0; i < n; i++) {
//             struct ggml_tensor * t = pass == 0 ? g->leafs[i] : g->nodes[i];
//             for (int s = -1; s < GGML_MAX_SRC; s++) {
//                 struct ggml_tensor * u = s < 0 ? t : t->src[s];
//                 if (u != NULL && u->buffer != NULL &&
//                     ggml_backend_buffer_get_usage(u->buffer) == GGML_BACKEND_BUFFER_USAGE_COMPUTE) {
//                     u->data = NULL;
//                     u->buffer = NULL;
//                 }
//             }
//         }
//     }
// }
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// Backend is a device that runs graphs (the CPU here; Metal or CUDA where compiled in).
type Backend struct {
	b     C.ggml_backend_t
	isCPU bool
	pool  *C.struct_ggml_threadpool
}

// DeviceNames lists the registered devices, e.g. ["CPU"] or ["CUDA0", "CPU"].
func DeviceNames() []string {
	var out []string
	for i := range int(C.ggml_backend_dev_count()) {
		out = append(out, C.GoString(C.ggml_backend_dev_name(C.ggml_backend_dev_get(C.size_t(i)))))
	}
	return out
}

// LoadBackendLibrary registers a dynamically built backend (e.g. libggml-cuda.so).
func LoadBackendLibrary(path string) error {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	if C.ggml_backend_load(cs) == nil {
		return fmt.Errorf("%s: ggml could not load this backend library; check that it was built from the same pinned sources", path)
	}
	return nil
}

// NewBackend starts a backend by device name: "cpu", "auto" (the best device present:
// a GPU when one is registered, else the CPU), or a device name from DeviceNames.
// threads applies to the CPU (0: every core).
func NewBackend(name string, threads int) (*Backend, error) {
	if err := CheckThreads(threads); err != nil {
		return nil, err
	}
	var b C.ggml_backend_t
	switch strings.ToLower(name) {
	case "", "cpu":
		b = C.ggml_backend_cpu_init()
	case "auto":
		b = C.ggml_backend_init_best()
	default:
		cs := C.CString(name)
		defer C.free(unsafe.Pointer(cs))
		b = C.ggml_backend_init_by_name(cs, nil)
	}
	if b == nil {
		return nil, fmt.Errorf("ggml: no backend %q (devices here: %s)", name, strings.Join(DeviceNames(), ", "))
	}
	be := &Backend{b: b}
	dev := C.ggml_backend_get_device(b)
	be.isCPU = dev != nil && C.ggml_backend_dev_type(dev) == C.GGML_BACKEND_DEVICE_TYPE_CPU
	if be.isCPU {
		be.SetThreads(threads)
	}
	return be, nil
}

// CheckThreads refuses a CPU thread count ggml cannot use well: negative, or more than
// the machine's cores. ggml's threads spin while they wait for each other, so one more
// thread than cores makes a compute tens of times slower, and a huge count hangs in
// thread creation.
func CheckThreads(n int) error {
	switch cores := runtime.NumCPU(); {
	case n < 0:
		return fmt.Errorf("--threads %d is negative; use 0 for all %d cores", n, cores)
	case n > cores:
		return fmt.Errorf("--threads %d is more than this machine's %d CPU cores; use at most %d (0: all): extra threads make ggml tens of times slower", n, cores, cores)
	}
	return nil
}

// SetThreads sets the CPU thread count (0: every core); other backends ignore it. The
// threads live in a pool kept for the backend's life: without one, ggml starts threads
// for every graph compute, which costs most of a small graph's time.
func (be *Backend) SetThreads(n int) {
	if !be.isCPU {
		return
	}
	if n <= 0 {
		n = runtime.NumCPU()
	}
	C.ggml_backend_cpu_set_n_threads(be.b, C.int(n))
	if be.pool != nil {
		C.ggml_backend_cpu_set_threadpool(be.b, nil)
		C.ggml_threadpool_free(be.pool)
	}
	p := C.ggml_threadpool_params_default(C.int(n))
	be.pool = C.ggml_threadpool_new(&p)
	C.ggml_backend_cpu_set_threadpool(be.b, be.pool)
}

// IsCPU reports whether graphs run on the host CPU.
func (be *Backend) IsCPU() bool { return be.isCPU }

// Name is the backend's name, e.g. "CPU".
func (be *Backend) Name() string { return C.GoString(C.ggml_backend_name(be.b)) }

// Close frees the backend.
func (be *Backend) Close() {
	if be != nil && be.b != nil {
		C.ggml_backend_free(be.b)
		be.b = nil
	}
	if be != nil && be.pool != nil {
		C.ggml_threadpool_free(be.pool)
		be.pool = nil
	}
}

// Supports reports whether the backend can run the node t.
func (be *Backend) Supports(t Tensor) bool { return bool(C.ggml_backend_supports_op(be.b, t.t)) }

// Compute runs every node of g on this backend. Its tensors must already have memory.
func (be *Backend) Compute(g *Graph) error {
	if st := C.ggml_backend_graph_compute(be.b, g.g); st != C.GGML_STATUS_SUCCESS {
		return fmt.Errorf("ggml: graph compute on %s failed with status %d", be.Name(), int(st))
	}
	return nil
}

// Buffer is backend memory holding tensors.
type Buffer struct {
	b C.ggml_backend_buffer_t
}

// AllocTensors places every tensor of a no-alloc context in one new buffer of the backend.
func (be *Backend) AllocTensors(ctx *Context) (*Buffer, error) {
	b := C.ggml_backend_alloc_ctx_tensors(ctx.c, be.b)
	if b == nil {
		n, size := 0, 0
		for t := C.ggml_get_first_tensor(ctx.c); t != nil; t = C.ggml_get_next_tensor(ctx.c, t) {
			n++
			size += int(C.ggml_nbytes(t))
		}
		if n == 0 {
			return nil, errors.New("ggml: no tensors to allocate")
		}
		return nil, fmt.Errorf("out of memory: %s cannot hold %d tensors of %s", be.Name(), n, HumanBytes(size))
	}
	return &Buffer{b: b}, nil
}

// Size is the buffer's size in bytes.
func (buf *Buffer) Size() int { return int(C.ggml_backend_buffer_get_size(buf.b)) }

// Clear fills the buffer with a byte value.
func (buf *Buffer) Clear(v byte) { C.ggml_backend_buffer_clear(buf.b, C.uint8_t(v)) }

// Close frees the buffer.
func (buf *Buffer) Close() {
	if buf != nil && buf.b != nil {
		C.ggml_backend_buffer_free(buf.b)
		buf.b = nil
	}
}

// Allocator gives a graph's intermediate tensors memory in one backend, reusing memory
// between nodes whose lifetimes do not overlap. Reserve once with the largest graph,
// then Alloc before each compute.
type Allocator struct {
	a C.ggml_gallocr_t
}

// NewAllocator makes a graph allocator for the backend's default buffer type.
func (be *Backend) NewAllocator() *Allocator {
	return &Allocator{a: C.ggml_gallocr_new(C.ggml_backend_get_default_buffer_type(be.b))}
}

// Reserve sizes the buffer for g without placing tensors.
func (al *Allocator) Reserve(g *Graph) error {
	if !C.ggml_gallocr_reserve(al.a, g.g) {
		return errors.New("out of memory: cannot reserve the graph's compute buffer")
	}
	return nil
}

// Alloc places every unallocated node of g.
func (al *Allocator) Alloc(g *Graph) error {
	if !C.ggml_gallocr_alloc_graph(al.a, g.g) {
		return errors.New("out of memory: cannot allocate the graph's compute buffer")
	}
	return nil
}

// Place allocates g's intermediate values in the allocator's buffer, where another
// graph may have been placed since g last was: g's tensors that live in a compute buffer
// are let go first, as ggml's allocator keeps any tensor that already has memory.
func (al *Allocator) Place(g *Graph) error {
	C.calft_release_compute(g.g)
	return al.Alloc(g)
}

// Measure is the size of the buffer g needs, without allocating it.
func (al *Allocator) Measure(g *Graph) int {
	var size C.size_t
	C.ggml_gallocr_reserve_n_size(al.a, g.g, nil, nil, &size)
	return int(size)
}

// Size is the bytes the allocator holds.
func (al *Allocator) Size() int { return int(C.ggml_gallocr_get_buffer_size(al.a, 0)) }

// Close frees the allocator and its buffer.
func (al *Allocator) Close() {
	if al != nil && al.a != nil {
		C.ggml_gallocr_free(al.a)
		al.a = nil
	}
}

// Scheduler splits a graph across several backends (a GPU first, the CPU last as the
// fallback for ops the GPU lacks), allocates the intermediate tensors and runs it.
type Scheduler struct {
	s C.ggml_backend_sched_t
}

// NewScheduler makes a scheduler over backends in priority order; the last must be the CPU.
func NewScheduler(backends []*Backend, graphSize int) (*Scheduler, error) {
	if len(backends) == 0 {
		return nil, errors.New("ggml: a scheduler needs at least one backend")
	}
	bs := (*C.ggml_backend_t)(C.malloc(C.size_t(len(backends)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(bs))
	arr := unsafe.Slice(bs, len(backends))
	for i, be := range backends {
		arr[i] = be.b
	}
	s := C.ggml_backend_sched_new(bs, nil, C.int(len(backends)), C.size_t(graphSize), false, true)
	if s == nil {
		return nil, errors.New("ggml: cannot create the backend scheduler")
	}
	return &Scheduler{s: s}, nil
}

// Reserve sizes the scheduler's buffers for the largest graph it will run.
func (sc *Scheduler) Reserve(g *Graph) error {
	if !C.ggml_backend_sched_reserve(sc.s, g.g) {
		return errors.New("ggml: cannot reserve memory for the graph (out of memory?)")
	}
	return nil
}

// Alloc assigns nodes to backends and places them in memory; call after Reset.
func (sc *Scheduler) Alloc(g *Graph) error {
	if !C.ggml_backend_sched_alloc_graph(sc.s, g.g) {
		return errors.New("ggml: cannot allocate the graph (out of memory?)")
	}
	return nil
}

// Compute runs the allocated graph and waits for it.
func (sc *Scheduler) Compute(g *Graph) error {
	if st := C.ggml_backend_sched_graph_compute(sc.s, g.g); st != C.GGML_STATUS_SUCCESS {
		return fmt.Errorf("ggml: graph compute failed with status %d", int(st))
	}
	return nil
}

// Reset forgets the previous graph's placement, before allocating another.
func (sc *Scheduler) Reset() { C.ggml_backend_sched_reset(sc.s) }

// NSplits is how many backend-contiguous pieces the last graph was cut into.
func (sc *Scheduler) NSplits() int { return int(C.ggml_backend_sched_get_n_splits(sc.s)) }

// BufferSize is the compute memory the scheduler holds on backend be.
func (sc *Scheduler) BufferSize(be *Backend) int {
	return int(C.ggml_backend_sched_get_buffer_size(sc.s, be.b))
}

// Close frees the scheduler.
func (sc *Scheduler) Close() {
	if sc != nil && sc.s != nil {
		C.ggml_backend_sched_free(sc.s)
		sc.s = nil
	}
}

// HumanBytes writes a byte count for people: 538 MB, 1.2 GB.
func HumanBytes(n int) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
