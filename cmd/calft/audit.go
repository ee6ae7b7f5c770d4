package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/calft/calft/audit"
	"github.com/calft/calft/internal/options"
)

func init() { commands = append(commands, newAuditCmd) }

func newAuditCmd() *cobra.Command {
	c := audit.Defaults()
	var config string
	cmd := &cobra.Command{
		Use:   "audit --model M --mmproj P --data D [--lora A] --out FILE.jsonl [--html FILE.html] [--write-clean FILE]",
		Short: "Find the captions their images contradict (from CAL's two passes)",
		Long: `audit runs every sample twice through calft's decoder — with the image, and with the image
hidden from the text at unchanged positions, as calft score does — and ranks the samples by how
strongly their images contradict their answers. Give it a model that has learnt the task (--lora:
for instance an adapter trained briefly with --objective ce on the same data).

A word's score is the smaller of two gaps, in nats: how much less likely the model, seeing the
image, finds it than it typically finds that word in this dataset (median log P over the
dataset's occurrences of the token), and how much less the image supports it than it typically
supports that word (support: log P with the image − log P without). A sample scores its worst
word. Words seen fewer than 5 times are judged against the text alone (both gaps become
log P without the image − log P with it). Samples without an image score 0.

--out gets one JSON line per sample, most suspicious first:
  {"id", "record", "score", "flagged", "image", "answer", "tokens": [{"piece", "score",
   "delta", "p_img", "p_noimg", "top", "p_top", …}, …]}
where tokens are the sample's most suspicious words (--tokens), top is the model's own choice
with the image and p_top its probability. --html writes a page with the images and the flagged
words. Samples scoring --threshold or more are flagged (or the --top K highest); --write-clean
writes the dataset without them, in the input's format (JSON array or JSONL, every other
record as it was). The model, data and CAL options are score's, with the same names.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := options.Load(cmd.Flags(), &c, config); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := audit.Run(ctx, c, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "wrote %s (%d samples, %d flagged)\n", c.Out, len(res.Samples), res.Flagged)
			if c.HTML != "" {
				fmt.Fprintf(w, "wrote %s\n", c.HTML)
			}
			if c.WriteClean != "" {
				fmt.Fprintf(w, "wrote %s (%d of %d records kept)\n", c.WriteClean, res.Kept, len(res.Samples))
				if res.ImageNote != "" {
					fmt.Fprintf(w, "note: %s\n", res.ImageNote)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "YAML file with any of these options (flags and CALFT_* variables override it)")
	options.Register(cmd.Flags(), &c)
	return cmd
}
