package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
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
	var fault string
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
YAML --config file (same names) or a CALFT_<NAME> variable; flags win.

Built with MPI (make mpi → bin/calft-mpi) and started by mpirun or srun, every process is
a rank of one data-parallel run: each takes its share of every step's samples (the
global batch is batch × accum × ranks), the LoRA gradients are summed between them, and
rank 0 alone writes into --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := options.Load(cmd.Flags(), &c, config); err != nil {
				return usageError{err}
			}
			f, err := parseFault(fault)
			if err != nil {
				return usageError{err}
			}
			comm, err := train.World()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := train.Run(ctx, c, train.Options{Log: rankLog(comm, cmd.ErrOrStderr()), StopAfter: stopAfter,
				CrashInCheckpoint: crashIn, Comm: comm, Fault: f})
			if errors.Is(err, train.ErrFinished) {
				if comm.Rank() == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), err)
				}
				return endRank(comm, nil)
			}
			if err := endRank(comm, err); err != nil {
				return err // an interrupt's error says how to resume
			}
			if sum == nil || comm.Rank() != 0 {
				return nil // a dry run, or a rank that reports nothing
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "trained %d steps on %d samples in %.1fs (%.0f tokens/s); loss %.4f → %.4f\n",
				sum.Steps, sum.Samples, sum.Seconds, sum.TokensPerSec, sum.FirstLoss, sum.LastLoss)
			if n := len(sum.Val); n > 0 {
				fmt.Fprintf(w, "validation loss %.4f → %.4f\n", sum.Val[0].Loss, sum.Val[n-1].Loss)
			}
			if len(sum.NodesOn) > 0 {
				fmt.Fprintf(w, "ran on %s; graph nodes per backend: %s\n", sum.Backend, nodeCounts(sum.NodesOn))
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
	f.StringVar(&fault, "fault", "", "RANK:STEP[:error|kill]: that rank fails at that step, with an error or SIGKILL (for testing MPI jobs)")
	_ = f.MarkHidden("fault")
	return cmd
}

// nodeCounts writes per-backend node counts in a steady order: "Vulkan0 1234, CPU 56".
func nodeCounts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
