package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/calft/calft/audit"
	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/infer"
	"github.com/calft/calft/tiny"
	"github.com/calft/calft/train"
)

// Options size the demo. Quick is the one-minute version the tests run.
type Options struct {
	Out       string
	Seeds     int
	Quick     bool
	Threads   int
	Backend   string  // cpu (""), cuda, vulkan, metal, blas or auto
	TrainN    int     // training samples
	HeldN     int     // held-out samples (clean captions, never trained on)
	Noise     float64 // fraction of training captions with a wrong colour
	WarmSteps int     // shared ce warm-up: CAL equals ce until the model reads the image
	Steps     int     // steps of each objective after the warm-up
	Batch     int
	LR        float64
	Rank      int
}

// validate refuses sizes the demo cannot run with.
func (o *Options) validate() error {
	switch {
	case o.Seeds < 1 || o.TrainN < 8 || o.HeldN < 1 || o.Batch < 1 || o.Rank < 1 || o.WarmSteps < 0 || o.Steps < 1:
		return fmt.Errorf("demo: seeds, steps, batch and rank must be at least 1, training samples at least 8, warm-up steps not negative (got %d seeds, %d steps, batch %d, rank %d, %d samples, %d warm-up)",
			o.Seeds, o.Steps, o.Batch, o.Rank, o.TrainN, o.WarmSteps)
	case !(o.Noise >= 0 && o.Noise < 1):
		return fmt.Errorf("demo: --noise %v is the fraction of captions with a wrong colour: use a number in [0, 1)", o.Noise)
	case !(o.LR > 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("demo: --lr %v must be a positive number", o.LR)
	}
	return ggml.CheckThreads(o.Threads)
}

// DefaultOptions are the full demo (≈ minutes on 2 cores) or the quick one.
func DefaultOptions(quick bool) Options {
	o := Options{Out: "out/demo", Backend: "cpu", Seeds: 3, TrainN: 240, HeldN: 48, Noise: 0.3,
		WarmSteps: 600, Steps: 200, Batch: 8, LR: 5e-3, Rank: 16}
	if quick {
		o.Quick, o.Seeds, o.HeldN, o.WarmSteps, o.Steps = true, 2, 24, 350, 80
	}
	return o
}

// Result is one trained adapter's evaluation on the held-out images.
type Result struct {
	Objective string
	Seed      int
	Adapter   string
	ColorAcc  float64 // greedy answers naming the image's colour
	ShapeAcc  float64
	PosAcc    float64
	ColorProb float64 // mean probability of the true colour word after "a"
	ValLoss   float64 // mean CE per answer token on the held-out set
	Curve     []float64
	Answers   []string
}

// Report is everything the demo measured.
type Report struct {
	Opt      Options
	Results  []Result
	Held     []item
	HeldDir  string
	Seconds  float64
	Model    string
	Mmproj   string
	ScoreOut string
	Audits   []AuditResult // calft audit with each seed's warm-up adapter
}

// Run builds the model and task, trains both objectives per seed through train.Run,
// and evaluates them through libllama, the way a user would.
func Run(ctx context.Context, o Options, log io.Writer) (*Report, error) {
	began := time.Now()
	if log == nil {
		log = io.Discard
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	modelDir := filepath.Join(o.Out, "model")
	if err := tiny.GenerateWith(modelDir, tiny.Options{Seed: 1, Samples: 4}); err != nil {
		return nil, err
	}
	rep := &Report{Opt: o, Model: filepath.Join(modelDir, tiny.BaseFile), Mmproj: filepath.Join(modelDir, tiny.MmprojFile)}
	trainDir, heldDir := filepath.Join(o.Out, "task", "train"), filepath.Join(o.Out, "task", "heldout")
	trainItems := makeItems(rand.New(rand.NewPCG(100, 1)), o.TrainN, o.Noise)
	rep.Held = makeItems(rand.New(rand.NewPCG(200, 2)), o.HeldN, 0)
	rep.HeldDir = heldDir
	if err := writeItems(trainDir, "train", trainItems); err != nil {
		return nil, err
	}
	if err := writeTruth(trainDir, trainItems); err != nil {
		return nil, err
	}
	if err := writeItems(heldDir, "heldout", rep.Held); err != nil {
		return nil, err
	}
	noisy := 0
	for _, it := range trainItems {
		if it.Noisy {
			noisy++
		}
	}
	fmt.Fprintf(log, "task: %d training captions (%d with a wrong colour), %d held-out images; %d seeds × (ce warm-up %d steps, then ce or cal %d steps)\n",
		len(trainItems), noisy, len(rep.Held), o.Seeds, o.WarmSteps, o.Steps)

	base := train.Defaults()
	base.Model, base.Mmproj = rep.Model, rep.Mmproj
	base.Data, base.ValData = filepath.Join(trainDir, "data.json"), filepath.Join(heldDir, "data.json")
	base.Batch, base.LR, base.Rank, base.Alpha = o.Batch, o.LR, o.Rank, float64(2*o.Rank)
	base.Threads, base.Backend, base.CacheDir, base.SaveEvery, base.Overwrite = o.Threads, o.Backend, "none", 0, true
	base.Warmup, base.Schedule = 10, "cosine"
	for seed := 1; seed <= o.Seeds; seed++ {
		runDir := filepath.Join(o.Out, "runs", fmt.Sprintf("seed%d", seed))
		warm := base
		warm.Objective, warm.Steps, warm.Seed, warm.Out = "ce", o.WarmSteps, uint64(seed), filepath.Join(runDir, "warmup")
		if _, err := train.Run(ctx, warm, train.Options{}); err != nil {
			return nil, fmt.Errorf("seed %d warm-up: %w", seed, err)
		}
		warmCurve, err := readCurve(warm.Out)
		if err != nil {
			return nil, err
		}
		ar, err := auditSeed(ctx, rep, seed, filepath.Join(warm.Out, "adapter.gguf"), trainItems)
		if err != nil {
			return nil, err
		}
		rep.Audits = append(rep.Audits, ar)
		fmt.Fprintf(log, "  seed %d audit: AUROC %.3f, precision %.2f at the %d corrupted; %d flagged at %g, %.1f%% of the held-out\n",
			seed, ar.AUROC, ar.PrecAtK, ar.K, ar.Flagged, audit.DefaultThreshold, 100*ar.HeldRate)
		// ce-clean: ce on the training data without the captions the audit flagged.
		for _, obj := range []string{"ce", "cal", "ce-clean"} {
			c := base
			c.Objective, c.Steps, c.Seed = strings.TrimSuffix(obj, "-clean"), o.Steps, uint64(seed)
			if obj == "ce-clean" {
				c.Data = ar.Clean
			}
			c.Warmup = 0
			c.Out = filepath.Join(runDir, obj)
			c.InitAdapter = filepath.Join(warm.Out, "adapter.gguf")
			sum, err := train.Run(ctx, c, train.Options{})
			if err != nil {
				return nil, fmt.Errorf("seed %d %s: %w", seed, obj, err)
			}
			curve, err := readCurve(c.Out)
			if err != nil {
				return nil, err
			}
			rep.Results = append(rep.Results, Result{Objective: obj, Seed: seed, Adapter: sum.Adapter,
				ValLoss: sum.Val[len(sum.Val)-1].Loss, Curve: append(append([]float64(nil), warmCurve...), curve...)})
			fmt.Fprintf(log, "  seed %d %-8s: held-out loss %.4f (%.1fs)\n", seed, obj, sum.Val[len(sum.Val)-1].Loss, sum.Seconds)
		}
	}
	if err := evaluate(rep, o.Threads); err != nil {
		return nil, err
	}
	rep.Seconds = time.Since(began).Seconds()
	return rep, nil
}

// readCurve returns the training loss of every step of a run.
func readCurve(out string) ([]float64, error) {
	f, err := os.Open(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var curve []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m train.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, err
		}
		curve = append(curve, m.Loss)
	}
	return curve, sc.Err()
}

// evaluate answers every held-out image with every adapter through libllama.
func evaluate(rep *Report, threads int) error {
	s, err := infer.NewSession(rep.Model, rep.Mmproj, 128, threads)
	if err != nil {
		return err
	}
	defer s.Close()
	colorTok := map[tiny.Color]int32{}
	for _, c := range sampler.Colors {
		// The colour word as it follows "a" in an answer.
		toks, err := s.Model().Tokenize("a "+c.String(), false, true)
		if err != nil || len(toks) != 2 {
			return fmt.Errorf("colour %q does not tokenize as one word after \"a\": %v %v", c, toks, err)
		}
		colorTok[c] = toks[1]
	}
	images := make([]*imageio.RGB, len(rep.Held))
	for i := range rep.Held {
		if images[i], err = imageio.Load(imagePath(rep.HeldDir, i)); err != nil {
			return err
		}
	}
	for ri := range rep.Results {
		r := &rep.Results[ri]
		if err := s.UseAdapter(r.Adapter); err != nil {
			return err
		}
		var col, shp, pos, prob float64
		for i, it := range rep.Held {
			ans, err := s.Answer(images[i], question, 12)
			if err != nil {
				return err
			}
			r.Answers = append(r.Answers, strings.TrimSpace(ans))
			words := strings.Fields(strings.Trim(strings.ToLower(ans), " ."))
			has := func(w string) bool {
				for _, x := range words {
					if strings.Trim(x, ".") == w {
						return true
					}
				}
				return false
			}
			if has(it.Scene.Color.String()) {
				col++
			}
			if has(it.Scene.Shape.String()) {
				shp++
			}
			if has(it.Scene.Position.String()) {
				pos++
			}
			p, err := s.NextProbs(images[i], question, "a")
			if err != nil {
				return err
			}
			prob += p[colorTok[it.Scene.Color]]
		}
		n := float64(len(rep.Held))
		r.ColorAcc, r.ShapeAcc, r.PosAcc, r.ColorProb = col/n, shp/n, pos/n, prob/n
	}
	return nil
}

// meanStd summarises one measure of one objective over seeds.
func meanStd(rs []Result, obj string, f func(Result) float64) (float64, float64) {
	var xs []float64
	for _, r := range rs {
		if r.Objective == obj {
			xs = append(xs, f(r))
		}
	}
	var m float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	if len(xs) > 1 {
		v /= float64(len(xs) - 1)
	}
	return m, math.Sqrt(v)
}
