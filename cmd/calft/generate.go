package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/calft/calft/infer"
)

func init() { commands = append(commands, newGenerateCmd) }

func newGenerateCmd() *cobra.Command {
	var o infer.Options
	var raw bool
	cmd := &cobra.Command{
		Use:   "generate --model M [--mmproj P --image I] [--lora A] --prompt TEXT [--n N]",
		Short: "Greedy generation through llama.cpp, with an image and an adapter",
		Long: `generate answers a prompt the way a user checks a fine-tuned model: llama.cpp decodes the
prompt (and the image's embedding rows from mtmd, at the positions llama.cpp gives them),
then picks the most likely token until an end-of-turn token or --n tokens. The prompt is
wrapped in the model's chat template unless --raw is given; the image goes before the
text unless the prompt holds the marker <__media__>.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Model == "" {
				return usageError{fmt.Errorf("generate needs --model")}
			}
			if o.Image != "" && o.Mmproj == "" {
				return usageError{fmt.Errorf("--image needs --mmproj, the vision projector the model was paired with")}
			}
			o.UseChatTemplate = !raw
			w := cmd.OutOrStdout()
			o.OnText = func(s string) { fmt.Fprint(w, s) }
			if _, err := infer.Generate(o); err != nil {
				return err
			}
			fmt.Fprintln(w)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "GGUF text model")
	f.StringVar(&o.Mmproj, "mmproj", "", "GGUF vision projector (needed with --image)")
	f.StringVar(&o.Image, "image", "", "image file: PNG, JPEG, GIF, WebP or BMP")
	f.StringVar(&o.Lora, "lora", "", "LoRA adapter to apply: a llama.cpp adapter GGUF or a PEFT adapter folder")
	f.Float32Var(&o.LoraScale, "lora-scale", 1, "adapter scale")
	f.StringVar(&o.Prompt, "prompt", "", "the question or instruction")
	f.IntVar(&o.N, "n", 64, "most tokens to generate")
	f.IntVar(&o.Threads, "threads", 0, "CPU threads (0: all cores)")
	f.StringVar(&o.Backend, "backend", "cpu", "where llama.cpp decodes: cpu, or cuda, vulkan, metal or auto (every layer offloaded to the device)")
	f.BoolVar(&raw, "raw", false, "feed the prompt as is, without the chat template")
	f.StringVar(&o.Template, "template", "", "chat template instead of the model's: a llama.cpp name (chatml, vicuna, …), llava15 (LLaVA-1.5's own format) or template text")
	return cmd
}
