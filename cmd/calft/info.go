package main

import (
	"fmt"

	"github.com/calft/calft/gguf/check"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newInfoCmd) }

func newInfoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info FILE.gguf...",
		Short: "Describe a GGUF text model, mmproj or LoRA adapter",
		Long: `info reads a GGUF file's metadata in Go (nothing reaches llama.cpp) and prints, for a text
model: architecture, sizes, tensor count and types, vocabulary; for an mmproj: projector
type, image size and tokens per image; for an adapter: alpha, rank and targets. It also
says what calft would reject in the file, and exits 1 then.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var firstErr error
			for i, path := range args {
				if i > 0 {
					fmt.Fprintln(cmd.OutOrStdout())
				}
				d, err := check.Describe(path)
				if err != nil {
					return err
				}
				fmt.Fprint(cmd.OutOrStdout(), d.String())
				if d.Problem != nil && firstErr == nil {
					firstErr = d.Problem
				}
			}
			return firstErr
		},
	}
}
