// Command calft fine-tunes LLaVA-style vision-language models (a GGUF text model and a
// GGUF mmproj) with LoRA and Contrastive ALignment, on ggml.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "calft",
		Short: "Fine-tune GGUF vision-language models with LoRA and Contrastive ALignment",
		Long: `calft teaches a local vision-language model (a GGUF text model plus a GGUF mmproj
vision encoder, as llama.cpp uses them) your own images. It trains LoRA adapters with
Contrastive ALignment (CAL): each answer token's loss is weighted by how much the image
changes its logit, and writes adapters llama.cpp loads with --lora.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, add := range commands {
		cmd := add()
		if cmd.Args == nil {
			cmd.Args = cobra.NoArgs // a stray word is a mistake, not something to ignore
		}
		root.AddCommand(cmd)
	}
	return root
}

// commands are the sub-command constructors; each command's file registers itself.
var commands []func() *cobra.Command

// usageError marks errors in how the command was called, so the usage is printed.
type usageError struct{ error }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		if errors.As(err, new(quietError)) {
			os.Exit(1) // another rank of the job reported it
		}
		fmt.Fprintln(os.Stderr, "calft:", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "Run 'calft --help' for usage.")
		}
		os.Exit(1)
	}
}
