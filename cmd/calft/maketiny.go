package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/calft/calft/tiny"
)

func init() { commands = append(commands, newMakeTinyCmd) }

func newMakeTinyCmd() *cobra.Command {
	var out string
	var seed int64
	var samples int
	var tied, biases, overwrite bool
	var family, ropeScaling, textShape string
	cmd := &cobra.Command{
		Use:   "make-tiny --out DIR [--seed N] [--family llama|llama3|qwen2]",
		Short: "Write a tiny synthetic VLM (base.gguf, mmproj.gguf) and a small dataset",
		Long: `make-tiny writes a tiny, randomly initialised vision-language model that llama.cpp loads:
base.gguf (llama architecture, F32, SentencePiece vocabulary with byte tokens, ChatML
template), mmproj.gguf (CLIP ViT with the LLaVA-1.5 "mlp" projector, 32×32 images, 16
tokens per image), and data.json with images/*.png it draws (coloured shapes), in the
LLaVA conversation format. The same seed gives the same bytes.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("make-tiny needs --out DIR")}
			}
			if samples < 0 {
				return usageError{fmt.Errorf("--samples %d is negative (0: the default 24)", samples)}
			}
			if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 && !overwrite {
				return fmt.Errorf("%s is not empty; make-tiny writes %s, %s, %s and %s/ there: pass --overwrite, or choose an empty folder",
					out, tiny.BaseFile, tiny.MmprojFile, tiny.DataFile, tiny.ImageDir)
			}
			o := tiny.Options{Seed: seed, TiedOutput: tied, Samples: samples, Biases: biases, RopeScaling: ropeScaling}
			if textShape != "" {
				var sh tiny.TextShape
				if n, err := fmt.Sscanf(textShape, "%d,%d,%d,%d,%d", &sh.NEmbd, &sh.NLayer, &sh.NHead, &sh.NHeadKV, &sh.NFF); n != 5 || err != nil {
					return usageError{fmt.Errorf("--text-shape %q: give n_embd,layers,heads,kv_heads,n_ff (e.g. 576,30,9,3,1536)", textShape)}
				}
				o.Text = &sh
			}
			switch family {
			case "llama":
			case "llama3":
				o.RopeFreqs = true
			case "qwen2":
				o.Arch = tiny.ArchQwen2
			default:
				return usageError{fmt.Errorf("--family %q: use llama, llama3 or qwen2", family)}
			}
			if err := tiny.GenerateWith(out, o); err != nil {
				return err
			}
			for _, name := range []string{tiny.BaseFile, tiny.MmprojFile, "data.json"} {
				st, err := os.Stat(filepath.Join(out, name))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes)\n", filepath.Join(out, name), st.Size())
			}
			imgs, _ := filepath.Glob(filepath.Join(out, "images", "*.png"))
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d images in %s\n", len(imgs), filepath.Join(out, "images"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "folder to write into (created if missing)")
	f.Int64Var(&seed, "seed", 1, "random seed of the weights and the dataset")
	f.IntVar(&samples, "samples", 0, "dataset size (0: 24, the last two text-only)")
	f.BoolVar(&overwrite, "overwrite", false, "write into a folder that is not empty (replacing the files of an earlier make-tiny)")
	f.BoolVar(&tied, "tied", false, "tie the output layer to the token embeddings")
	f.StringVar(&family, "family", "llama", "text model: llama, llama3 (Llama 3.x RoPE frequency factors, rope_freqs.weight) or qwen2")
	f.BoolVar(&biases, "biases", false, "add the optional biases the architecture allows (llama: q/k/v, attention output, feed-forward; qwen2: output)")
	f.StringVar(&ropeScaling, "rope-scaling", "", "write rope.scaling keys: linear or yarn (factor 4)")
	f.StringVar(&textShape, "text-shape", "", "text model sizes n_embd,layers,heads,kv_heads,n_ff instead of the tiny ones (e.g. 576,30,9,3,1536 for SmolLM2-135M's blocks), for memory and speed measurements")
	return cmd
}
