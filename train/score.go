package train

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/internal/progress"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
	"github.com/calft/calft/report"
)

// ScoreConfig is every option of calft score, declared once (see Config).
type ScoreConfig struct {
	EnvConfig   `mapstructure:",squash"`
	cal.Options `mapstructure:",squash"`

	Data        string `mapstructure:"data" help:"LLaVA JSON or JSONL dataset (required)"`
	Lora        string `mapstructure:"lora" help:"LoRA adapter to score with (a llama.cpp adapter GGUF or a PEFT folder)"`
	Out         string `mapstructure:"out" help:"JSONL file to write, one line per supervised token (required)"`
	HTML        string `mapstructure:"html" help:"also write an HTML page with every answer's tokens shaded by weight"`
	HTMLSamples int    `mapstructure:"html-samples" help:"most samples on the HTML page (0: all)"`
	Limit       int    `mapstructure:"limit" help:"score only the first N samples (0: all)"`
}

// DefaultScore are score's defaults.
func DefaultScore() ScoreConfig {
	return ScoreConfig{EnvConfig: DefaultEnv(), Options: cal.Defaults(), HTMLSamples: 50}
}

// Validate reports options that cannot work, with the fix.
func (c *ScoreConfig) Validate() error {
	errs := c.EnvConfig.Validate()
	if c.Data == "" {
		errs = append(errs, "--data is required (LLaVA JSON or JSONL)")
	}
	if c.Out == "" {
		errs = append(errs, "--out is required (the JSONL file to write)")
	}
	if c.Mmproj == "" {
		errs = append(errs, "--mmproj is required: without images there is nothing to contrast")
	}
	if err := c.Options.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if c.Limit < 0 || c.HTMLSamples < 0 {
		errs = append(errs, "--limit and --html-samples must not be negative (0: all)")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid options:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// TokenScore is the CAL view of one supervised token: one line of score's JSONL.
type TokenScore struct {
	ID         string  `json:"id"`
	Pos        int     `json:"pos"`   // row of the target token in the sample's sequence
	Token      int32   `json:"token"` // target token id
	Piece      string  `json:"piece"`
	LogitImg   float64 `json:"logit_img"`
	LogitNoImg float64 `json:"logit_noimg"`
	Delta      float64 `json:"delta"`
	Weight     float64 `json:"weight"`
}

// ScoreResult says what ScoreData wrote.
type ScoreResult struct {
	Samples, Tokens int
}

// ScoreData is calft score: it runs every sample of the dataset through both passes —
// with the image, and with the image hidden from the text at unchanged positions — and
// writes one JSON line per supervised token (TokenScore) to c.Out and, with c.HTML, a
// page shading each answer's tokens by weight. Both files appear atomically.
func ScoreData(ctx context.Context, c ScoreConfig, log io.Writer) (*ScoreResult, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// Refused before any work: scoring a large dataset and then failing to write, or
	// writing over the dataset, would lose the user's time or data.
	if err := fsutil.CheckOutputs([]fsutil.Path{{Flag: "--out", Path: c.Out}, {Flag: "--html", Path: c.HTML}},
		[]fsutil.Path{{Flag: "--data", Path: c.Data}, {Flag: "--model", Path: c.Model}, {Flag: "--mmproj", Path: c.Mmproj}, {Flag: "--lora", Path: c.Lora}}); err != nil {
		return nil, err
	}
	recs, err := data.Load(c.Data)
	if err != nil {
		return nil, err
	}
	if c.Limit > 0 && c.Limit < len(recs) {
		recs = recs[:c.Limit]
	}
	sc, err := NewScorer(c.EnvConfig, c.Data, c.Lora, c.Options)
	if err != nil {
		return nil, err
	}
	defer sc.Close()
	var lines bytes.Buffer
	var page []report.ScoredSample
	res := &ScoreResult{}
	enc := json.NewEncoder(&lines)
	bar := progress.New(log, len(recs), "scoring")
	for i := range recs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scoring stopped after %d of %d samples; %s was not written", i, len(recs), c.Out)
		}
		s, scores, err := sc.ScoreRecord(&recs[i])
		if err != nil {
			return nil, err
		}
		for _, ts := range scores {
			if err := enc.Encode(ts); err != nil {
				return nil, err
			}
		}
		res.Tokens += len(scores)
		if c.HTML != "" && (c.HTMLSamples <= 0 || len(page) < c.HTMLSamples) {
			page = append(page, scoredSample(&recs[i], s, scores))
		}
		bar.Add(1, "")
	}
	bar.Finish()
	res.Samples = len(recs)
	if err := fsutil.WriteFileAtomic(c.Out, lines.Bytes()); err != nil {
		return nil, err
	}
	if c.HTML != "" {
		b, err := report.ScoreHTML(page, c.Lo, c.Hi)
		if err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(c.HTML, b); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Scorer computes CAL's Δ and weights of samples with the model's own F32 weights (so
// the Δ it reports is exact) and an optional adapter.
type Scorer struct {
	Env    *Env
	ad     *lora.Adapter
	graphs *graphCache
}

// NewScorer opens the model files; dataPath sets where images are found by default,
// adapter ("" for none) is applied.
func NewScorer(e EnvConfig, dataPath, adapter string, opt cal.Options) (*Scorer, error) {
	imageDir := e.ImageDir
	if imageDir == "" {
		imageDir = data.DefaultImageDir(dataPath)
	}
	env, err := OpenEnv(EnvOptions{Model: e.Model, Mmproj: e.Mmproj, Template: e.Template, ImageDir: imageDir,
		CacheDir: cacheDir(e.CacheDir), Threads: e.Threads, Backend: e.Backend, MaxRows: e.MaxRows})
	if err != nil {
		return nil, err
	}
	sc := &Scorer{Env: env}
	dec := &llava.Decoder{HP: env.Model.HP, W: &env.Model.W}
	if adapter != "" {
		if sc.ad, err = env.LoadAdapter(adapter); err != nil {
			env.Close()
			return nil, err
		}
		dec.Adapter = sc.ad
	}
	sc.graphs = newGraphCache(env.Backend, dec, nil, opt)
	return sc, nil
}

// Close frees the scorer.
func (sc *Scorer) Close() {
	sc.graphs.close()
	if sc.ad != nil {
		sc.ad.Close()
	}
	sc.Env.Close()
}

// ScoreRecord builds a record into a sample and scores its supervised tokens.
func (sc *Scorer) ScoreRecord(rec *data.Record) (*data.Sample, []TokenScore, error) {
	s, err := sc.Env.Builder.Build(rec)
	if err != nil {
		return nil, nil, err
	}
	scores, err := sc.Score(s)
	return s, scores, err
}

// Score runs the image-present and image-absent passes over one sample and returns Δ
// and the CAL weight of every supervised token.
func (sc *Scorer) Score(s *data.Sample) ([]TokenScore, error) {
	seq, err := sc.Env.Sequence(s)
	if err != nil {
		return nil, err
	}
	b := &llava.Batch{Seqs: []llava.Sequence{seq}}
	rows, targets, _ := s.Scored(0, 0)
	if len(rows) == 0 {
		return nil, nil
	}
	g, err := sc.graphs.get(Shape{Rows: b.Rows(), Scored: len(rows), Obj: cal.CAL, Hidden: HiddenFor(b), Kept: KeptFor(b)})
	if err != nil {
		return nil, err
	}
	if _, err := g.Run(b, rows, targets); err != nil {
		return nil, fmt.Errorf("sample %s: %w", s.ID, err)
	}
	zi, zn := g.Loss.ZImg.F32(), g.Loss.ZNoImg.F32()
	delta, w := g.Loss.Delta.F32(), g.Loss.Weight.F32()
	out := make([]TokenScore, len(rows))
	for i, r := range rows {
		piece, err := sc.Env.Vocab.TokenToPiece(targets[i].Token, true)
		if err != nil {
			return nil, err
		}
		out[i] = TokenScore{
			ID: s.ID, Pos: int(r) + 1, Token: targets[i].Token, Piece: piece,
			LogitImg: float64(zi[i]), LogitNoImg: float64(zn[i]), Delta: float64(delta[i]), Weight: float64(w[i]),
		}
	}
	return out, nil
}

// scoredSample groups a sample's token scores by assistant turn for the HTML page.
func scoredSample(rec *data.Record, s *data.Sample, scores []TokenScore) report.ScoredSample {
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
