package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/internal/options"
	"github.com/calft/calft/internal/progress"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
)

// run is a training run in progress: what start sets up and Run's loop reads.
type run struct {
	c            Config
	log          io.Writer
	env          *Env
	ds           *Dataset
	tr           *Trainer
	first, total int // steps: the first this process takes, and the run's total
	metrics      *metricsFile
	progress     *progress.Reporter
	order        *epochOrder
	sum          *Summary
	digest       string // of the built samples, kept in checkpoints
	began        time.Time
	tokens       int // rows trained on by this process
	lock         *fsutil.Lock
	crashAt      int  // Options.CrashInCheckpoint
	madeOut      bool // start created the run folder (removed again if the run cannot start)
	dp           dataParallel
}

// start checks the options, loads the model and the data, builds the trainer, restores
// a checkpoint with --resume, and only then replaces an old run's files with
// --overwrite: a run that cannot start leaves the folder as it was. A dry run prints
// its samples and returns nil.
func start(ctx context.Context, c Config, o Options) (*run, error) {
	comm := o.Comm
	if comm == nil {
		comm = Single
	}
	if err := agree(comm, c.Validate()); err != nil {
		return nil, err
	}
	r := &run{c: c, log: o.Log, began: time.Now(), crashAt: o.CrashInCheckpoint, dp: dataParallel{comm: comm, fault: o.Fault}}
	if r.log == nil {
		r.log = io.Discard
	}
	ok := false
	defer func() {
		if !ok {
			r.close()
			r.removeEmptyOut()
		}
	}()
	if !c.DryRun {
		if err := agree(comm, r.claimOut()); err != nil {
			return nil, err
		}
	}
	if err := agree(comm, r.load(ctx)); err != nil || c.DryRun {
		return nil, err
	}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

// load opens the files, builds the dataset (or, for a dry run, shows it) and the trainer.
func (r *run) load(ctx context.Context) error {
	c := &r.c
	imageDir := c.ImageDir
	if imageDir == "" {
		imageDir = data.DefaultImageDir(c.Data)
	}
	var err error
	if r.env, err = OpenEnv(EnvOptions{Model: c.Model, Mmproj: c.Mmproj, Template: c.Template, ImageDir: imageDir,
		CacheDir: cacheDir(c.CacheDir), Threads: c.Threads, Backend: c.Backend, MaxRows: c.MaxRows,
		Widen: c.BackwardWeights == "autodiff"}); err != nil {
		return err
	}
	if r.ds, err = r.env.LoadDataset(ctx, c); err != nil {
		return err
	}
	for _, e := range r.ds.Skipped {
		fmt.Fprintf(r.log, "skipped: %v\n", e)
	}
	s, err := r.setup()
	if err != nil {
		return err
	}
	if c.DryRun {
		if err := dryRun(r.log, r.env, r.ds, c); err != nil {
			return err
		}
		s.PlanOnly = true
	}
	r.tr, err = NewTrainer(r.env.Backend, r.env.Model, s)
	if errors.Is(err, errInitAdapter) {
		return fmt.Errorf("--init-adapter %s: %w", c.InitAdapter, err)
	}
	if err == nil && c.DryRun {
		fmt.Fprintf(r.log, "%s\n", r.tr.Plan)
	}
	return err
}

// setup is the trainer's set-up for the run: its options, the initial adapter, and the
// largest micro-batch with the memory budget, so the trainer can plan its memory.
func (r *run) setup() (Setup, error) {
	c := &r.c
	s := Setup{Objective: c.objective(), CAL: c.Options, Dropout: c.Dropout, Seed: c.Seed,
		LoRA:            lora.Config{Rank: c.Rank, Alpha: float32(c.Alpha), Targets: c.Targets},
		BackwardWeights: c.BackwardWeights, ForwardWeights: c.ForwardWeights, NoImageWeights: c.NoImageWeights, Recompute: c.Recompute}
	var err error
	if c.InitAdapter != "" {
		hp := r.env.Model.HP
		if s.Init, err = lora.ReadAny(c.InitAdapter, lora.Base{Arch: hp.Arch, NHead: hp.NHead, NHeadKV: hp.NHeadKV}); err != nil {
			return s, err
		}
		if s.Init.Arch != r.env.Model.HP.Arch {
			return s, fmt.Errorf("--init-adapter %s is for %q, the model is %q", c.InitAdapter, s.Init.Arch, r.env.Model.HP.Arch)
		}
	}
	if s.Budget, s.BudgetName, err = MemoryBudget(c.MaxMemory); err != nil {
		return s, err
	}
	s.Largest = largestBatch(r.ds.Train, c.Batch, s.Objective)
	s.Other = baseOther + r.env.ProjectorBytes() + r.env.CacheBytes(r.ds.Train)
	return s, nil
}

// largestBatch is the shape of the largest micro-batch a run can take: its batch
// longest samples together (and most supervised tokens), as the trainer pads them.
func largestBatch(samples []*data.Sample, batch int, obj cal.Objective) Shape {
	bySize := slices.Clone(samples)
	slices.SortFunc(bySize, func(a, b *data.Sample) int { return len(b.Rows) - len(a.Rows) })
	b := &llava.Batch{}
	for _, s := range bySize[:min(batch, len(bySize))] {
		b.Seqs = append(b.Seqs, llava.Sequence{Tokens: s.Rows})
	}
	slices.SortFunc(bySize, func(a, b *data.Sample) int { return b.NTargets() - a.NTargets() })
	scored := 0
	for _, s := range bySize[:min(batch, len(bySize))] {
		scored += s.NTargets()
	}
	sh := Shape{Rows: roundUp(b.Rows(), rowBucket), Scored: roundUp(max(scored, 1), scoredBucket), Obj: obj, Backward: true}
	if obj == cal.CAL {
		sh.Hidden, sh.Kept = HiddenFor(b), KeptFor(b)
	}
	return sh
}

// prepare restores a checkpoint or starts the run's folder afresh, opens the metrics,
// and measures the validation loss before the first step.
func (r *run) prepare() error {
	c := &r.c
	perStep := c.Batch * c.Accum * r.ranks()
	r.total = c.Steps
	if r.total == 0 {
		r.total = (c.Epochs*len(r.ds.Train) + perStep - 1) / perStep
	}
	r.digest = r.ds.digest()
	r.order = &epochOrder{seed: c.Seed, n: len(r.ds.Train)}
	r.sum = &Summary{Samples: len(r.ds.Train), ValSamples: len(r.ds.Val), Skipped: len(r.ds.Skipped)}
	if err := agree(r.dp.comm, r.restore()); err != nil {
		return err
	}
	if err := r.syncStart(); err != nil {
		return err
	}
	fmt.Fprintln(r.log, r.tr)
	fmt.Fprintln(r.log, r.tr.Plan)
	if len(r.ds.Val) > 0 && r.first == 0 {
		v, err := r.valLoss()
		if err != nil {
			return err
		}
		r.sum.Val = append(r.sum.Val, ValPoint{0, v})
		fmt.Fprintf(r.log, "validation loss before training: %.4f\n", v)
	}
	r.progress = progress.New(r.logWriter(), r.total, "training")
	r.progress.Set(r.first, "")
	return nil
}

// restore continues from the newest checkpoint with --resume, or starts the run's
// folder afresh, and opens the metrics: rank 0's part of prepare (the others get its
// state from syncStart).
func (r *run) restore() error {
	if !r.lead() {
		return nil
	}
	c := &r.c
	var err error
	if c.Resume {
		if r.first, err = resume(c, r.tr, r.total, r.digest, r.ranks(), r.log); err != nil {
			return err
		}
		r.sum.Resumed = r.first
		fmt.Fprintf(r.log, "resuming at step %d of %d\n", r.first, r.total)
	} else if err := replaceOut(c); err != nil {
		return err
	}
	r.metrics, err = openMetrics(c.Out, r.first)
	return err
}

// logWriter is where progress goes: nowhere for a quiet run.
func (r *run) logWriter() io.Writer {
	if r.log == io.Discard {
		return nil
	}
	return r.log
}

// finish saves the last checkpoint, the adapter (and the merged model when asked) and
// the summary.
func (r *run) finish() (*Summary, error) {
	r.progress.Finish()
	sum := r.sum
	sum.Steps = r.total
	sum.Seconds = time.Since(r.began).Seconds()
	if sum.Seconds > 0 {
		sum.TokensPerSec = float64(r.tokens) / sum.Seconds
	}
	if r.ranks() > 1 {
		sum.Ranks = r.ranks()
	}
	sum.Backend = r.env.Backend.Describe()
	if placed := r.env.Backend.Placed(); len(placed) > 0 {
		sum.NodesOn = placed
	}
	sum.Adapter = filepath.Join(r.c.Out, "adapter.gguf")
	if err := r.sameAdapter(); err != nil {
		return nil, err
	}
	if err := agree(r.dp.comm, r.writeEnd()); err != nil {
		return nil, err
	}
	return sum, nil
}

// writeEnd writes finish's files (rank 0).
func (r *run) writeEnd() error {
	if !r.lead() {
		return nil
	}
	c, sum := &r.c, r.sum
	if _, err := saveCheckpoint(c.Out, r.env.Model.HP.Arch, r.tr.Adapter, r.tr.Opt, r.state(r.total), r.crashHook(r.total)); err != nil {
		return err
	}
	host := r.tr.Adapter.ToHost(r.env.Model.HP.Arch)
	if err := host.Save(sum.Adapter, gguf.F32); err != nil {
		return err
	}
	if c.Merge {
		sum.Merged = filepath.Join(c.Out, "merged.gguf")
		if err := lora.Merge(c.Model, host, sum.Merged, lora.MergeOptions{KeepType: true}); err != nil {
			return err
		}
	}
	js, _ := json.MarshalIndent(sum, "", "  ")
	return fsutil.WriteFileAtomic(filepath.Join(c.Out, "summary.json"), js)
}

func (r *run) close() {
	defer r.lock.Unlock()
	if r.metrics != nil {
		r.metrics.Close()
	}
	if r.tr != nil {
		r.tr.Close()
	}
	if r.env != nil {
		r.env.Close()
	}
}

// cacheDir is where image embeddings are kept: the option's folder, "none" for memory
// only, or the user's cache folder so that later runs reuse them.
func cacheDir(opt string) string {
	switch opt {
	case "none":
		return ""
	case "":
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "calft", "embeddings")
		}
		return ""
	}
	return opt
}

// claimOut locks the run folder (two runs writing one folder would interleave their
// files), clears what a killed run left half-written, and checks that the folder may be
// used as asked. Nothing of an earlier run is changed yet.
func (r *run) claimOut() error {
	if !r.lead() {
		return nil // rank 0 alone writes into --out
	}
	c := &r.c
	if err := fsutil.CheckDirWritable("--out", c.Out); err != nil {
		return err
	}
	if _, err := os.Stat(c.Out); errors.Is(err, os.ErrNotExist) {
		r.madeOut = true
	}
	var err error
	if r.lock, err = fsutil.LockDir(c.Out); err != nil {
		return fmt.Errorf("--out %w", err)
	}
	if n := sweepCheckpoints(c.Out); n > 0 {
		fmt.Fprintf(r.log, "removed %d unfinished checkpoint(s) that a killed run left in %s\n", n, checkpointRoot(c.Out))
	}
	if c.Resume {
		if st, err := finished(c.Out); err == nil && st != nil {
			return fmt.Errorf("%w: %s finished all %d steps already; its adapter is %s (nothing was changed)",
				ErrFinished, c.Out, st.Total, filepath.Join(c.Out, "adapter.gguf"))
		}
	}
	return checkOut(c)
}

// removeEmptyOut removes the run folder when start created it and the run could not
// start: it holds nothing but the lock.
func (r *run) removeEmptyOut() {
	if !r.madeOut {
		return
	}
	entries, err := os.ReadDir(r.c.Out)
	if err == nil && len(entries) == 1 && entries[0].Name() == fsutil.LockFile {
		os.RemoveAll(r.c.Out)
	}
}

// runFiles are the files a run writes into its folder.
var runFiles = []string{checkpointsDir, "adapter.gguf", "metrics.jsonl", "summary.json", "merged.gguf", "config.json"}

// checkOut refuses to start over a run's outputs unless told to, without changing
// anything yet.
func checkOut(c *Config) error {
	has := func(name string) bool {
		_, err := os.Stat(filepath.Join(c.Out, name))
		return err == nil
	}
	existing := has(checkpointsDir) || has("adapter.gguf") || has("metrics.jsonl")
	switch {
	case c.Resume && !has(checkpointsDir) && !has("config.json"):
		return fmt.Errorf("%s holds no run to resume; drop --resume to start a new one", c.Out)
	case !c.Resume && existing && !c.Overwrite:
		return fmt.Errorf("%s already holds a run (checkpoints, adapter or metrics); use --resume to continue it, --overwrite to replace it, or another --out", c.Out)
	}
	// A run replaces its folder's files: none of them may be one of its inputs.
	for _, in := range []fsutil.Path{{Flag: "--model", Path: c.Model}, {Flag: "--mmproj", Path: c.Mmproj}, {Flag: "--data", Path: c.Data},
		{Flag: "--val-data", Path: c.ValData}, {Flag: "--init-adapter", Path: c.InitAdapter}} {
		if in.Path == "" {
			continue
		}
		for _, f := range runFiles {
			if p := filepath.Join(c.Out, f); fsutil.SameFile(in.Path, p) || strings.HasPrefix(absPath(in.Path), absPath(p)+string(filepath.Separator)) {
				return fmt.Errorf("%s %s is a file the run writes in --out %s; copy it elsewhere or choose another --out", in.Flag, in.Path, c.Out)
			}
		}
	}
	return nil
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// replaceOut starts a new run's folder: an old run's files go (with --overwrite, which
// checkOut required), and config.json records the options.
func replaceOut(c *Config) error {
	for _, n := range runFiles {
		if err := os.RemoveAll(filepath.Join(c.Out, n)); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(c.Out, "config.json"), js)
}

// resume restores the newest good checkpoint into the trainer and returns the step to
// continue from. A damaged or truncated checkpoint (its checksums, or its contents) is
// passed over for the one before, with a warning. Every option must match the
// checkpoint's but those declared free to change (threads, how often to save, …);
// files are compared as files.
func resume(c *Config, tr *Trainer, total int, digest string, ranks int, log io.Writer) (int, error) {
	var problems []string
	for _, dir := range checkpointCandidates(c.Out) {
		st, h, m, v, err := loadCheckpoint(dir)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if len(problems) > 0 {
			fmt.Fprintf(log, "warning: %s\nresuming from the checkpoint before it, %s\n", strings.Join(problems, "\n"), dir)
		}
		if err := matchCheckpoint(dir, st, c, total, digest, ranks); err != nil {
			return 0, err
		}
		if err := tr.Adapter.FromHost(h); err != nil {
			return 0, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		if err := tr.Opt.SetMoments(m, v); err != nil {
			return 0, fmt.Errorf("checkpoint %s: %w", dir, err)
		}
		tr.Opt.Step = st.OptStep
		return st.Step, nil
	}
	if len(problems) == 0 {
		// Stopped before its first checkpoint: there is nothing to lose by starting over.
		fmt.Fprintf(log, "%s has no complete checkpoint yet (the run stopped before its first); starting from step 0\n", c.Out)
		return 0, nil
	}
	return 0, fmt.Errorf("no usable checkpoint in %s:\n  %s\nstart the run again (--overwrite), or restore the folder from a copy",
		checkpointRoot(c.Out), strings.Join(problems, "\n  "))
}

// matchCheckpoint refuses to resume a checkpoint of a run configured differently.
func matchCheckpoint(dir string, st *checkpointState, c *Config, total int, digest string, ranks int) error {
	if was := max(st.Ranks, 1); was != ranks {
		return fmt.Errorf("cannot resume %s: it was written by a run of %d process(es) (MPI ranks), this one has %d; resume it with %d (mpirun -np %d), since the count fixes the global batch and the data order",
			dir, was, ranks, was, was)
	}
	for _, o := range []*string{&st.Config.BackwardWeights, &st.Config.ForwardWeights, &st.Config.NoImageWeights} {
		if *o == "" { // a checkpoint from before these options
			*o = "auto"
		}
	}
	if diffs := options.Diff(&st.Config, c); len(diffs) > 0 {
		return fmt.Errorf("cannot resume %s with a different configuration:\n  %s", dir, strings.Join(diffs, "\n  "))
	}
	if st.Total != total {
		return fmt.Errorf("cannot resume %s: it was a run of %d steps, this one has %d (did the data change?)", dir, st.Total, total)
	}
	if st.DataDigest != digest {
		return fmt.Errorf("cannot resume %s: the training samples differ from the checkpoint's (the data, images or template changed)", dir)
	}
	return nil
}

func dryRun(w io.Writer, env *Env, ds *Dataset, c *Config) error {
	rows, targets, images := 0, 0, 0
	for _, s := range ds.Train {
		rows += len(s.Rows)
		targets += s.NTargets()
		images += len(s.Images)
	}
	fmt.Fprintf(w, "dataset %s: %d training samples, %d validation, %d skipped; %d rows, %d supervised tokens, %d images\n",
		c.Data, len(ds.Train), len(ds.Val), len(ds.Skipped), rows, targets, images)
	fmt.Fprintf(w, "supervised tokens are shown in [[ ]]\n\n")
	for i, s := range ds.Train {
		if i == 2 {
			break
		}
		if err := Inspect(w, env, s); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}
