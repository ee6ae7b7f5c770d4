package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/progress"
	"github.com/calft/calft/lora"
)

func init() { commands = append(commands, newExportCmd) }

func newExportCmd() *cobra.Command {
	var model, adapter, out, typ, adapterOut string
	var overwrite bool
	cmd := &cobra.Command{
		Use:   "export --model BASE.gguf --lora ADAPTER.gguf --out MERGED.gguf",
		Short: "Merge a LoRA adapter into its base model, or re-save the adapter in F16",
		Long: `export writes W' = W + (alpha/r)·B·A into a new GGUF for every adapted weight; all other
tensors are copied unchanged. By default each merged tensor keeps the base tensor's type
(F32, F16, BF16, Q8_0 and Q4_0 are written as they were; other quantized types become F16).
--type f32|f16|q8_0 stores every merged tensor in that type instead.
--adapter-out F16.gguf additionally (or only, without --out) writes the adapter in F16.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if model == "" || adapter == "" {
				return usageError{fmt.Errorf("export needs --model and --lora")}
			}
			if out == "" && adapterOut == "" {
				return usageError{fmt.Errorf("export needs --out (merged model) or --adapter-out (F16 adapter)")}
			}
			for _, p := range []string{model, adapter} {
				if _, err := os.Stat(p); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
			}
			if err := checkExportOutputs(model, adapter, out, adapterOut, overwrite); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ad, err := lora.Read(adapter)
			if err != nil {
				return err
			}
			if adapterOut != "" {
				if err := ad.Save(adapterOut, gguf.F16); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (F16 adapter, rank %d, %d pairs)\n", adapterOut, ad.Rank, len(ad.Pairs))
			}
			if out == "" {
				return nil
			}
			opt := lora.MergeOptions{KeepType: true}
			switch strings.ToLower(typ) {
			case "", "keep":
			case "f32":
				opt = lora.MergeOptions{Type: gguf.F32}
			case "f16":
				opt = lora.MergeOptions{Type: gguf.F16}
			case "q8_0":
				opt = lora.MergeOptions{Type: gguf.Q8_0}
			default:
				return usageError{fmt.Errorf("--type %q: use f32, f16 or q8_0", typ)}
			}
			opt.Context = ctx
			var bar *progress.Reporter
			opt.Progress = func(done, total int) {
				if bar == nil {
					bar = progress.New(cmd.ErrOrStderr(), total, "merging")
				}
				bar.Set(done, "tensors")
			}
			if err := lora.Merge(model, ad, out, opt); err != nil {
				return err
			}
			bar.Finish()
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d tensors updated)\n", out, len(ad.Pairs))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "base GGUF text model the adapter was trained on")
	f.StringVar(&adapter, "lora", "", "LoRA adapter GGUF")
	f.StringVar(&out, "out", "", "merged GGUF to write")
	f.StringVar(&typ, "type", "", "type of the merged tensors: f32, f16 or q8_0 (default: keep the base's)")
	f.StringVar(&adapterOut, "adapter-out", "", "also write the adapter in F16 to this path")
	f.BoolVar(&overwrite, "overwrite", false, "replace --out or --adapter-out when the file exists")
	return cmd
}
