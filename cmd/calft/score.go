package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/calft/calft/internal/options"
	"github.com/calft/calft/train"
)

func init() { commands = append(commands, newScoreCmd) }

func newScoreCmd() *cobra.Command {
	c := train.DefaultScore()
	var config string
	cmd := &cobra.Command{
		Use:   "score --model M --mmproj P --data D --out FILE.jsonl [--html FILE.html]",
		Short: "Show which answer tokens depend on the image (CAL's Δ and weights)",
		Long: `score runs every sample twice through calft's decoder — with the image, and with the image
hidden from the text at unchanged positions — and writes, for every supervised (assistant)
token, one JSON line:
  {"id", "pos", "token", "piece", "logit_img", "logit_noimg", "delta", "weight"}
where pos is the token's row in the whole sequence, delta = logit_img − logit_noimg of the
target token, and weight is the CAL weight (clamp to [lo, hi], then a moving average within
each run of answer tokens). --html writes a page with every answer's tokens shaded by weight.
The model, data and CAL options are train's, with the same names (also from --config and
CALFT_* variables). Under mpirun or srun (bin/calft-mpi, make mpi) the ranks share the
samples and rank 0 writes the files, in the input order.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := options.Load(cmd.Flags(), &c, config); err != nil {
				return usageError{err}
			}
			comm, err := train.World()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := train.ScoreShared(ctx, comm, c, rankLog(comm, cmd.ErrOrStderr()))
			if err := endRank(comm, err); err != nil || comm.Rank() != 0 {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d samples, %d tokens)\n", c.Out, res.Samples, res.Tokens)
			if c.HTML != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", c.HTML)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "YAML file with any of these options (flags and CALFT_* variables override it)")
	options.Register(cmd.Flags(), &c)
	return cmd
}
