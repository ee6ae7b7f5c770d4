package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/calft/calft/train"
)

func init() { commands = append(commands, newTrainCmd) }

// trainFlags declares every training option with its default; the same names are the
// YAML keys of --config and, upper-cased with _ for -, the CALFT_* environment variables.
func trainFlags(f *pflag.FlagSet) {
	d := train.Defaults()
	f.String("config", "", "YAML file with any of these options (flags and CALFT_* variables override it)")
	f.String("model", "", "GGUF text model to adapt (required)")
	f.String("mmproj", "", "GGUF vision projector paired with the model (required for images and for --objective cal)")
	f.String("data", "", "training data: LLaVA JSON array or JSONL of {id, image, conversations} (required)")
	f.String("image-dir", "", "folder image paths are relative to (default: the data file's folder)")
	f.String("val-data", "", "validation data in the same format")
	f.Float64("val-split", d.ValSplit, "fraction of the training data held out for validation when --val-data is not given")
	f.String("out", "", "run folder: checkpoints, metrics.jsonl, adapter.gguf (required)")
	f.String("template", d.Template, "chat template: a llama.cpp name (chatml, vicuna, llama3, …) or template text (default: the model's)")
	f.String("cache-dir", d.CacheDir, "image embedding cache (default: the user cache folder; \"none\": memory only)")
	f.String("on-error", d.OnError, "bad samples: fail, or skip them with a report")
	f.String("objective", d.Objective, "loss: cal (Contrastive ALignment) or ce (plain cross-entropy)")
	f.Float64("cal-lo", d.CALLo, "CAL: lower clamp of the logit gap Δ")
	f.Float64("cal-hi", d.CALHi, "CAL: upper clamp of Δ")
	f.Int("cal-window", d.CALWindow, "CAL: moving-average width within a run of answer tokens (odd)")
	f.Bool("cal-smooth", d.CALSmooth, "CAL: smooth the weights (--cal-smooth=false turns it off)")
	f.String("init-adapter", "", "start from this adapter (same rank and targets) instead of a fresh one")
	f.Int("rank", d.Rank, "LoRA rank")
	f.Float64("alpha", d.Alpha, "LoRA alpha (the update is scaled by alpha/rank)")
	f.StringSlice("targets", nil, "LoRA targets: attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down, PEFT names, attn, mlp or all (default all seven)")
	f.Float64("dropout", d.Dropout, "LoRA dropout on the adapters' inputs during training (0: off)")
	f.Int("steps", d.Steps, "optimizer steps (0: from --epochs)")
	f.Int("epochs", d.Epochs, "passes over the training data when --steps is 0")
	f.Int("batch", d.Batch, "samples per micro-batch")
	f.Int("accum", d.Accum, "micro-batches per optimizer step (gradient accumulation)")
	f.Float64("lr", d.LR, "peak learning rate")
	f.Float64("beta1", d.Beta1, "AdamW beta1")
	f.Float64("beta2", d.Beta2, "AdamW beta2")
	f.Float64("eps", d.Eps, "AdamW epsilon")
	f.Float64("weight-decay", d.WeightDecay, "AdamW decoupled weight decay")
	f.Int("warmup", d.Warmup, "linear warmup steps")
	f.String("schedule", d.Schedule, "learning-rate schedule after warmup: cosine, linear or constant")
	f.Float64("clip", d.Clip, "clip the global gradient norm to this (0: off)")
	f.Uint64("seed", d.Seed, "seed of the adapter init, data order and split: same seed, same run")
	f.Int("val-every", d.ValEvery, "validation loss every N steps (0: before and after training only)")
	f.Int("save-every", d.SaveEvery, "checkpoint every N steps (0: only at the end and on interrupt)")
	f.Int("threads", d.Threads, "CPU threads (0: all cores)")
	f.String("backend", d.Backend, "compute backend: cpu, or auto for the best device present")
	f.String("backward-weights", d.BackwardWeights, "transposed copies of the frozen matrices for the backward pass: auto (bf16 for an F32/F16/BF16 base, none for a quantized one), bf16, f32, or autodiff (none: ggml's slower out_prod)")
	f.String("no-image-weights", d.NoImageWeights, "frozen matrices of CAL's image-absent pass: auto (q8_0 copies for an F32/F16/BF16 base), q8_0, or f32 (the model's own)")
	f.Int("max-rows", d.MaxRows, "longest sample in rows, tokens plus image rows (0: the model's context)")
	f.Bool("merge", d.Merge, "also write merged.gguf (base + adapter)")
	f.Bool("resume", false, "continue the run in --out from its last checkpoint")
	f.Bool("overwrite", false, "replace the run already in --out")
	f.Bool("dry-run", false, "check the data and print samples with their supervised tokens, then stop")
	f.Int("stop-after", 0, "stop as if interrupted after this step (for testing resume)")
	_ = f.MarkHidden("stop-after")
}

// loadTrainConfig merges defaults, the YAML file, CALFT_* variables and flags.
func loadTrainConfig(cmd *cobra.Command) (train.Config, error) {
	v := viper.New()
	if err := v.BindPFlags(cmd.Flags()); err != nil {
		return train.Config{}, err
	}
	v.SetEnvPrefix("CALFT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	if path := v.GetString("config"); path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return train.Config{}, fmt.Errorf("config %s: %w", path, err)
		}
		known := map[string]bool{}
		cmd.Flags().VisitAll(func(f *pflag.Flag) { known[f.Name] = true })
		for _, k := range v.AllKeys() {
			if !known[k] {
				return train.Config{}, fmt.Errorf("config %s: unknown option %q (see calft train --help)", path, k)
			}
		}
	}
	c := train.Defaults()
	if err := v.Unmarshal(&c); err != nil {
		return train.Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

func newTrainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "train --model M --mmproj P --data D --out DIR [options]",
		Short: "Fine-tune a LoRA adapter with CAL (or plain cross-entropy)",
		Long: `train fits a LoRA adapter to a LLaVA-format dataset. Each sample is templated with the model's
chat template; only assistant tokens are learned. Images are encoded once by the frozen
projector and cached. With --objective cal each answer token's loss is weighted by how much
the image raises its logit (Contrastive ALignment); --objective ce is the plain baseline.

The run folder gets metrics.jsonl (one line per step), checkpoints every --save-every steps
and on Ctrl-C (continue with --resume: the resumed run ends with the same adapter), and at
the end adapter.gguf, which llama.cpp loads with --lora. Every option can also come from a
YAML --config file (same names) or a CALFT_<NAME> variable; flags win.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadTrainConfig(cmd)
			if err != nil {
				return usageError{err}
			}
			stopAfter, _ := cmd.Flags().GetInt("stop-after")
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := train.Run(ctx, c, train.Options{Log: cmd.ErrOrStderr(), StopAfter: stopAfter})
			if err != nil {
				return err // an interrupt's error says how to resume
			}
			if sum == nil {
				return nil // dry run
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "trained %d steps on %d samples in %.1fs (%.0f tokens/s); loss %.4f → %.4f\n",
				sum.Steps, sum.Samples, sum.Seconds, sum.TokensPerSec, sum.FirstLoss, sum.LastLoss)
			if n := len(sum.Val); n > 0 {
				fmt.Fprintf(w, "validation loss %.4f → %.4f\n", sum.Val[0].Loss, sum.Val[n-1].Loss)
			}
			fmt.Fprintf(w, "adapter: %s\n", sum.Adapter)
			if sum.Merged != "" {
				fmt.Fprintf(w, "merged model: %s\n", sum.Merged)
			}
			return nil
		},
	}
	trainFlags(cmd.Flags())
	return cmd
}
