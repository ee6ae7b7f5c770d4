package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/calft/calft/data"
)

// Data-parallel training. Every rank of an MPI job loads the model and runs Run's loop;
// in a job of n ranks, rank k takes global micro-batch micro·n + k of the Accum·n
// micro-batches of each step, so the ranks together see, step by step, exactly the
// samples one process sees with a batch n times larger. A step's micro-batch gradients
// are weighted as that process weights them: its micro-batch loss is Σ w·CE / Σ w over
// all the ranks' samples of that micro-batch, so each rank scales its gradient by its
// share of Σ w. The ranks sum the scaled gradients (a few MB of LoRA) with one
// allreduce and then take the identical AdamW step; clipping, the loss and the metrics
// use the global values. Rank 0 alone writes into --out.

// dataParallel is a run's side of the job.
type dataParallel struct {
	comm  Comm
	fault Fault
	// grad is this rank's share of the step's mean gradient, every param end to end.
	grad, scratch []float32
	sync          time.Duration // time of the step spent exchanging (see Metrics.SyncSec)
}

// Fault is a test hook: rank Rank fails at step Step (1-based; 0: never) with an
// error, or by killing itself with SIGKILL when Kill.
type Fault struct {
	Rank, Step int
	Kill       bool
}

// hit is the fault's error (or SIGKILL) when it is due on this rank at this step.
func (f Fault) hit(rank, step int) error {
	if f.Step == 0 || f.Rank != rank || step+1 != f.Step {
		return nil
	}
	if f.Kill {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	}
	return fmt.Errorf("test fault: rank %d fails at step %d", rank, f.Step)
}

func (r *run) ranks() int { return r.dp.comm.Size() }
func (r *run) rank() int  { return r.dp.comm.Rank() }

// lead says whether this process writes the run's files (rank 0, or the only process).
func (r *run) lead() bool { return r.dp.comm.Rank() == 0 }

// share adds a micro-batch to the step's statistics. In a job it sums the micro-batch's
// loss, weights and tokens over the ranks and folds this rank's gradient, weighted by
// its share of the micro-batch's Σ w, into the host copy that update exchanges.
func (r *run) share(s *stepStats, m Micro, b *Batch, step, micro int) error {
	dp := &r.dp
	if err := dp.fault.hit(dp.comm.Rank(), step); err != nil {
		return err
	}
	if dp.comm.Size() == 1 {
		return s.add(m, b)
	}
	t0 := time.Now()
	defer func() { dp.sync += time.Since(t0) }()
	w := 0.0
	for _, x := range m.Weights {
		w += float64(x)
	}
	bad := 0.0
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		bad = 1
	}
	st := []float64{w, w * m.Loss, float64(len(m.Weights)), float64(b.Real), bad}
	if err := dp.comm.AllreduceF64(st); err != nil {
		return err
	}
	loss := st[1] / max(st[0], 1e-20) // the loss's own clamp of Σ w
	if st[4] > 0 || math.IsNaN(loss) || math.IsInf(loss, 0) {
		return alike(dp.comm, fmt.Errorf("the loss is not finite on rank(s) of this micro-batch (%v)", loss))
	}
	s.loss += loss
	s.wSum += st[0]
	s.wN += int(st[2])
	s.tokens += int(st[3])
	f := 0.0
	if st[0] > 0 {
		f = w / st[0] / float64(r.c.Accum)
	}
	dp.fold(r.tr.Opt, float32(f), micro == 0)
	if micro+1 < r.c.Accum {
		r.tr.ZeroGrad() // the next micro-batch's gradient gets its own weight
	}
	return nil
}

// fold adds f times the accumulated gradients to the host copy (replacing it when first).
func (dp *dataParallel) fold(opt *Optimizer, f float32, first bool) {
	if dp.grad == nil {
		n := 0
		for _, p := range opt.Params {
			n += p.NElements()
		}
		dp.grad = make([]float32, n)
	}
	off := 0
	for _, p := range opt.Params {
		acc := opt.Accs[p]
		n := acc.NElements()
		dst := dp.grad[off : off+n]
		off += n
		if first {
			acc.ReadF32(dst)
			for i := range dst {
				dst[i] *= f
			}
			continue
		}
		if len(dp.scratch) < n {
			dp.scratch = make([]float32, n)
		}
		g := dp.scratch[:n]
		acc.ReadF32(g)
		for i, x := range g {
			dst[i] += f * x
		}
	}
}

// update applies the step's AdamW update: alone, to the accumulated gradients of the
// Accum micro-batches; in a job, to the sum over the ranks of their weighted shares,
// which is the step's mean gradient already.
func (r *run) update(step int) (float64, error) {
	c := &r.c
	if r.ranks() == 1 {
		return r.tr.Update(r.adamw(step), c.Accum, c.Clip)
	}
	if err := r.dp.exchange(r.tr.Opt); err != nil {
		return 0, err
	}
	norm, err := r.tr.Update(r.adamw(step), 1, c.Clip)
	if err != nil && (math.IsNaN(norm) || math.IsInf(norm, 0)) {
		err = alike(r.dp.comm, err) // the norm of the summed gradient: the same on every rank
	}
	return norm, err
}

// exchange sums the ranks' gradient shares and writes the sum into the accumulators.
func (dp *dataParallel) exchange(opt *Optimizer) error {
	t0 := time.Now()
	defer func() { dp.sync += time.Since(t0) }()
	if err := dp.comm.AllreduceSum(dp.grad); err != nil {
		return err
	}
	off := 0
	for _, p := range opt.Params {
		acc := opt.Accs[p]
		n := acc.NElements()
		acc.SetF32(dp.grad[off : off+n])
		off += n
	}
	return nil
}

// takeSync returns the step's exchange time in seconds and starts the next step's.
func (dp *dataParallel) takeSync() float64 {
	s := dp.sync.Seconds()
	dp.sync = 0
	return s
}

// save writes the checkpoint after step optimizer steps (rank 0); every rank learns
// whether it was written.
func (r *run) save(step int) (string, error) {
	var dir string
	var err error
	if r.lead() {
		dir, err = saveCheckpoint(r.c.Out, r.env.Model.HP.Arch, r.tr.Adapter, r.tr.Opt, r.state(step), r.crashHook(step))
	}
	return dir, agree(r.dp.comm, err)
}

// valLoss is the validation loss (mean cross-entropy per supervised token); in a job each
// rank measures every n-th sample and the sums are added up.
func (r *run) valLoss() (float64, error) {
	n, k := r.ranks(), r.rank()
	if n == 1 {
		return crossEntropy(r.env, r.tr, r.ds.Val)
	}
	var mine []*data.Sample
	for i := k; i < len(r.ds.Val); i += n {
		mine = append(mine, r.ds.Val[i])
	}
	sums := []float64{0, 0}
	for _, s := range mine {
		b, err := r.env.Pack([]*data.Sample{s})
		if err != nil {
			return 0, err
		}
		ce, err := r.tr.CrossEntropy(b)
		if err != nil {
			return 0, err
		}
		for _, x := range ce {
			sums[0] += float64(x)
		}
		sums[1] += float64(len(ce))
	}
	if err := r.dp.comm.AllreduceF64(sums); err != nil {
		return 0, err
	}
	if sums[1] == 0 {
		return 0, nil
	}
	return sums[0] / sums[1], nil
}

// syncStart makes every rank start where rank 0 starts: its step, AdamW step, adapter
// and moments (rank 0 alone reads a checkpoint), after checking that every rank has
// the same options and training samples.
func (r *run) syncStart() error {
	comm := r.dp.comm
	if comm.Size() == 1 {
		return nil
	}
	mine := append([]float64{float64(r.first), float64(r.tr.Opt.Step), float64(r.total)}, fingerprint(&r.c, r.digest)...)
	head := slices.Clone(mine)
	if !r.lead() {
		clear(head)
	}
	if err := comm.AllreduceF64(head); err != nil {
		return err
	}
	var err error
	if !slices.Equal(head[2:], mine[2:]) {
		err = fmt.Errorf("rank %d's options or training samples differ from rank 0's: every rank must be given the same options, data, images and template", comm.Rank())
	}
	if err := agree(comm, err); err != nil {
		return err
	}
	r.first, r.tr.Opt.Step = int(head[0]), int(head[1])
	r.sum.Resumed = r.first
	return broadcastTrainer(comm, r.tr)
}

// fingerprint identifies what every rank must agree on: the samples and the options
// that shape the run (not the ones a rank may choose for itself, such as threads), as
// 24-bit pieces of a SHA-256 (exact in a float64 sum).
func fingerprint(c *Config, digest string) []float64 {
	cc := *c
	cc.Threads, cc.CacheDir, cc.Backend, cc.Out = 0, "", "", ""
	js, _ := json.Marshal(cc)
	h := sha256.Sum256(append(js, digest...))
	out := make([]float64, 0, 10)
	for i := 0; i+3 <= len(h); i += 3 {
		out = append(out, float64(uint32(h[i])<<16|uint32(h[i+1])<<8|uint32(h[i+2])))
	}
	return out
}

// broadcastTrainer gives every rank rank 0's adapter and AdamW moments (a sum in which
// the other ranks add zeros).
func broadcastTrainer(comm Comm, tr *Trainer) error {
	opt := tr.Opt
	m, v := opt.Moments()
	var flat []float32
	for i, p := range opt.Params {
		flat = append(append(append(flat, p.F32()...), m[i]...), v[i]...)
	}
	if comm.Rank() != 0 {
		clear(flat)
	}
	if err := comm.AllreduceSum(flat); err != nil {
		return err
	}
	off := 0
	take := func(n int) []float32 { s := flat[off : off+n]; off += n; return s }
	for i, p := range opt.Params {
		n := p.NElements()
		p.SetF32(take(n))
		m[i], v[i] = take(n), take(n)
	}
	return opt.SetMoments(m, v)
}

// sameAdapter checks that every rank ends with rank 0's adapter (they take identical
// steps; a difference would mean an MPI library whose sums differ between ranks).
func (r *run) sameAdapter() error {
	comm := r.dp.comm
	if comm.Size() == 1 {
		return nil
	}
	h := fnv.New64a()
	for _, p := range r.tr.Opt.Params {
		binary.Write(h, binary.LittleEndian, p.F32())
	}
	x := h.Sum64()
	mine := []float64{float64(x >> 40), float64(x >> 20 & 0xfffff), float64(x & 0xfffff)}
	head := slices.Clone(mine)
	if !r.lead() {
		clear(head)
	}
	if err := comm.AllreduceF64(head); err != nil {
		return err
	}
	var err error
	if !slices.Equal(head, mine) {
		err = fmt.Errorf("rank %d's adapter differs from rank 0's after training (the MPI library's sums differ between ranks)", comm.Rank())
	}
	return agree(comm, err)
}

// agreeStop says whether the run stops after this step: when any rank was told to
// (a signal reaches the ranks at different moments).
func (r *run) agreeStop(stop bool) (bool, error) {
	if r.ranks() == 1 {
		return stop, nil
	}
	x := []float64{0}
	if stop {
		x[0] = 1
	}
	err := r.dp.comm.AllreduceF64(x)
	return x[0] > 0, err
}
