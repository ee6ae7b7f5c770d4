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
//
// // calft_place_strays gives ggml's scheduler a backend for the tensors it would find
// // none for (it aborts then): a leaf without memory that is not flagged as an input
// // (the graph allocator gives such a leaf memory; the scheduler only inputs), placed on
// // the CPU as inputs are; and the root of a view that the graph reads but that is no
// // node or leaf of it, placed by its buffer (on dev when dev can use that buffer's
// // type). It returns the first root without memory outside the graph (no backend can
// // hold it), or NULL.
// // calft_supports_split asks backend b whether it runs node the way the scheduler will
// // give it: with the node's inputs copied into b's memory where they live elsewhere.
// // (The CPU backend refuses any node whose inputs sit in a device's memory.)
// static bool calft_supports_split(ggml_backend_t b, const struct ggml_tensor * node) {
//     struct ggml_tensor n = *node, srcs[GGML_MAX_SRC];
//     for (int j = 0; j < GGML_MAX_SRC; j++) {
//         if (node->src[j] == NULL) continue;
//         srcs[j] = *node->src[j];
//         if (srcs[j].buffer != NULL && !ggml_backend_supports_buft(b, ggml_backend_buffer_get_type(srcs[j].buffer))) {
//             srcs[j].buffer = NULL;
//             srcs[j].view_src = NULL;
//         }
//         n.src[j] = &srcs[j];
//     }
//     return ggml_backend_supports_op(b, &n);
// }
//
// static struct ggml_tensor * calft_place_strays(ggml_backend_sched_t s, struct ggml_cgraph * g,
//         ggml_backend_t dev, ggml_backend_t cpu) {
//     struct ggml_hash_set in = ggml_hash_set_new(2 * (g->n_nodes + g->n_leafs) + 16);
//     struct ggml_tensor * bad = NULL;
//     for (int i = 0; i < g->n_nodes; i++) ggml_hash_insert(&in, g->nodes[i]);
//     for (int i = 0; i < g->n_leafs; i++) {
//         struct ggml_tensor * l = g->leafs[i];
//         ggml_hash_insert(&in, l);
//         if (l->buffer == NULL && l->view_src == NULL && !(l->flags & GGML_TENSOR_FLAG_INPUT)) {
//             ggml_backend_sched_set_tensor_backend(s, l, cpu);
//         }
//     }
//     for (int i = 0; i < g->n_nodes && bad == NULL; i++) {
//         for (int j = 0; j < GGML_MAX_SRC; j++) {
//             struct ggml_tensor * src = g->nodes[i]->src[j];
//             if (src == NULL || src->view_src == NULL || ggml_hash_contains(&in, src->view_src)) continue;
//             struct ggml_tensor * root = src->view_src;
//             if (root->buffer == NULL) { bad = root; break; }
//             ggml_backend_t b = ggml_backend_supports_buft(dev, ggml_backend_buffer_get_type(root->buffer)) ? dev : cpu;
//             ggml_backend_sched_set_tensor_backend(s, root, b);
//             ggml_hash_insert(&in, root);
//         }
//     }
//     ggml_hash_set_free(&in);
//     return bad;
// }
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// Backend is where graphs run: the CPU alone, or a device (a GPU, or an accelerator
// such as BLAS) with the CPU beside it for every op the device lacks. On a device,
// weights live in the device's memory once, and graphs run through ggml's scheduler,
// which cuts them into pieces that each run on a backend supporting all their ops,
// copying values across where a piece reads another's.
type Backend struct {
	b     C.ggml_backend_t
	isCPU bool
	pool  *C.struct_ggml_threadpool
	// cpu is the fallback beside a device; nil when b is the CPU.
	cpu *Backend
	// sched runs the graphs that no Allocator of this backend placed (their nodes
	// already have memory, e.g. a copy into a weight buffer).
	sched *Scheduler
	// placed counts the nodes computed on each backend, by backend name.
	placed map[string]int
	// scheds are the live schedulers over this backend, freed before it is.
	scheds map[*Scheduler]bool
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
		return fmt.Errorf("%s: ggml could not load this backend library (a missing driver, or a library built from other sources: rebuild it with `make %s`)", path, libraryKind(path))
	}
	return nil
}

// NewBackend starts a backend by name: "cpu"; "cuda", "vulkan", "metal" or "blas" (the
// first device of that kind, loading its library when it is not compiled in; see
// OpenLibrary); a device name from DeviceNames ("CUDA0", "Vulkan1"); or "auto" (the
// first GPU present, after loading the GPU libraries found, else the CPU). threads applies
// to the CPU, the fallback included (0: every core).
func NewBackend(name string, threads int) (*Backend, error) {
	if err := CheckThreads(threads); err != nil {
		return nil, err
	}
	dev, err := pickDevice(strings.ToLower(name))
	if err != nil {
		return nil, err
	}
	if dev == nil {
		return startCPU(threads)
	}
	b := C.ggml_backend_dev_init(dev, nil)
	if b == nil {
		return nil, fmt.Errorf("ggml: device %s (%s) did not start", C.GoString(C.ggml_backend_dev_name(dev)),
			C.GoString(C.ggml_backend_dev_description(dev)))
	}
	be := &Backend{b: b, placed: map[string]int{}, scheds: map[*Scheduler]bool{}}
	if be.cpu, err = startCPU(threads); err != nil {
		be.Close()
		return nil, err
	}
	return be, nil
}

// startCPU starts ggml's CPU backend with its own thread pool.
func startCPU(threads int) (*Backend, error) {
	b := C.ggml_backend_cpu_init()
	if b == nil {
		return nil, errors.New("ggml: the CPU backend did not start")
	}
	be := &Backend{b: b, isCPU: true, placed: map[string]int{}}
	be.SetThreads(threads)
	return be, nil
}

// pickDevice resolves a backend name to a device; nil means the CPU.
func pickDevice(name string) (C.ggml_backend_dev_t, error) {
	switch name {
	case "", "cpu":
		return nil, nil
	case "auto":
		OpenGPULibraries()
		return C.ggml_backend_dev_by_type(C.GGML_BACKEND_DEVICE_TYPE_GPU), nil
	}
	for _, kind := range Kinds {
		if name != kind {
			continue
		}
		reg := registered(kind)
		if reg == nil {
			if err := OpenLibrary(kind); err != nil {
				return nil, err
			}
			reg = registered(kind)
		}
		if reg == nil || C.ggml_backend_reg_dev_count(reg) == 0 {
			hint := "is the driver installed?"
			if kind == "vulkan" {
				hint += " A Vulkan device that runs on the CPU (Mesa's lavapipe) is used only when GGML_VK_VISIBLE_DEVICES names it, e.g. GGML_VK_VISIBLE_DEVICES=0"
			}
			return nil, fmt.Errorf("--backend %s: the %s backend is loaded but found no device (%s; devices here: %s)",
				name, kind, hint, strings.Join(DeviceNames(), ", "))
		}
		return C.ggml_backend_reg_dev_get(reg, 0), nil
	}
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	dev := C.ggml_backend_dev_by_name(cs)
	if dev == nil {
		return nil, fmt.Errorf("--backend %q: no such backend or device (use one of %s, or a device of: %s)",
			name, strings.Join(Kinds, ", "), strings.Join(DeviceNames(), ", "))
	}
	if C.ggml_backend_dev_type(dev) == C.GGML_BACKEND_DEVICE_TYPE_CPU {
		return nil, nil
	}
	return dev, nil
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

// SetThreads sets the CPU thread count (0: every core), on the CPU fallback beside a
// device too. The threads live in a pool kept for the backend's life: without one, ggml
// starts threads for every graph compute, which costs most of a small graph's time.
func (be *Backend) SetThreads(n int) {
	if be.cpu != nil {
		be.cpu.SetThreads(n)
	}
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

// CPUHasBF16 reports whether ggml's CPU backend was built with BF16 dot products
// (AVX512-BF16), which run BF16 matrix products at about twice F32's rate.
func CPUHasBF16() bool { return C.ggml_cpu_has_avx512_bf16() != 0 }

// IsCPU reports whether graphs run on the host CPU alone, where calft's own CPU kernels
// (custom ops, which no other backend runs) may replace ggml's.
func (be *Backend) IsCPU() bool { return be.isCPU }

// Name is the backend's name, e.g. "CPU", "CUDA0".
func (be *Backend) Name() string { return C.GoString(C.ggml_backend_name(be.b)) }

// Describe names the device and, beside one, its CPU fallback: "CUDA0 (NVIDIA H200) +
// CPU fallback".
func (be *Backend) Describe() string {
	dev := C.ggml_backend_get_device(be.b)
	s := be.Name()
	if dev != nil {
		if d := C.GoString(C.ggml_backend_dev_description(dev)); d != "" && d != s {
			s += " (" + d + ")"
		}
	}
	if be.cpu != nil {
		s += " + CPU fallback"
	}
	return s
}

// Placed is how many graph nodes ran on each backend so far, by backend name (the
// device's and the CPU fallback's; empty on the CPU alone).
func (be *Backend) Placed() map[string]int {
	out := map[string]int{}
	for k, v := range be.placed {
		out[k] = v
	}
	return out
}

// Close frees the backend, its fallback and its scheduler.
func (be *Backend) Close() {
	if be == nil {
		return
	}
	// ggml's schedulers hold the backends: free any an allocator still has first.
	for sc := range be.scheds {
		sc.Close()
	}
	be.sched = nil
	if be.b != nil {
		C.ggml_backend_free(be.b)
		be.b = nil
	}
	if be.pool != nil {
		C.ggml_threadpool_free(be.pool)
		be.pool = nil
	}
	if be.cpu != nil {
		be.cpu.Close()
		be.cpu = nil
	}
}

// Supports reports whether the backend can run the node t (beside a device: the device
// or its CPU fallback).
func (be *Backend) Supports(t Tensor) bool {
	return bool(C.ggml_backend_supports_op(be.b, t.t)) || (be.cpu != nil && be.cpu.Supports(t))
}

// Compute runs every node of g and waits for it. On the CPU alone g's tensors must
// already have memory. Beside a device, g runs through the scheduler of the Allocator
// that placed it, or else through the backend's own (its nodes then already have
// memory); each node is checked to run on a backend that supports it first.
func (be *Backend) Compute(g *Graph) error {
	if be.cpu == nil {
		if st := C.ggml_backend_graph_compute(be.b, g.g); st != C.GGML_STATUS_SUCCESS {
			return fmt.Errorf("ggml: graph compute on %s failed with status %d", be.Name(), int(st))
		}
		return nil
	}
	sc := g.sched
	if sc == nil {
		var err error
		if be.sched, err = be.schedFor(be.sched, g); err != nil {
			return err
		}
		sc = be.sched
		sc.Reset()
		if err := sc.Alloc(g); err != nil {
			return err
		}
	}
	if err := sc.checkPlacement(g, be.placed); err != nil {
		return err
	}
	return sc.Compute(g)
}

// isEmptyOp reports whether t's op computes nothing (a view, reshape, permute or leaf).
func (t Tensor) isEmptyOp() bool { return bool(C.ggml_op_is_empty(t.t.op)) }

// Buffer is backend memory holding tensors.
type Buffer struct {
	b C.ggml_backend_buffer_t
}

// AllocTensors places every tensor of a no-alloc context in one new buffer of the
// backend (the device's memory beside a device).
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

// MarkTensors marks every tensor of a no-alloc context as held by a buffer of the
// backend's that has no room for them: the graphs that read them are then measured
// (Allocator.Measure) without them, as they will be once AllocTensors places them. The
// tensors get no memory: nothing may compute or read them. Close the buffer after the
// context.
func (be *Backend) MarkTensors(ctx *Context) (*Buffer, error) {
	b := C.ggml_backend_buft_alloc_buffer(C.ggml_backend_get_default_buffer_type(be.b), 1)
	if b == nil {
		return nil, fmt.Errorf("ggml: %s cannot make an empty buffer", be.Name())
	}
	for t := C.ggml_get_first_tensor(ctx.c); t != nil; t = C.ggml_get_next_tensor(ctx.c, t) {
		if t.data == nil && t.view_src == nil {
			t.buffer = b
		}
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

// Allocator gives a graph's intermediate tensors memory, reusing memory between nodes
// whose lifetimes do not overlap. Reserve once with the largest graph, then Alloc
// before each compute. Beside a device it is a scheduler of its own (the device first,
// the CPU last), so that graphs placed by different allocators keep their values.
type Allocator struct {
	a     C.ggml_gallocr_t
	be    *Backend
	sched *Scheduler
	// placed is the graph Place placed last: its tensors hold memory in this
	// allocator's buffers until the next Place lets them go (see Place).
	placed *Graph
}

// NewAllocator makes a graph allocator for the backend.
func (be *Backend) NewAllocator() *Allocator {
	if be.cpu != nil {
		return &Allocator{be: be}
	}
	return &Allocator{a: C.ggml_gallocr_new(C.ggml_backend_get_default_buffer_type(be.b)), be: be}
}

// Reserve sizes the buffer for g without placing tensors.
func (al *Allocator) Reserve(g *Graph) error {
	if al.a == nil {
		var err error
		if al.sched, err = al.be.schedFor(al.sched, g); err != nil {
			return err
		}
		return al.sched.Reserve(g)
	}
	if !C.ggml_gallocr_reserve(al.a, g.g) {
		return errors.New("out of memory: cannot reserve the graph's compute buffer")
	}
	return nil
}

// Alloc places every unallocated node of g.
func (al *Allocator) Alloc(g *Graph) error {
	if al.a == nil {
		var err error
		if al.sched, err = al.be.schedFor(al.sched, g); err != nil {
			return err
		}
		al.sched.Reset()
		if err := al.sched.Alloc(g); err != nil {
			return err
		}
		g.sched = al.sched
		return nil
	}
	if !C.ggml_gallocr_alloc_graph(al.a, g.g) {
		return errors.New("out of memory: cannot allocate the graph's compute buffer")
	}
	return nil
}

// Place allocates g's intermediate values in the allocator's buffer, where another
// graph may have been placed since g last was: g's tensors that live in a compute buffer
// are let go first, as ggml's allocator keeps any tensor that already has memory.
//
// The graph placed before g lets its tensors go too, first, while the buffers they
// point into still exist: placing g may grow the buffers (ggml frees the old ones), and
// a graph placed again later must not find its tensors pointing into freed memory
// (calft_release_compute reads each tensor's buffer to tell compute memory from
// weights; a freed one reads as garbage, the tensor then kept its stale memory, and the
// device wrote into freed host memory: lavapipe's heap corruption).
func (al *Allocator) Place(g *Graph) error {
	al.release(g)
	g.restoreSrcs() // the sources a scheduler's last split of g left are freed copies
	C.calft_release_compute(g.g)
	if err := al.Alloc(g); err != nil {
		return err
	}
	al.placed = g
	return nil
}

// release lets the tensors of the graph placed last go, unless it is keep or has been
// freed since (its context closed).
func (al *Allocator) release(keep *Graph) {
	if p := al.placed; p != nil && p != keep && p.ctx != nil && p.ctx.c != nil {
		p.restoreSrcs()
		C.calft_release_compute(p.g)
	}
	al.placed = nil
}

// Measure is the size of the buffer g needs, without allocating it (beside a device:
// the device's and the CPU's together).
func (al *Allocator) Measure(g *Graph) int {
	if al.a == nil {
		var err error
		if al.sched, err = al.be.schedFor(al.sched, g); err != nil {
			return 0
		}
		return al.sched.measure(g)
	}
	var size C.size_t
	C.ggml_gallocr_reserve_n_size(al.a, g.g, nil, nil, &size)
	return int(size)
}

// Size is the bytes the allocator holds.
func (al *Allocator) Size() int {
	if al.a == nil {
		if al.sched == nil {
			return 0
		}
		return al.sched.BufferSize(al.be) + al.sched.BufferSize(al.be.cpu)
	}
	return int(C.ggml_gallocr_get_buffer_size(al.a, 0))
}

// Close frees the allocator and its buffer.
func (al *Allocator) Close() {
	if al == nil {
		return
	}
	al.release(nil)
	if al.a != nil {
		C.ggml_gallocr_free(al.a)
		al.a = nil
	}
	al.sched.Close()
	al.sched = nil
}

// minSchedSize is the least graph capacity a scheduler is made for (its hash set: about
// 30 bytes an entry), enough for the graphs of most models at once.
const minSchedSize = 1 << 18

// schedFor is sc, or a new scheduler over the device and the CPU fallback when sc is
// nil or too small for g (ggml's scheduler holds a hash set sized for its graphs). A
// scheduler too small is not freed here: tensors of graphs it placed still point into
// its buffers, and a graph placed again later must find them valid (to let them go);
// the backend frees it when it closes.
func (be *Backend) schedFor(sc *Scheduler, g *Graph) (*Scheduler, error) {
	need := max(2*(int(g.g.size)+int(g.g.n_leafs)+64), minSchedSize)
	if sc != nil && sc.size >= need {
		return sc, nil
	}
	sc, err := NewScheduler([]*Backend{be, be.cpu}, need)
	if err != nil {
		return nil, err
	}
	be.scheds[sc] = true
	sc.owner = be
	return sc, nil
}

// Scheduler splits a graph across several backends (a device first, the CPU last as
// the fallback for ops the device lacks), allocates the intermediate tensors and runs it.
type Scheduler struct {
	s        C.ggml_backend_sched_t
	size     int
	backends []*Backend
	owner    *Backend // the device backend whose scheds list holds it, if any
}

// NewScheduler makes a scheduler over backends in priority order; the last must be the
// CPU. graphSize bounds the nodes and leaves of the graphs it runs.
func NewScheduler(backends []*Backend, graphSize int) (*Scheduler, error) {
	if len(backends) == 0 {
		return nil, errors.New("ggml: a scheduler needs at least one backend")
	}
	if !backends[len(backends)-1].isCPU {
		return nil, errors.New("ggml: a scheduler's last backend must be the CPU")
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
	return &Scheduler{s: s, size: graphSize, backends: backends}, nil
}

// Reserve sizes the scheduler's buffers for the largest graph it will run.
func (sc *Scheduler) Reserve(g *Graph) error {
	if err := sc.prepare(g); err != nil {
		return err
	}
	if !C.ggml_backend_sched_reserve(sc.s, g.g) {
		return errors.New("ggml: cannot reserve memory for the graph (out of memory?)")
	}
	return nil
}

// measure is the compute memory g needs on all the scheduler's backends together.
func (sc *Scheduler) measure(g *Graph) int {
	g.restoreSrcs()
	sizes := make([]C.size_t, len(sc.backends))
	// No prepare: ggml_backend_sched_reserve_size resets the scheduler before it splits,
	// which would forget any placement given here.
	C.ggml_backend_sched_reserve_size(sc.s, g.g, &sizes[0])
	n := 0
	for _, v := range sizes {
		n += int(v)
	}
	return n
}

// Alloc assigns nodes to backends and places them in memory; call after Reset.
func (sc *Scheduler) Alloc(g *Graph) error {
	if err := sc.prepare(g); err != nil {
		return err
	}
	if !C.ggml_backend_sched_alloc_graph(sc.s, g.g) {
		return errors.New("ggml: cannot allocate the graph (out of memory?)")
	}
	return nil
}

// checkPlacement makes sure no node of the allocated graph g is left on a backend that
// cannot run it (ggml's Vulkan backend would skip such a node without a word), and adds
// the nodes of each backend to count.
func (sc *Scheduler) checkPlacement(g *Graph, count map[string]int) error {
	for i := 0; i < g.NNodes(); i++ {
		n := g.Node(i)
		if n.isEmptyOp() {
			continue
		}
		b := C.ggml_backend_sched_get_tensor_backend(sc.s, n.t)
		if b == nil {
			return fmt.Errorf("ggml: node %d (%s %s) was given no backend", i, n.Op(), n.Name())
		}
		if !C.calft_supports_split(b, n.t) {
			return fmt.Errorf("ggml: node %d (%s %s, %s) was placed on %s, which cannot run it, and no fallback took it",
				i, n.Op(), n.Name(), n.Type(), C.GoString(C.ggml_backend_name(b)))
		}
		if count != nil {
			count[C.GoString(C.ggml_backend_name(b))]++
		}
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

// Close frees the scheduler (a no-op once its backend has freed it).
func (sc *Scheduler) Close() {
	if sc != nil && sc.s != nil {
		C.ggml_backend_sched_free(sc.s)
		sc.s = nil
		if sc.owner != nil {
			delete(sc.owner.scheds, sc)
		}
	}
}

// prepare assigns, before a split, what ggml's scheduler would not assign well itself:
// the quirks' nodes and the strays (see calft_place_strays).
func (sc *Scheduler) prepare(g *Graph) error {
	g.restoreSrcs()
	sc.pinQuirks(g)
	dev, cpu := sc.backends[0], sc.backends[len(sc.backends)-1]
	if bad := C.calft_place_strays(sc.s, g.g, dev.b, cpu.b); bad != nil {
		t := Tensor{bad}
		return fmt.Errorf("ggml: the graph reads a view of %s (%s %s), which has no memory and is not computed by the graph", t.Name(), t.Op(), t.Type())
	}
	return nil
}

// pinQuirks places on the CPU the nodes the device claims to support but cannot run:
// ggml's CUDA GET_ROWS_BACK launches one block row per destination row, and more than
// 65535 of them (the grid's y limit; a target-logit pick from a vocabulary times rows
// has millions) fail with "invalid argument". Call after Reset, before Alloc or Reserve.
func (sc *Scheduler) pinQuirks(g *Graph) {
	dev := sc.backends[0]
	cpu := sc.backends[len(sc.backends)-1]
	if dev.isCPU || !strings.HasPrefix(dev.Name(), "CUDA") {
		return
	}
	for i := 0; i < g.NNodes(); i++ {
		n := g.Node(i)
		if n.t.op == C.GGML_OP_GET_ROWS_BACK && n.t.ne[1] > 65535 {
			C.ggml_backend_sched_set_tensor_backend(sc.s, n.t, cpu.b)
		}
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
