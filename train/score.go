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
	return ScoreShared(ctx, Single, c, log)
}

// ScoreShared is ScoreData as a rank of a data-parallel job: rank k of n scores every
// n-th record from the k-th, and rank 0 writes the files in the input order, the same
// bytes one process writes.
func ScoreShared(ctx context.Context, comm Comm, c ScoreConfig, log io.Writer) (*ScoreResult, error) {
	if err := agree(comm, c.Validate()); err != nil {
		return nil, err
	}
	// Refused before any work: scoring a large dataset and then failing to write, or
	// writing over the dataset, would lose the user's time or data.
	var err error
	if comm.Rank() == 0 {
		err = fsutil.CheckOutputs([]fsutil.Path{{Flag: "--out", Path: c.Out}, {Flag: "--html", Path: c.HTML}},
			[]fsutil.Path{{Flag: "--data", Path: c.Data}, {Flag: "--model", Path: c.Model}, {Flag: "--mmproj", Path: c.Mmproj}, {Flag: "--lora", Path: c.Lora}})
	}
	if err := agree(comm, err); err != nil {
		return nil, err
	}
	recs, err := data.Load(c.Data)
	if err == nil && c.Limit > 0 && c.Limit < len(recs) {
		recs = recs[:c.Limit]
	}
	var sc *Scorer
	if err == nil {
		sc, err = NewScorer(c.EnvConfig, c.Data, c.Lora, c.Options)
	}
	if err := agree(comm, err); err != nil {
		if sc != nil {
			sc.Close()
		}
		return nil, err
	}
	defer sc.Close()
	mine, err := scoreShard(ctx, comm, sc, recs, &c, log)
	if err := agree(comm, err); err != nil {
		return nil, err
	}
	all, err := gatherScores(comm, mine)
	if err != nil {
		return nil, err
	}
	res := &ScoreResult{Samples: len(recs)}
	if comm.Rank() == 0 {
		err = writeScores(&c, all, res)
	}
	return res, agree(comm, err)
}

// scoredRecord is what scoring one record gives: its JSON lines and, for the HTML
// page, its shaded answers.
type scoredRecord struct {
	Index  int
	Lines  []byte
	Tokens int
	Page   *report.ScoredSample
}

// scoreShard scores this rank's records (all of them alone), in order.
func scoreShard(ctx context.Context, comm Comm, sc *Scorer, recs []data.Record, c *ScoreConfig, log io.Writer) ([]scoredRecord, error) {
	n, k := comm.Size(), comm.Rank()
	var out []scoredRecord
	bar := progress.New(log, (len(recs)-k+n-1)/n, "scoring")
	for i := k; i < len(recs); i += n {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scoring stopped after %d of %d samples; %s was not written", len(out), len(recs), c.Out)
		}
		s, scores, err := sc.ScoreRecord(&recs[i])
		if err != nil {
			return nil, err
		}
		var lines bytes.Buffer
		enc := json.NewEncoder(&lines)
		for _, ts := range scores {
			if err := enc.Encode(ts); err != nil {
				return nil, err
			}
		}
		sr := scoredRecord{Index: i, Lines: lines.Bytes(), Tokens: len(scores)}
		if c.HTML != "" && (c.HTMLSamples <= 0 || i < c.HTMLSamples) {
			p := scoredSample(&recs[i], s, scores)
			sr.Page = &p
		}
		out = append(out, sr)
		bar.Add(1, "")
	}
	bar.Finish()
	return out, nil
}

// writeScores writes the records' lines and page, in the input order.
func writeScores(c *ScoreConfig, all []scoredRecord, res *ScoreResult) error {
	var lines bytes.Buffer
	var page []report.ScoredSample
	for _, sr := range all {
		lines.Write(sr.Lines)
		res.Tokens += sr.Tokens
		if sr.Page != nil {
			page = append(page, *sr.Page)
		}
	}
	if err := fsutil.WriteFileAtomic(c.Out, lines.Bytes()); err != nil {
		return err
	}
	if c.HTML == "" {
		return nil
	}
	b, err := report.ScoreHTML(page, c.Lo, c.Hi)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(c.HTML, b)
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
	out, _, err := sc.score(s, false)
	return out, err
}

// score is Score, also returning the computed graph (nil when nothing is supervised).
// With probs the graph reads back what ScoreProbs needs, and its image-absent pass
// computes every row's full logits.
func (sc *Scorer) score(s *data.Sample, probs bool) ([]TokenScore, *StepGraph, error) {
	seq, err := sc.Env.Sequence(s)
	if err != nil {
		return nil, nil, err
	}
	b := &llava.Batch{Seqs: []llava.Sequence{seq}}
	rows, targets, _ := s.Scored(0, 0)
	if len(rows) == 0 {
		return nil, nil, nil
	}
	sh := Shape{Rows: b.Rows(), Scored: len(rows), Obj: cal.CAL, Hidden: HiddenFor(b), Kept: KeptFor(b)}
	if probs {
		sh.Hidden, sh.Kept, sh.Probs = 0, 0, true
	}
	g, err := sc.graphs.get(sh)
	if err != nil {
		return nil, nil, err
	}
	if _, err := g.Run(b, rows, targets); err != nil {
		return nil, nil, fmt.Errorf("sample %s: %w", s.ID, err)
	}
	zi, zn := g.Loss.ZImg.F32(), g.Loss.ZNoImg.F32()
	delta, w := g.Loss.Delta.F32(), g.Loss.Weight.F32()
	out := make([]TokenScore, len(rows))
	for i, r := range rows {
		piece, err := sc.Env.Vocab.TokenToPiece(targets[i].Token, true)
		if err != nil {
			return nil, nil, err
		}
		out[i] = TokenScore{
			ID: s.ID, Pos: int(r) + 1, Token: targets[i].Token, Piece: piece,
			LogitImg: float64(zi[i]), LogitNoImg: float64(zn[i]), Delta: float64(delta[i]), Weight: float64(w[i]),
		}
	}
	return out, g, nil
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
