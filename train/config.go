package train

import (
	"fmt"
	"strings"

	"github.com/calft/calft/cal"
)

// Config is every option of a training run. Field tags are the flag and YAML names.
type Config struct {
	Model    string  `mapstructure:"model" json:"model"`
	Mmproj   string  `mapstructure:"mmproj" json:"mmproj"`
	Data     string  `mapstructure:"data" json:"data"`
	ImageDir string  `mapstructure:"image-dir" json:"image_dir"`
	ValData  string  `mapstructure:"val-data" json:"val_data"`
	ValSplit float64 `mapstructure:"val-split" json:"val_split"`
	Out      string  `mapstructure:"out" json:"out"`
	Template string  `mapstructure:"template" json:"template"`
	CacheDir string  `mapstructure:"cache-dir" json:"cache_dir"`
	OnError  string  `mapstructure:"on-error" json:"on_error"` // skip | fail

	Objective string  `mapstructure:"objective" json:"objective"`
	CALLo     float64 `mapstructure:"cal-lo" json:"cal_lo"`
	CALHi     float64 `mapstructure:"cal-hi" json:"cal_hi"`
	CALWindow int     `mapstructure:"cal-window" json:"cal_window"`
	CALSmooth bool    `mapstructure:"cal-smooth" json:"cal_smooth"`

	InitAdapter string   `mapstructure:"init-adapter" json:"init_adapter"` // start from this adapter instead of a fresh one
	Rank        int      `mapstructure:"rank" json:"rank"`
	Alpha       float64  `mapstructure:"alpha" json:"alpha"`
	Targets     []string `mapstructure:"targets" json:"targets"`
	Dropout     float64  `mapstructure:"dropout" json:"dropout"`

	Steps       int     `mapstructure:"steps" json:"steps"`
	Epochs      int     `mapstructure:"epochs" json:"epochs"`
	Batch       int     `mapstructure:"batch" json:"batch"`
	Accum       int     `mapstructure:"accum" json:"accum"`
	LR          float64 `mapstructure:"lr" json:"lr"`
	Beta1       float64 `mapstructure:"beta1" json:"beta1"`
	Beta2       float64 `mapstructure:"beta2" json:"beta2"`
	Eps         float64 `mapstructure:"eps" json:"eps"`
	WeightDecay float64 `mapstructure:"weight-decay" json:"weight_decay"`
	Warmup      int     `mapstructure:"warmup" json:"warmup"`
	Schedule    string  `mapstructure:"schedule" json:"schedule"` // cosine | linear | constant
	Clip        float64 `mapstructure:"clip" json:"clip"`
	Seed        uint64  `mapstructure:"seed" json:"seed"`

	ValEvery  int    `mapstructure:"val-every" json:"val_every"`
	SaveEvery int    `mapstructure:"save-every" json:"save_every"`
	Threads   int    `mapstructure:"threads" json:"threads"`
	Backend   string `mapstructure:"backend" json:"backend"`
	MaxRows   int    `mapstructure:"max-rows" json:"max_rows"`
	// BackwardWeights and NoImageWeights trade memory for speed: see FastWeights.
	BackwardWeights string `mapstructure:"backward-weights" json:"backward_weights"` // auto | bf16 | f32 | autodiff
	NoImageWeights  string `mapstructure:"no-image-weights" json:"no_image_weights"` // auto | q8_0 | f32
	Merge           bool   `mapstructure:"merge" json:"merge"`

	Resume    bool `mapstructure:"resume" json:"-"`
	Overwrite bool `mapstructure:"overwrite" json:"-"`
	DryRun    bool `mapstructure:"dry-run" json:"-"`
}

// Defaults are the values of every option not given.
func Defaults() Config {
	return Config{
		ValSplit: 0, OnError: "fail", Objective: "cal",
		CALLo: 1, CALHi: 5, CALWindow: 3, CALSmooth: true,
		Rank: 16, Alpha: 32,
		Steps: 0, Epochs: 1, Batch: 1, Accum: 1,
		LR: 2e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0,
		Warmup: 0, Schedule: "cosine", Clip: 1.0, Seed: 42,
		ValEvery: 0, SaveEvery: 100, Backend: "cpu",
		BackwardWeights: "auto", NoImageWeights: "auto",
	}
}

// CALOptions are the objective's weighting knobs.
func (c *Config) CALOptions() cal.Options {
	return cal.Options{Lo: c.CALLo, Hi: c.CALHi, Window: c.CALWindow, Smooth: c.CALSmooth}
}

// Validate reports options that cannot work, with the fix.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Model == "" {
		add("--model is required (the GGUF text model)")
	}
	if c.Data == "" {
		add("--data is required (LLaVA JSON or JSONL)")
	}
	if c.Out == "" && !c.DryRun {
		add("--out is required (the run's folder)")
	}
	if _, err := cal.ParseObjective(c.Objective); err != nil {
		add("--objective: %v", err)
	}
	if c.Objective == "cal" && c.Mmproj == "" {
		add("--objective cal needs --mmproj: without images there is nothing to contrast")
	}
	if c.CALLo > c.CALHi {
		add("--cal-lo %g is above --cal-hi %g", c.CALLo, c.CALHi)
	}
	if c.CALWindow < 1 || c.CALWindow%2 == 0 {
		add("--cal-window must be a positive odd number, got %d", c.CALWindow)
	}
	if c.Rank <= 0 {
		add("--rank must be positive")
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		add("--dropout must be in [0, 1)")
	}
	if c.Steps < 0 || c.Epochs < 0 || (c.Steps == 0 && c.Epochs == 0) {
		add("give --steps or --epochs (positive)")
	}
	if c.Batch <= 0 || c.Accum <= 0 {
		add("--batch and --accum must be positive")
	}
	if c.LR <= 0 {
		add("--lr must be positive")
	}
	if c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1 {
		add("--beta1 and --beta2 must be in [0, 1)")
	}
	switch c.Schedule {
	case "cosine", "linear", "constant":
	default:
		add("--schedule %q: use cosine, linear or constant", c.Schedule)
	}
	switch c.OnError {
	case "skip", "fail":
	default:
		add("--on-error %q: use skip or fail", c.OnError)
	}
	if c.ValSplit < 0 || c.ValSplit >= 1 {
		add("--val-split must be in [0, 1)")
	}
	switch c.BackwardWeights {
	case "auto", "bf16", "f32", "autodiff":
	default:
		add("--backward-weights %q: use auto, bf16, f32 or autodiff", c.BackwardWeights)
	}
	switch c.NoImageWeights {
	case "auto", "q8_0", "f32":
	default:
		add("--no-image-weights %q: use auto, q8_0 or f32", c.NoImageWeights)
	}
	if c.Resume && c.Overwrite {
		add("--resume and --overwrite contradict each other")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}
