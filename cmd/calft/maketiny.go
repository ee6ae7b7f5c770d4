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
		Use:   "make-tiny --out DIR [--seed N] [--family llama|llama3|qwen2|qwen2vl|qwen25vl|qwen3vl|llava15|smolvlm|internvl|minicpmv|pixtral|gemma3]",
		Short: "Write a tiny synthetic VLM (base.gguf, mmproj.gguf) and a small dataset",
		Long: `make-tiny writes a tiny, randomly initialised vision-language model that llama.cpp loads:
base.gguf (llama architecture, F32, SentencePiece vocabulary with byte tokens, ChatML
template), mmproj.gguf (CLIP ViT with the LLaVA-1.5 "mlp" projector, 32×32 images, 16
tokens per image), and data.json with images/*.png it draws (coloured shapes), in the
LLaVA conversation format. The same seed gives the same bytes. --family writes another
real format: qwen2vl (Qwen2-VL: a qwen2vl text model with M-RoPE and a qwen2vl_merger
projector, 4×4 patches merged 2×2: 16 rows per 32×32 image on a 4×4 grid), qwen25vl (the
same text model with Qwen2.5-VL's qwen2.5vl_merger projector), llava15 (LLaVA-1.5's GGUF
without a chat template; train with --template llava15), smolvlm (SmolVLM's BOS
<|im_start|>, template and special tokens, and the idefics3 projector, which tiles each
image into 2×2 tiles and an overview), internvl (InternVL 2.5/3: qwen2 text with ChatML
and the internvl projector) or minicpmv (MiniCPM-V 2.6: qwen2 text 128 wide, ChatML, and
the resampler projector, which slices each image into an overview and 2×2 slices of 64
rows each).`,
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
			case "qwen2vl":
				o.Arch = tiny.ArchQwen2VL
			case "qwen25vl":
				o.Arch, o.Projector = tiny.ArchQwen2VL, tiny.ProjQwen25VL
			case "qwen3vl":
				o.Arch = tiny.ArchQwen3VL
			case tiny.FamilyLLaVA15, tiny.FamilySmolVLM, tiny.FamilyPixtral:
				o.Family = family
			case tiny.FamilyInternVL, tiny.FamilyMiniCPMV:
				o.Family, o.Arch = family, tiny.ArchQwen2
			case "gemma3":
				o.Arch = tiny.ArchGemma3
			default:
				return usageError{fmt.Errorf("--family %q: use llama, llama3, qwen2, qwen2vl, qwen25vl, qwen3vl, llava15, smolvlm, internvl, minicpmv, pixtral or gemma3", family)}
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
	f.StringVar(&family, "family", "llama", "text model: llama, llama3 (Llama 3.x RoPE frequency factors, rope_freqs.weight), qwen2, qwen2vl (Qwen2-VL: M-RoPE text, qwen2vl_merger projector), qwen25vl (Qwen2.5-VL's projector), qwen3vl (Qwen3-VL: QK-norm text with interleaved M-RoPE and deepstack, qwen3vl_merger projector whose rows carry one deepstack slice), llava15 (LLaVA-1.5's GGUF: no chat template, </s> ends turns; train with --template llava15), smolvlm (SmolVLM's tokens and template, idefics3 projector tiling each image into 2×2 tiles and an overview), internvl (qwen2 text, internvl projector, <img> … </img> around the rows), minicpmv (MiniCPM-V 2.6: qwen2 text, resampler projector, an overview and 2×2 slices of 64 rows between <image>/<slice> tokens), pixtral (Mistral's [INST] tokens, pixtral projector: 2-D RoPE ViT, [IMG_BREAK] rows) or gemma3 (Gemma 3's text decoder and projector, whose image rows attend to each other both ways)")
	f.BoolVar(&biases, "biases", false, "add the optional biases the architecture allows (llama: q/k/v, attention output, feed-forward; qwen2: output)")
	f.StringVar(&ropeScaling, "rope-scaling", "", "write rope.scaling keys: linear or yarn (factor 4)")
	f.StringVar(&textShape, "text-shape", "", "text model sizes n_embd,layers,heads,kv_heads,n_ff instead of the tiny ones (e.g. 576,30,9,3,1536 for SmolLM2-135M's blocks), for memory and speed measurements")
	return cmd
}
