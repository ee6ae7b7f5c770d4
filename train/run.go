package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
)

// ErrInterrupted is returned when a run stopped on a signal after saving a checkpoint.
var ErrInterrupted = errors.New("interrupted")

// Metrics is one line of OUT/metrics.jsonl.
type Metrics struct {
	Step         int      `json:"step"`
	Epoch        float64  `json:"epoch"`
	LR           float64  `json:"lr"`
	Loss         float64  `json:"loss"`
	CALWeight    float64  `json:"cal_weight_mean"`
	GradNorm     float64  `json:"grad_norm"`
	TokensPerSec float64  `json:"tokens_per_s"`
	ValLoss      *float64 `json:"val_loss,omitempty"`
}

// ValPoint is a validation loss measured after Step optimizer steps.
type ValPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// Summary is what a finished run reports (also written to OUT/summary.json).
type Summary struct {
	Steps        int        `json:"steps"`
	Samples      int        `json:"train_samples"`
	ValSamples   int        `json:"val_samples"`
	Skipped      int        `json:"skipped_samples"`
	FirstLoss    float64    `json:"first_loss"`
	LastLoss     float64    `json:"last_loss"`
	Val          []ValPoint `json:"val_loss"`
	Adapter      string     `json:"adapter"`
	Merged       string     `json:"merged,omitempty"`
	Seconds      float64    `json:"seconds"`
	TokensPerSec float64    `json:"tokens_per_s"`
	Resumed      int        `json:"resumed_from_step"`
}

// Options are the run's ways of talking to a person and hooks for tests.
type Options struct {
	Log       io.Writer // progress bar and messages; nil: quiet
	StopAfter int       // act as if interrupted after this step (tests); 0: never
}

// Run trains a LoRA adapter as configured. It returns ErrInterrupted (wrapped) when ctx
// is cancelled, after saving a checkpoint that --resume continues from.
func Run(ctx context.Context, c Config, o Options) (*Summary, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	obj, _ := cal.ParseObjective(c.Objective)
	if !c.DryRun {
		if err := prepareOut(&c); err != nil {
			return nil, err
		}
	}
	imageDir := c.ImageDir
	if imageDir == "" {
		imageDir = data.DefaultImageDir(c.Data)
	}
	env, err := OpenEnv(EnvOptions{Model: c.Model, Mmproj: c.Mmproj, Template: c.Template, ImageDir: imageDir,
		CacheDir: cacheDir(c), Threads: c.Threads, Backend: c.Backend, MaxRows: c.MaxRows})
	if err != nil {
		return nil, err
	}
	defer env.Close()
	ds, err := env.LoadDataset(&c)
	if err != nil {
		return nil, err
	}
	for _, e := range ds.Skipped {
		fmt.Fprintf(log, "skipped: %v\n", e)
	}
	if c.DryRun {
		return nil, dryRun(log, env, ds, &c)
	}
	sum := &Summary{Samples: len(ds.Train), ValSamples: len(ds.Val), Skipped: len(ds.Skipped)}

	ad, err := lora.New(env.Backend, &env.Model.W, lora.Config{Rank: c.Rank, Alpha: float32(c.Alpha), Targets: c.Targets})
	if err != nil {
		return nil, err
	}
	defer ad.Close()
	ad.InitStandard(c.Seed)
	if c.InitAdapter != "" {
		h, err := lora.Read(c.InitAdapter)
		if err != nil {
			return nil, err
		}
		if h.Arch != env.Model.HP.Arch {
			return nil, fmt.Errorf("--init-adapter %s is for %q, the model is %q", c.InitAdapter, h.Arch, env.Model.HP.Arch)
		}
		if err := ad.FromHost(h); err != nil {
			return nil, fmt.Errorf("--init-adapter %s does not fit this run's rank and targets: %w", c.InitAdapter, err)
		}
	}
	if err := ad.EnableDropout(env.Backend, float32(c.Dropout), c.Seed); err != nil {
		return nil, err
	}
	params := ad.Params()
	for _, p := range params {
		p.SetParam()
	}
	opt, err := NewOptimizer(env.Backend, params)
	if err != nil {
		return nil, err
	}
	defer opt.Close()

	total := c.Steps
	perStep := c.Batch * c.Accum
	if total == 0 {
		total = (c.Epochs*len(ds.Train) + perStep - 1) / perStep
	}
	start := 0
	if c.Resume {
		if start, err = resume(&c, ad, opt, total, ds.digest()); err != nil {
			return nil, err
		}
		sum.Resumed = start
		fmt.Fprintf(log, "resuming at step %d of %d\n", start, total)
	}
	metrics, err := openMetrics(c.Out, start)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()

	fast, err := NewFastWeights(env.Backend, env.Model, c.BackwardWeights, c.NoImageWeights, obj == cal.CAL)
	if err != nil {
		return nil, err
	}
	defer fast.Close()
	fmt.Fprintln(log, fast)
	r := &runner{env: env, dec: &llava.Decoder{HP: env.Model.HP, W: &env.Model.W, Adapter: ad}, opt: opt,
		calOpt: c.CALOptions(), dropout: c.Dropout > 0, graphs: map[Shape]*StepGraph{}}
	fast.Apply(r.dec)
	defer r.close()
	if len(ds.Val) > 0 && start == 0 {
		v, err := r.valLoss(ds.Val)
		if err != nil {
			return nil, err
		}
		sum.Val = append(sum.Val, ValPoint{0, v})
		fmt.Fprintf(log, "validation loss before training: %.4f\n", v)
	}
	var bar *progressbar.ProgressBar
	if o.Log != nil {
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(log), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(24), progressbar.OptionClearOnFinish())
		_ = bar.Set(start)
	}
	adamw := AdamW{Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay}
	began := time.Now()
	var tokensAll int
	digest := ds.digest()
	state := func(step int) checkpointState {
		return checkpointState{Step: step, OptStep: opt.Step, Total: total, Config: c, DataDigest: digest}
	}
	orderEpoch, perm := -1, []int(nil) // the current epoch's sample order
	for step := start; step < total; step++ {
		t0 := time.Now()
		opt.ZeroGrad()
		var lossSum, wSum float64
		var wN, tokens int
		for micro := 0; micro < c.Accum; micro++ {
			cursor := (step*c.Accum + micro) * c.Batch
			var picked []*data.Sample
			for k := 0; k < c.Batch; k++ {
				n := len(ds.Train)
				idx := cursor + k
				if idx/n != orderEpoch {
					orderEpoch, perm = idx/n, order(c.Seed, idx/n, n)
				}
				picked = append(picked, ds.Train[perm[idx%n]])
			}
			l, w, rows, err := r.step(obj, picked, c.Seed^uint64(step*c.Accum+micro+1)*0x9e3779b97f4a7c15)
			if err != nil {
				return nil, err
			}
			if math.IsNaN(l) || math.IsInf(l, 0) {
				return nil, fmt.Errorf("step %d: the loss is %v; training stopped, the last good checkpoint is kept in %s (lower --lr, or check the data)",
					step+1, l, checkpointRoot(c.Out))
			}
			lossSum += l
			for _, x := range w {
				wSum += float64(x)
			}
			wN += len(w)
			tokens += rows
		}
		lr := c.LRAt(step, total)
		adamw.LR = lr
		norm, err := opt.Update(adamw, c.Accum, c.Clip)
		if err != nil {
			return nil, fmt.Errorf("step %d: %v; training stopped, the last good checkpoint is kept in %s (lower --lr, or check the data)",
				step+1, err, checkpointRoot(c.Out))
		}
		tokensAll += tokens
		m := Metrics{Step: step + 1, Epoch: float64((step+1)*perStep) / float64(len(ds.Train)), LR: lr,
			Loss: lossSum / float64(c.Accum), GradNorm: norm, TokensPerSec: float64(tokens) / time.Since(t0).Seconds()}
		if wN > 0 {
			m.CALWeight = wSum / float64(wN)
		}
		if step == start {
			sum.FirstLoss = m.Loss
		}
		sum.LastLoss = m.Loss
		if len(ds.Val) > 0 && ((c.ValEvery > 0 && (step+1)%c.ValEvery == 0) || step+1 == total) {
			v, err := r.valLoss(ds.Val)
			if err != nil {
				return nil, err
			}
			m.ValLoss = &v
			sum.Val = append(sum.Val, ValPoint{step + 1, v})
		}
		if err := metrics.write(m); err != nil {
			return nil, err
		}
		if bar != nil {
			bar.Describe(fmt.Sprintf("loss %.4f | %.0f tok/s", m.Loss, m.TokensPerSec))
			_ = bar.Add(1)
		}
		stopped := ctx.Err() != nil || (o.StopAfter > 0 && step+1 == o.StopAfter)
		if stopped || (c.SaveEvery > 0 && (step+1)%c.SaveEvery == 0 && step+1 < total) {
			dir, err := saveCheckpoint(c.Out, env.Model.HP.Arch, ad, opt, state(step+1))
			if err != nil {
				return nil, err
			}
			if stopped {
				fmt.Fprintf(log, "\nstopped after step %d; checkpoint %s; continue with --resume\n", step+1, dir)
				return sum, fmt.Errorf("%w after step %d of %d (checkpoint %s; continue with --resume)", ErrInterrupted, step+1, total, dir)
			}
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	sum.Steps = total
	sum.Seconds = time.Since(began).Seconds()
	if sum.Seconds > 0 {
		sum.TokensPerSec = float64(tokensAll) / sum.Seconds
	}
	if _, err := saveCheckpoint(c.Out, env.Model.HP.Arch, ad, opt, state(total)); err != nil {
		return nil, err
	}
	sum.Adapter = filepath.Join(c.Out, "adapter.gguf")
	host := ad.ToHost(env.Model.HP.Arch)
	if err := host.Save(sum.Adapter, gguf.F32); err != nil {
		return nil, err
	}
	if c.Merge {
		sum.Merged = filepath.Join(c.Out, "merged.gguf")
		if err := lora.Merge(c.Model, host, sum.Merged, lora.MergeOptions{KeepType: true}); err != nil {
			return nil, err
		}
	}
	js, _ := json.MarshalIndent(sum, "", "  ")
	if err := fsutil.WriteFileAtomic(filepath.Join(c.Out, "summary.json"), js); err != nil {
		return nil, err
	}
	return sum, nil
}

// cacheDir is where image embeddings are kept: --cache-dir, "none" for memory only, or
// the user's cache folder so that later runs reuse them.
func cacheDir(c Config) string {
	switch c.CacheDir {
	case "none":
		return ""
	case "":
		if d, err := os.UserCacheDir(); err == nil {
			return filepath.Join(d, "calft", "embeddings")
		}
		return ""
	}
	return c.CacheDir
}

// prepareOut refuses to write over a run's outputs unless told to.
func prepareOut(c *Config) error {
	has := func(name string) bool {
		_, err := os.Stat(filepath.Join(c.Out, name))
		return err == nil
	}
	existing := has(checkpointsDir) || has("adapter.gguf") || has("metrics.jsonl")
	switch {
	case c.Resume:
		if !has(checkpointsDir) {
			return fmt.Errorf("%s holds no checkpoint to resume from; drop --resume to start a new run", c.Out)
		}
	case existing && !c.Overwrite:
		return fmt.Errorf("%s already holds a run (checkpoints, adapter or metrics); use --resume to continue it, --overwrite to replace it, or another --out", c.Out)
	case existing:
		for _, n := range []string{checkpointsDir, "adapter.gguf", "metrics.jsonl", "summary.json", "merged.gguf", "config.json"} {
			if err := os.RemoveAll(filepath.Join(c.Out, n)); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(c, "", "  ")
	return fsutil.WriteFileAtomic(filepath.Join(c.Out, "config.json"), js)
}

// resume restores the newest checkpoint and returns the step to continue from.
func resume(c *Config, ad *lora.Adapter, opt *Optimizer, total int, digest string) (int, error) {
	dir, err := latestCheckpoint(c.Out)
	if err != nil {
		return 0, err
	}
	if dir == "" {
		return 0, fmt.Errorf("%s: no complete checkpoint to resume from", c.Out)
	}
	st, h, m, v, err := loadCheckpoint(dir)
	if err != nil {
		return 0, err
	}
	// Options that change what the remaining steps compute must match; threads, logging
	// and how often to save may change.
	var diffs []string
	a, b := st.Config, *c
	for _, o := range []*string{&a.BackwardWeights, &a.NoImageWeights} {
		if *o == "" { // a checkpoint from before these options
			*o = "auto"
		}
	}
	for _, p := range []struct {
		name string
		x, y any
	}{
		{"model", a.Model, b.Model}, {"mmproj", a.Mmproj, b.Mmproj}, {"data", a.Data, b.Data}, {"val-data", a.ValData, b.ValData},
		{"val-split", a.ValSplit, b.ValSplit}, {"objective", a.Objective, b.Objective}, {"cal-lo", a.CALLo, b.CALLo},
		{"cal-hi", a.CALHi, b.CALHi}, {"cal-window", a.CALWindow, b.CALWindow}, {"cal-smooth", a.CALSmooth, b.CALSmooth},
		{"init-adapter", a.InitAdapter, b.InitAdapter}, {"rank", a.Rank, b.Rank}, {"dropout", a.Dropout, b.Dropout}, {"alpha", a.Alpha, b.Alpha}, {"targets", a.Targets, b.Targets}, {"steps", a.Steps, b.Steps},
		{"epochs", a.Epochs, b.Epochs}, {"batch", a.Batch, b.Batch}, {"accum", a.Accum, b.Accum}, {"lr", a.LR, b.LR},
		{"beta1", a.Beta1, b.Beta1}, {"beta2", a.Beta2, b.Beta2}, {"eps", a.Eps, b.Eps}, {"weight-decay", a.WeightDecay, b.WeightDecay},
		{"warmup", a.Warmup, b.Warmup}, {"schedule", a.Schedule, b.Schedule}, {"clip", a.Clip, b.Clip}, {"seed", a.Seed, b.Seed},
		{"template", a.Template, b.Template}, {"max-rows", a.MaxRows, b.MaxRows}, {"on-error", a.OnError, b.OnError},
		{"image-dir", a.ImageDir, b.ImageDir},
		// The copies round differently (BF16 gradients, Q8_0 Δ): the adapter would differ.
		{"backward-weights", a.BackwardWeights, b.BackwardWeights}, {"no-image-weights", a.NoImageWeights, b.NoImageWeights},
	} {
		if !reflect.DeepEqual(p.x, p.y) {
			diffs = append(diffs, fmt.Sprintf("%s: checkpoint %v, now %v", p.name, p.x, p.y))
		}
	}
	if len(diffs) > 0 {
		return 0, fmt.Errorf("cannot resume %s with a different configuration:\n  %s", dir, strings.Join(diffs, "\n  "))
	}
	if st.Total != total {
		return 0, fmt.Errorf("cannot resume %s: it was a run of %d steps, this one has %d (did the data change?)", dir, st.Total, total)
	}
	if st.DataDigest != digest {
		return 0, fmt.Errorf("cannot resume %s: the training samples differ from the checkpoint's (the data, images or template changed)", dir)
	}
	if err := ad.FromHost(h); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if err := opt.SetMoments(m, v); err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	opt.Step = st.OptStep
	return st.Step, nil
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
