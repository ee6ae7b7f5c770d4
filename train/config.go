package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/cal"
)

// Config is every option of a training run, declared once: each tagged field is a flag,
// a YAML key of --config and a CALFT_* variable (package internal/options), and its
// resume tag says whether a resumed run may change it.
type Config struct {
	EnvConfig   `mapstructure:",squash"`
	cal.Options `mapstructure:",squash"`

	Data     string  `mapstructure:"data" json:"data" resume:"file" help:"training data: LLaVA JSON array or JSONL of {id, image, conversations} (required)"`
	ValData  string  `mapstructure:"val-data" json:"val_data" resume:"file" help:"validation data in the same format"`
	ValSplit float64 `mapstructure:"val-split" json:"val_split" help:"fraction of the training data held out for validation when --val-data is not given"`
	Out      string  `mapstructure:"out" json:"out" resume:"free" help:"run folder: checkpoints, metrics.jsonl, adapter.gguf (required)"`
	OnError  string  `mapstructure:"on-error" json:"on_error" help:"bad samples: fail, or skip them with a report"`

	Objective string `mapstructure:"objective" json:"objective" help:"loss: cal (Contrastive ALignment) or ce (plain cross-entropy)"`

	InitAdapter string   `mapstructure:"init-adapter" json:"init_adapter" resume:"file" help:"start from this adapter (a llama.cpp adapter GGUF or a PEFT folder; same rank and targets) instead of a fresh one"`
	Rank        int      `mapstructure:"rank" json:"rank" help:"LoRA rank"`
	Alpha       float64  `mapstructure:"alpha" json:"alpha" help:"LoRA alpha (the update is scaled by alpha/rank)"`
	Targets     []string `mapstructure:"targets" json:"targets" help:"LoRA targets: attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down, PEFT names, attn, mlp or all (default all seven)"`
	Dropout     float64  `mapstructure:"dropout" json:"dropout" help:"LoRA dropout on the adapters' inputs during training (0: off)"`

	Steps       int     `mapstructure:"steps" json:"steps" help:"optimizer steps (0: from --epochs)"`
	Epochs      int     `mapstructure:"epochs" json:"epochs" help:"passes over the training data when --steps is 0"`
	Batch       int     `mapstructure:"batch" json:"batch" help:"samples per micro-batch"`
	Accum       int     `mapstructure:"accum" json:"accum" help:"micro-batches per optimizer step (gradient accumulation)"`
	LR          float64 `mapstructure:"lr" json:"lr" help:"peak learning rate"`
	Beta1       float64 `mapstructure:"beta1" json:"beta1" help:"AdamW beta1"`
	Beta2       float64 `mapstructure:"beta2" json:"beta2" help:"AdamW beta2"`
	Eps         float64 `mapstructure:"eps" json:"eps" help:"AdamW epsilon"`
	WeightDecay float64 `mapstructure:"weight-decay" json:"weight_decay" help:"AdamW decoupled weight decay"`
	Warmup      int     `mapstructure:"warmup" json:"warmup" help:"linear warmup steps"`
	Schedule    string  `mapstructure:"schedule" json:"schedule" help:"learning-rate schedule after warmup: cosine, linear or constant"`
	Clip        float64 `mapstructure:"clip" json:"clip" help:"clip the global gradient norm to this (0: off)"`
	Seed        uint64  `mapstructure:"seed" json:"seed" help:"seed of the adapter init, data order and split: same seed, same run"`

	ValEvery  int `mapstructure:"val-every" json:"val_every" resume:"free" help:"validation loss every N steps (0: before and after training only)"`
	SaveEvery int `mapstructure:"save-every" json:"save_every" resume:"free" help:"checkpoint every N steps (0: only at the end and on interrupt)"`
	// BackwardWeights and NoImageWeights trade memory for speed (see FastWeights); the
	// copies round differently, so a resumed run must keep them.
	BackwardWeights string `mapstructure:"backward-weights" json:"backward_weights" help:"how the backward pass multiplies with the frozen matrices: auto (bf16 copies for an F32/F16/BF16 base when memory allows, else tiled), bf16 or f32 (transposed copies), tiled (no copy: each matrix dequantized a BF16 tile at a time), tiled-f32, or autodiff (ggml's slower out_prod)"`
	ForwardWeights  string `mapstructure:"forward-weights" json:"forward_weights" help:"how the forward pass multiplies with frozen quantized or F16 matrices on the CPU: auto (bf16 for quantized and F16 bases where the CPU has BF16 dot products), native (ggml's product on the stored type) or bf16 (each matrix dequantized to BF16 just before its products)"`
	NoImageWeights  string `mapstructure:"no-image-weights" json:"no_image_weights" help:"frozen matrices of CAL's image-absent pass: auto (q8_0 copies for an F32/F16/BF16 base), q8_0, or f32 (the model's own)"`
	Merge           bool   `mapstructure:"merge" json:"merge" resume:"free" help:"also write merged.gguf (base + adapter)"`
	// Recompute and MaxMemory trade speed for memory; the gradients are the same.
	Recompute string `mapstructure:"recompute" json:"recompute" resume:"free" help:"keep only each block's input (and, where memory allows, its frozen products) in the forward pass and recompute a block for its backward pass: auto (when the step would not fit in memory otherwise), on or off"`
	MaxMemory string `mapstructure:"max-memory" json:"max_memory" resume:"free" help:"memory the run may use, e.g. 12GB (default: what the machine has available); a run predicted to need more is refused before it starts"`

	Resume    bool `mapstructure:"resume" json:"-" resume:"free" help:"continue the run in --out from its last checkpoint"`
	Overwrite bool `mapstructure:"overwrite" json:"-" resume:"free" help:"replace the run already in --out"`
	DryRun    bool `mapstructure:"dry-run" json:"-" resume:"free" help:"check the data and print samples with their supervised tokens, then stop"`
}

// EnvConfig names the model files and how samples are read and computed: the options
// that train, score and audit share.
type EnvConfig struct {
	Model    string `mapstructure:"model" json:"model" resume:"file" help:"GGUF text model (required)"`
	Mmproj   string `mapstructure:"mmproj" json:"mmproj" resume:"file" help:"GGUF vision projector paired with the model (required for images and for the CAL objective)"`
	ImageDir string `mapstructure:"image-dir" json:"image_dir" resume:"file" help:"folder image paths are relative to (default: the data file's folder)"`
	Template string `mapstructure:"template" json:"template" help:"chat template: a llama.cpp name (chatml, vicuna, llama3, …), llava15 (LLaVA-1.5's own format, rendered by calft) or template text (default: the model's)"`
	CacheDir string `mapstructure:"cache-dir" json:"cache_dir" resume:"free" help:"image embedding cache (default: the user cache folder; \"none\": memory only)"`
	MaxRows  int    `mapstructure:"max-rows" json:"max_rows" help:"longest sample in rows, tokens plus image rows (0: the model's context)"`
	Threads  int    `mapstructure:"threads" json:"threads" resume:"free" help:"CPU threads (0: all cores)"`
	Backend  string `mapstructure:"backend" json:"backend" resume:"free" help:"compute backend: cpu, cuda, vulkan, metal, blas (the device, with the CPU for the ops it lacks), a device name (CUDA1), or auto (the first GPU whose library is present, else the CPU); see calft info --backends"`
}

// DefaultEnv are the shared options' defaults.
func DefaultEnv() EnvConfig { return EnvConfig{Backend: "cpu"} }

// Defaults are the values of every option not given.
func Defaults() Config {
	return Config{
		EnvConfig: DefaultEnv(), Options: cal.Defaults(),
		ValSplit: 0, OnError: "fail", Objective: "cal",
		Rank: 16, Alpha: 32,
		Steps: 0, Epochs: 1, Batch: 1, Accum: 1,
		LR: 2e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0,
		Warmup: 0, Schedule: "cosine", Clip: 1.0, Seed: 42,
		ValEvery: 0, SaveEvery: 100,
		BackwardWeights: "auto", ForwardWeights: "auto", NoImageWeights: "auto", Recompute: "auto",
	}
}

// Validate reports what the shared options cannot work with.
func (e *EnvConfig) Validate() []string {
	var errs []string
	if e.Model == "" {
		errs = append(errs, "--model is required (the GGUF text model)")
	}
	if e.MaxRows < 0 {
		errs = append(errs, fmt.Sprintf("--max-rows %d is negative (0 means the model's context)", e.MaxRows))
	}
	if err := ggml.CheckThreads(e.Threads); err != nil {
		errs = append(errs, err.Error())
	}
	if e.Backend == "" {
		errs = append(errs, "--backend is empty: use cpu, cuda, vulkan, metal, blas, auto or a device name (calft info --backends lists them)")
	}
	return errs
}

// Validate reports options that cannot work, with the fix.
func (c *Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	errs = append(errs, c.EnvConfig.Validate()...)
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
	if err := c.Options.Validate(); err != nil {
		add("%v", err)
	}
	errs = append(errs, c.validateTraining()...)
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// validateTraining checks the adapter, optimiser and schedule options.
func (c *Config) validateTraining() []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	for _, f := range []struct {
		name string
		v    float64
	}{{"lr", c.LR}, {"alpha", c.Alpha}, {"dropout", c.Dropout}, {"beta1", c.Beta1}, {"beta2", c.Beta2},
		{"eps", c.Eps}, {"weight-decay", c.WeightDecay}, {"clip", c.Clip}, {"val-split", c.ValSplit}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			add("--%s %v is not a finite number", f.name, f.v)
		}
	}
	if c.Rank <= 0 {
		add("--rank must be positive")
	}
	if !(c.Alpha > 0) {
		add("--alpha %g: the update is scaled by alpha/rank, so 0 or less learns nothing; use a positive alpha (often 2×rank)", c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		add("--dropout must be in [0, 1)")
	}
	if c.Steps < 0 || c.Epochs < 0 || (c.Steps == 0 && c.Epochs == 0) {
		add("give --steps or --epochs (positive)")
	}
	if c.Batch <= 0 || c.Accum <= 0 {
		add("--batch and --accum must be positive")
	}
	if !(c.LR > 0) {
		add("--lr must be positive")
	}
	if !(c.Beta1 >= 0 && c.Beta1 < 1 && c.Beta2 >= 0 && c.Beta2 < 1) {
		add("--beta1 and --beta2 must be in [0, 1)")
	}
	if !(c.Eps > 0) {
		add("--eps must be positive (it keeps AdamW's division finite)")
	}
	if c.WeightDecay < 0 {
		add("--weight-decay must not be negative")
	}
	if c.Clip < 0 {
		add("--clip must not be negative (0 turns clipping off)")
	}
	if c.Warmup < 0 || c.ValEvery < 0 || c.SaveEvery < 0 {
		add("--warmup, --val-every and --save-every must not be negative (0: none, or only at the end)")
	}
	errs = append(errs, c.validateChoices()...)
	return errs
}

// validateChoices checks the options that take one of a few names.
func (c *Config) validateChoices() []string {
	var errs []string
	choice := func(flag, v string, ok ...string) {
		for _, o := range ok {
			if v == o {
				return
			}
		}
		errs = append(errs, fmt.Sprintf("--%s %q: use %s", flag, v, strings.Join(ok, ", ")))
	}
	choice("schedule", c.Schedule, "cosine", "linear", "constant")
	choice("on-error", c.OnError, "skip", "fail")
	choice("backward-weights", c.BackwardWeights, "auto", "bf16", "f32", "tiled", "tiled-f32", "autodiff")
	choice("forward-weights", c.ForwardWeights, "auto", "native", "bf16")
	choice("recompute", c.Recompute, "auto", "on", "off")
	if c.MaxMemory != "" && c.MaxMemory != "0" {
		if _, err := ParseBytes(c.MaxMemory); err != nil {
			errs = append(errs, "--max-memory: "+err.Error())
		}
	}
	choice("no-image-weights", c.NoImageWeights, "auto", "q8_0", "f32")
	if !(c.ValSplit >= 0 && c.ValSplit < 1) {
		errs = append(errs, "--val-split must be in [0, 1)")
	}
	if c.Resume && c.Overwrite {
		errs = append(errs, "--resume and --overwrite contradict each other")
	}
	return errs
}
