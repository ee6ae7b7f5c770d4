package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/gguf/check"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newInfoCmd) }

// backendHelp is the --backend flag's help, on every command that computes.
const backendHelp = "compute backend: cpu, cuda, vulkan, metal, blas (the device, with the CPU for the ops it lacks), a device name (CUDA1), or auto (the first GPU whose library is present, else the CPU); see calft info --backends"

func newInfoCmd() *cobra.Command {
	var backends bool
	cmd := &cobra.Command{
		Use:   "info FILE.gguf... | info --backends",
		Short: "Describe a GGUF text model, mmproj or LoRA adapter",
		Long: `info reads a GGUF file's metadata in Go (nothing reaches llama.cpp) and prints, for a text
model: architecture, sizes, tensor count and types, vocabulary; for an mmproj: projector
type, image size and tokens per image; for an adapter: alpha, rank and targets. It also
says what calft would reject in the file, and exits 1 then. With --backends it lists the
compute backends instead: which are compiled in, which libraries were found (and where), and
the devices they give.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if backends {
				printBackends(cmd.OutOrStdout())
				return nil
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("info needs a GGUF file (or --backends)")}
			}
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
	cmd.Flags().BoolVar(&backends, "backends", false, "list the compute backends and devices present instead")
	return cmd
}

// printBackends loads every backend library it finds and lists the kinds and devices.
func printBackends(w io.Writer) {
	fmt.Fprintf(w, "backend libraries are looked for in: %s\n", strings.Join(ggml.LibraryDirs(), ", "))
	for _, kind := range ggml.Kinds {
		status := "compiled in"
		if !ggml.Registered(kind) {
			status = "loaded from " + ggml.LibraryPath(kind)
			if err := ggml.OpenLibrary(kind); err != nil {
				status = "absent: " + err.Error()
			}
		}
		fmt.Fprintf(w, "  %-7s %s\n", kind, status)
	}
	fmt.Fprintln(w, "devices:")
	for _, d := range ggml.Devices() {
		mem := ""
		if d.TotalBytes > 0 {
			mem = fmt.Sprintf(", %s free of %s", ggml.HumanBytes(int(d.FreeBytes)), ggml.HumanBytes(int(d.TotalBytes)))
		}
		fmt.Fprintf(w, "  %-8s %-6s %s (%s backend%s)\n", d.Name, d.Kind, d.Description, d.Backend, mem)
	}
}
