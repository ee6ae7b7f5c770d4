package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/calft/calft/bench"
)

func init() { commands = append(commands, newBenchCmd) }

func newBenchCmd() *cobra.Command {
	o := bench.Options{}
	cmd := &cobra.Command{
		Use:   "bench [--preset tiny|smol135|llama1b|llava7b] [--base-type T] [--objective ce|cal] [--rows N] [--image-rows N] [--steps N]",
		Short: "Time a training step on random weights of a known shape",
		Long: `bench builds a model of a preset's shape with random weights in memory (no files), a LoRA
adapter on the seven projections and one fixed sequence (a short text prefix, image rows,
then text, all supervised), and times full training steps (forward, loss, backward, AdamW)
after a warm-up, with the frozen weights' copies training makes by default (BF16
transposed matrices for the backward pass, Q8_0 matrices for CAL's image-absent pass).
It prints one JSON line: the median seconds per step, tokens per second, the step's
matrix-product work (2·m·n·k summed over every product node of the graph), the rate
achieved, ggml's F32 mul_mat rate on a 2048³ product measured in the same run and their
ratio (the BF16 rate of the same product is given for context), the peak resident
memory of the step, and for cal the ratio to a ce step (median over cal and ce steps
taken in turn). --profile adds the time per op and phase of one step.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			small := o.Preset == "tiny" || o.Preset == "smol135"
			if !cmd.Flags().Changed("ratio") {
				o.Ratio = small
			}
			if !cmd.Flags().Changed("warmup") && !small {
				o.Warmup = 1 // a step of a large model takes minutes
			}
			r, err := bench.Run(o)
			if err != nil {
				return err
			}
			js, err := json.Marshal(r)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(js))
			if o.Profile {
				type kv struct {
					k string
					v float64
				}
				var rows []kv
				total := 0.0
				for k, v := range r.Profile {
					rows = append(rows, kv{k, v})
					// The largest nodes and the phases are listed again.
					if !strings.HasPrefix(k, "node ") && !strings.HasPrefix(k, "phase ") {
						total += v
					}
				}
				sort.Slice(rows, func(i, j int) bool { return rows[i].v > rows[j].v })
				w := cmd.ErrOrStderr()
				fmt.Fprintf(w, "profile of one step, node by node (%.1f ms in all):\n", total)
				for _, x := range rows {
					if x.v/total < 0.002 {
						continue
					}
					fmt.Fprintf(w, "  %-32s %9.2f ms  %5.1f%%\n", x.k, x.v, 100*x.v/total)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Preset, "preset", "smol135", "model shape: tiny (make-tiny), smol135 (SmolLM2-135M), llama1b (a 1B llama, 32k vocabulary) or llava7b (LLaVA-1.5-7B's text model), gemma3tiny262k (Gemma 3's decoder at make-tiny's widths with a 262k vocabulary, 700 rows) or gemma3tiny (the same with the tiny vocabulary)")
	f.StringVar(&o.BaseType, "base-type", "f32", "stored type of the random base's matrices: f32, f16, bf16, q8_0, q4_0, q4_k or q4_k_m")
	f.IntVar(&o.Rows, "rows", 0, "rows in the sequence (0: the preset's: tiny 84, smol135 192, llama1b 704, llava7b 704)")
	f.StringVar(&o.Recompute, "recompute", "auto", "recompute blocks for the backward pass: auto, on or off (as for train)")
	f.StringVar(&o.MaxMemory, "max-memory", "", "memory the plan must fit (default "+bench.Laptop+", what a 16 GB laptop leaves a training run, so that figures do not depend on this machine's free memory; 0: what is available; never more than is available)")
	f.BoolVar(&o.Ratio, "ratio", false, "for cal, also time ce steps in turn (cal_over_ce; default on for tiny and smol135)")
	f.StringVar(&o.Objective, "objective", "cal", "ce or cal")
	f.IntVar(&o.Steps, "steps", 5, "timed steps (the median is reported)")
	f.IntVar(&o.Warmup, "warmup", 2, "untimed steps first")
	f.IntVar(&o.Threads, "threads", 0, "CPU threads (0: all cores)")
	f.StringVar(&o.Backend, "backend", "cpu", backendHelp)
	f.IntVar(&o.Rank, "rank", 16, "LoRA rank")
	f.IntVar(&o.ImageRows, "image-rows", -1, "image rows in the sequence (-1: the preset's; 0: text only)")
	f.BoolVar(&o.Profile, "profile", false, "also time every op of one step")
	f.StringVar(&o.ForwardWeights, "forward-weights", "auto", "the forward pass's products with frozen quantized or F16 matrices on the CPU, as for train: auto, native or bf16")
	f.StringVar(&o.BackwardWeights, "backward-weights", "auto", "the backward pass's products with frozen matrices, as for train: auto, bf16, f32, tiled, tiled-f32 or autodiff")
	f.StringVar(&o.NoImageWeights, "no-image-weights", "auto", "frozen matrices of CAL's image-absent pass: auto (q8_0 copies), q8_0, or f32 (the model's)")
	return cmd
}
