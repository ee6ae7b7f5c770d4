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

// exportOptions are export's flags.
type exportOptions struct {
	model, adapter, out, typ, adapterOut string
	format, peftPrefix, peftBase         string
	overwrite                            bool
}

func newExportCmd() *cobra.Command {
	var o exportOptions
	cmd := &cobra.Command{
		Use:   "export --model BASE.gguf --lora ADAPTER --out OUT [--format merged|adapter|peft]",
		Short: "Merge a LoRA adapter into its base model, or convert it (F16 GGUF adapter, Hugging Face PEFT)",
		Long: `export writes W' = W + (alpha/r)·B·A into a new GGUF for every adapted weight; all other
tensors are copied unchanged. By default each merged tensor keeps the base tensor's type
(F32, F16, BF16, Q8_0 and Q4_0 are written as they were; other quantized types become F16).
--type f32|f16|q8_0 stores every merged tensor in that type instead.
--adapter-out F16.gguf additionally (or only, without --out) writes the adapter in F16.

--format adapter writes the adapter itself to --out as a llama.cpp adapter GGUF (--type
f16, the default, or f32). --format peft writes a Hugging Face PEFT adapter folder to
--out: adapter_model.safetensors (--type f32, the default, f16 or bf16) and
adapter_config.json, which PEFT loads onto the original Hugging Face model. Modules are
named base_model.model.<prefix>.layers.N.self_attn.q_proj … mlp.down_proj, with prefix
"model" (LlamaForCausalLM, Qwen2ForCausalLM); a LLaVA-style model keeps its text model
elsewhere: --peft-prefix language_model.model (Transformers before 4.52) or
model.language_model; SmolVLM's is model.text_model. For llama models the q and k rows that llama.cpp's converter
permuted are put back in Hugging Face's order. base_model_name_or_path is --peft-base,
else the model's general.source.huggingface.repository or general.name.

--lora takes a llama.cpp adapter GGUF or a PEFT adapter folder (converted on reading;
--peft-prefix picks the text decoder's modules in an adapter of a whole multimodal model).`,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "base GGUF text model the adapter was trained on")
	f.StringVar(&o.adapter, "lora", "", "LoRA adapter: a llama.cpp adapter GGUF or a PEFT adapter folder")
	f.StringVar(&o.out, "out", "", "what to write: the merged GGUF, the adapter GGUF or the PEFT folder (see --format)")
	f.StringVar(&o.format, "format", "merged", "merged (a merged model), adapter (a llama.cpp adapter GGUF) or peft (a Hugging Face PEFT folder)")
	f.StringVar(&o.typ, "type", "", "tensor type: merged f32, f16 or q8_0 (default: keep the base's); adapter f16 (default) or f32; peft f32 (default), f16 or bf16")
	f.StringVar(&o.adapterOut, "adapter-out", "", "also write the adapter in F16 to this path")
	f.StringVar(&o.peftPrefix, "peft-prefix", "", "PEFT module path of the decoder's layers (default model; LLaVA: language_model.model, SmolVLM: model.text_model)")
	f.StringVar(&o.peftBase, "peft-base", "", "base_model_name_or_path of a PEFT export (default: from the model's metadata)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace --out or --adapter-out when it exists")
	return cmd
}

func (o *exportOptions) run(cmd *cobra.Command) error {
	if o.model == "" || o.adapter == "" {
		return usageError{fmt.Errorf("export needs --model and --lora")}
	}
	format := strings.ToLower(o.format)
	switch {
	case format != "merged" && format != "adapter" && format != "peft":
		return usageError{fmt.Errorf("--format %q: use merged, adapter or peft", o.format)}
	case o.out == "" && (format != "merged" || o.adapterOut == ""):
		return usageError{fmt.Errorf("export needs --out (merged model, adapter or PEFT folder) or --adapter-out (F16 adapter)")}
	}
	for _, p := range []string{o.model, o.adapter} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	if err := checkExportOutputs(o.model, o.adapter, o.out, o.adapterOut, format == "peft", o.overwrite); err != nil {
		return err
	}
	var base lora.Base
	if format == "peft" || lora.IsPEFT(o.adapter) {
		var err error
		if base, err = lora.BaseOf(o.model); err != nil {
			return err
		}
		base.Prefix = o.peftPrefix
		if o.peftBase != "" {
			base.Name = o.peftBase
		}
	}
	ad, err := lora.ReadAny(o.adapter, base)
	if err != nil {
		return err
	}
	if o.adapterOut != "" {
		if err := ad.Save(o.adapterOut, gguf.F16); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (F16 adapter, rank %d, %d pairs)\n", o.adapterOut, ad.Rank, len(ad.Pairs))
	}
	switch {
	case o.out == "":
		return nil
	case format == "adapter":
		return o.writeAdapter(cmd, ad)
	case format == "peft":
		typ := o.typ
		if typ == "" {
			typ = "f32"
		}
		if err := ad.SavePEFT(o.out, base, typ); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (PEFT adapter, rank %d, %d modules)\n", o.out, ad.Rank, len(ad.Pairs))
		return nil
	}
	return o.merge(cmd, ad)
}

// writeAdapter writes the adapter as a llama.cpp adapter GGUF.
func (o *exportOptions) writeAdapter(cmd *cobra.Command, ad *lora.HostAdapter) error {
	dt := gguf.F16
	switch strings.ToLower(o.typ) {
	case "", "f16":
	case "f32":
		dt = gguf.F32
	default:
		return usageError{fmt.Errorf("--type %q: an adapter is written as f16 or f32", o.typ)}
	}
	if err := ad.Save(o.out, dt); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s adapter, rank %d, %d pairs)\n", o.out, dt, ad.Rank, len(ad.Pairs))
	return nil
}

// merge writes base + adapter as a new GGUF.
func (o *exportOptions) merge(cmd *cobra.Command, ad *lora.HostAdapter) error {
	opt := lora.MergeOptions{KeepType: true}
	switch strings.ToLower(o.typ) {
	case "", "keep":
	case "f32":
		opt = lora.MergeOptions{Type: gguf.F32}
	case "f16":
		opt = lora.MergeOptions{Type: gguf.F16}
	case "q8_0":
		opt = lora.MergeOptions{Type: gguf.Q8_0}
	default:
		return usageError{fmt.Errorf("--type %q: use f32, f16 or q8_0", o.typ)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt.Context = ctx
	var bar *progress.Reporter
	opt.Progress = func(done, total int) {
		if bar == nil {
			bar = progress.New(cmd.ErrOrStderr(), total, "merging")
		}
		bar.Set(done, "tensors")
	}
	if err := lora.Merge(o.model, ad, o.out, opt); err != nil {
		return err
	}
	bar.Finish()
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d tensors updated)\n", o.out, len(ad.Pairs))
	return nil
}
