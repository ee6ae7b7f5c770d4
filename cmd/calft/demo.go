package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/calft/calft/demo"
)

func init() { commands = append(commands, newDemoCmd) }

func newDemoCmd() *cobra.Command {
	var out string
	var seeds, threads int
	var backend string
	var quick bool
	var tune demo.Options
	cmd := &cobra.Command{
		Use:   "demo [--out DIR] [--seeds N] [--quick]",
		Short: "The main job on an embedded default: CAL versus plain cross-entropy on a tiny VLM",
		Long: `demo needs no download. It writes a tiny vision-language model and a synthetic visual task
(describe a drawn shape: its colour, shape and position come from the image, the other words
from the text; 30% of the training captions name a wrong colour, as real captions sometimes
contradict their images), trains the plain cross-entropy baseline and CAL through the same
code as 'calft train' with the same data order, steps and seeds, and evaluates both on
held-out images through llama.cpp with the exported adapters. It also audits the training
captions with 'calft audit' and each seed's warm-up adapter, measures the audit against the
captions it corrupted (task/train/corrupted.json), and trains ce on the captions the audit did
not flag (ce-clean). It prints a table (mean ± std over seeds) and writes report.md, plot.png,
score.html and the adapters under --out.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range []string{"seeds", "threads", "warm-steps", "steps", "train-samples", "batch", "rank"} {
				if v, _ := cmd.Flags().GetInt(n); v < 0 {
					return usageError{fmt.Errorf("--%s %d is negative (0: the preset's value)", n, v)}
				}
			}
			if tune.LR < 0 {
				return usageError{fmt.Errorf("--lr %g is negative (0: the preset's value)", tune.LR)}
			}
			o := demo.DefaultOptions(quick)
			if out != "" {
				o.Out = out
			}
			if seeds > 0 {
				o.Seeds = seeds
			}
			o.Threads, o.Backend = threads, backend
			if tune.WarmSteps > 0 {
				o.WarmSteps = tune.WarmSteps
			}
			if tune.Steps > 0 {
				o.Steps = tune.Steps
			}
			if tune.TrainN > 0 {
				o.TrainN = tune.TrainN
			}
			if tune.LR > 0 {
				o.LR = tune.LR
			}
			if tune.Rank > 0 {
				o.Rank = tune.Rank
			}
			if cmd.Flags().Changed("noise") {
				o.Noise = tune.Noise
			}
			if tune.Batch > 0 {
				o.Batch = tune.Batch
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			rep, err := demo.Run(ctx, o, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w)
			fmt.Fprint(w, rep.Table())
			return demo.Finish(rep, w)
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "out/demo", "folder for the model, task, runs and report")
	f.IntVar(&seeds, "seeds", 0, "seeds per objective (0: 3, or 2 with --quick)")
	f.BoolVar(&quick, "quick", false, "a smaller task that runs in about a minute")
	f.IntVar(&threads, "threads", 0, "CPU threads (0: all cores)")
	f.StringVar(&backend, "backend", "cpu", backendHelp)
	f.IntVar(&tune.WarmSteps, "warm-steps", 0, "ce warm-up steps (0: the preset's)")
	f.IntVar(&tune.Steps, "steps", 0, "steps of each objective after the warm-up (0: the preset's)")
	f.IntVar(&tune.TrainN, "train-samples", 0, "training samples (0: the preset's)")
	f.IntVar(&tune.Batch, "batch", 0, "samples per step (0: the preset's)")
	f.IntVar(&tune.Rank, "rank", 0, "LoRA rank (0: the preset's)")
	f.Float64Var(&tune.LR, "lr", 0, "peak learning rate (0: the preset's)")
	f.Float64Var(&tune.Noise, "noise", 0.3, "fraction of training captions with a wrong colour")
	return cmd
}
