package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/report"
	"github.com/calft/calft/train"
)

func init() { commands = append(commands, newScoreCmd) }

func newScoreCmd() *cobra.Command {
	var (
		env               train.EnvOptions
		dataPath, adapter string
		out, html         string
		opt               = cal.Defaults()
		noSmooth          bool
		limit, htmlLimit  int
	)
	cmd := &cobra.Command{
		Use:   "score --model M --mmproj P --data D --out FILE.jsonl [--html FILE.html]",
		Short: "Show which answer tokens depend on the image (CAL's Δ and weights)",
		Long: `score runs every sample twice through calft's decoder — with the image, and with the image
hidden from the text at unchanged positions — and writes, for every supervised (assistant)
token, one JSON line:
  {"id", "pos", "token", "piece", "logit_img", "logit_noimg", "delta", "weight"}
where pos is the token's row in the whole sequence, delta = logit_img − logit_noimg of the
target token, and weight is the CAL weight (clamp to [lo, hi], then a moving average within
each run of answer tokens). --html writes a page with every answer's tokens shaded by weight.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if env.Model == "" || dataPath == "" || out == "" {
				return usageError{fmt.Errorf("score needs --model, --data and --out")}
			}
			opt.Smooth = !noSmooth
			recs, err := data.Load(dataPath)
			if err != nil {
				return err
			}
			if env.ImageDir == "" {
				env.ImageDir = data.DefaultImageDir(dataPath)
			}
			e, err := train.OpenEnv(env)
			if err != nil {
				return err
			}
			defer e.Close()
			var ad *lora.Adapter
			if adapter != "" {
				h, err := lora.Read(adapter)
				if err != nil {
					return err
				}
				if h.Arch != e.Model.HP.Arch {
					return fmt.Errorf("%s is an adapter for %q, the model is %q", adapter, h.Arch, e.Model.HP.Arch)
				}
				if ad, err = lora.NewFromHost(e.Backend, h); err != nil {
					return err
				}
				defer ad.Close()
			}
			if limit > 0 && limit < len(recs) {
				recs = recs[:limit]
			}
			bar := progressbar.NewOptions(len(recs), progressbar.OptionSetDescription("scoring"),
				progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			var lines bytes.Buffer
			var page []report.ScoredSample
			enc := json.NewEncoder(&lines)
			for i := range recs {
				s, err := e.Builder.Build(&recs[i])
				if err != nil {
					return err
				}
				var scores []train.TokenScore
				if ad != nil {
					scores, err = train.Score(e, ad, s, opt)
				} else {
					scores, err = train.Score(e, nil, s, opt)
				}
				if err != nil {
					return err
				}
				for _, sc := range scores {
					if err := enc.Encode(sc); err != nil {
						return err
					}
				}
				if html != "" && (htmlLimit <= 0 || len(page) < htmlLimit) {
					page = append(page, scoredSample(&recs[i], s, scores))
				}
				_ = bar.Add(1)
			}
			_ = bar.Finish()
			if err := fsutil.WriteFileAtomic(out, lines.Bytes()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d samples)\n", out, len(recs))
			if html != "" {
				b, err := report.ScoreHTML(page, opt.Lo, opt.Hi)
				if err != nil {
					return err
				}
				if err := fsutil.WriteFileAtomic(html, b); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", html)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&env.Model, "model", "", "GGUF text model")
	f.StringVar(&env.Mmproj, "mmproj", "", "GGUF vision projector")
	f.StringVar(&dataPath, "data", "", "LLaVA JSON or JSONL dataset")
	f.StringVar(&env.ImageDir, "image-dir", "", "folder image paths are relative to (default: the data file's folder)")
	f.StringVar(&env.Template, "template", "", "chat template name or text (default: the model's)")
	f.StringVar(&adapter, "lora", "", "LoRA adapter to score with")
	f.StringVar(&out, "out", "", "JSONL file to write, one line per supervised token")
	f.StringVar(&html, "html", "", "also write an HTML page with tokens shaded by weight")
	f.IntVar(&htmlLimit, "html-samples", 50, "most samples on the HTML page (0: all)")
	f.IntVar(&limit, "limit", 0, "score only the first N samples (0: all)")
	f.IntVar(&env.Threads, "threads", 0, "CPU threads (0: all cores)")
	f.Float64Var(&opt.Lo, "cal-lo", opt.Lo, "lower clamp of Δ")
	f.Float64Var(&opt.Hi, "cal-hi", opt.Hi, "upper clamp of Δ")
	f.IntVar(&opt.Window, "cal-window", opt.Window, "moving-average width within a run of answer tokens")
	f.BoolVar(&noSmooth, "cal-no-smooth", false, "turn the moving average off")
	return cmd
}

// scoredSample groups a sample's token scores by assistant turn for the HTML page.
func scoredSample(rec *data.Record, s *data.Sample, scores []train.TokenScore) report.ScoredSample {
	out := report.ScoredSample{ID: rec.ID}
	if len(s.Images) > 0 {
		out.Image = s.Images[0]
	}
	for _, t := range rec.Conversations {
		if t.From != "gpt" && t.From != "assistant" {
			out.Question = strings.TrimSpace(strings.ReplaceAll(t.Value, data.ImagePlaceholder, ""))
			break
		}
	}
	var run []report.ScoredToken
	prev := -2
	for _, sc := range scores {
		if sc.Pos != prev+1 && len(run) > 0 {
			out.Answers = append(out.Answers, run)
			run = nil
		}
		run = append(run, report.ScoredToken{Piece: sc.Piece, Delta: sc.Delta, Weight: sc.Weight})
		prev = sc.Pos
	}
	if len(run) > 0 {
		out.Answers = append(out.Answers, run)
	}
	return out
}
