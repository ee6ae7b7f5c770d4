package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/calft/calft/internal/options"
	"github.com/calft/calft/train"
)

func init() { commands = append(commands, newTrainCmd) }

func newTrainCmd() *cobra.Command {
	c := train.Defaults()
	var config string
	var stopAfter, crashIn int
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
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := options.Load(cmd.Flags(), &c, config); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := train.Run(ctx, c, train.Options{Log: cmd.ErrOrStderr(), StopAfter: stopAfter, CrashInCheckpoint: crashIn})
			if errors.Is(err, train.ErrFinished) {
				fmt.Fprintln(cmd.OutOrStdout(), err)
				return nil
			}
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
	f := cmd.Flags()
	f.StringVar(&config, "config", "", "YAML file with any of these options (flags and CALFT_* variables override it)")
	options.Register(f, &c)
	f.IntVar(&stopAfter, "stop-after", 0, "stop as if interrupted after this step (for testing resume)")
	_ = f.MarkHidden("stop-after")
	f.IntVar(&crashIn, "crash-in-checkpoint", 0, "kill the process halfway through writing this step's checkpoint (for testing resume)")
	_ = f.MarkHidden("crash-in-checkpoint")
	return cmd
}
