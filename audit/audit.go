package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/calft/calft/data"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/internal/progress"
	"github.com/calft/calft/report"
	"github.com/calft/calft/train"
)

// Result is what Run found and wrote.
type Result struct {
	Samples []*Sample // most suspicious first
	Flagged int
	// Kept is the number of records written to --write-clean; ImageNote, when set, says
	// how to find the images from the clean file's folder.
	Kept      int
	ImageNote string
}

// Run is calft audit: it scores every sample of c.Data with and without its image
// (train.Scorer.ScoreProbs), rates each caption (Rate), and writes the ranked JSONL to
// c.Out, and with c.HTML a page, with c.WriteClean the dataset without the flagged
// samples. Every file appears atomically; nothing is written when a sample fails.
func Run(ctx context.Context, c Config, log io.Writer) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// Refused before any work: auditing a large dataset and then failing to write, or
	// writing over the dataset, would lose the user's time or data.
	if err := fsutil.CheckOutputs(
		[]fsutil.Path{{Flag: "--out", Path: c.Out}, {Flag: "--html", Path: c.HTML}, {Flag: "--write-clean", Path: c.WriteClean}},
		[]fsutil.Path{{Flag: "--data", Path: c.Data}, {Flag: "--model", Path: c.Model}, {Flag: "--mmproj", Path: c.Mmproj}, {Flag: "--lora", Path: c.Lora}}); err != nil {
		return nil, err
	}
	recs, err := data.Load(c.Data)
	if err != nil {
		return nil, err
	}
	sc, err := train.NewScorer(c.EnvConfig, c.Data, c.Lora, c.Options)
	if err != nil {
		return nil, err
	}
	samples, err := scoreAll(ctx, sc, recs, log)
	sc.Close()
	if err != nil {
		return nil, err
	}
	Rate(samples)
	Rank(samples, c.Tokens)
	res := &Result{Samples: samples, Flagged: Flag(samples, c.Threshold, c.Top)}
	if err := writeOutputs(c, res, len(recs)); err != nil {
		return nil, err
	}
	return res, nil
}

// scoreAll runs both passes over every record.
func scoreAll(ctx context.Context, sc *train.Scorer, recs []data.Record, log io.Writer) ([]*Sample, error) {
	out := make([]*Sample, len(recs))
	bar := progress.New(log, len(recs), "auditing")
	for i := range recs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit stopped after %d of %d samples; nothing was written", i, len(recs))
		}
		s, err := sc.Env.Builder.Build(&recs[i])
		if err != nil {
			return nil, err
		}
		scores, probs, err := sc.ScoreProbs(s)
		if err != nil {
			return nil, err
		}
		out[i] = newSample(&recs[i], s, scores, probs)
		bar.Add(1, "")
	}
	bar.Finish()
	return out, nil
}

// newSample gathers one record's token scores and probabilities.
func newSample(rec *data.Record, s *data.Sample, scores []train.TokenScore, probs []train.TokenProbs) *Sample {
	out := &Sample{ID: rec.ID, Record: rec.Line, hasImage: len(s.Images) > 0}
	if out.hasImage {
		out.Image, out.imagePath = rec.Images[0], s.Images[0]
	}
	var answers []string
	for _, t := range rec.Conversations {
		switch t.From {
		case "gpt", "assistant":
			answers = append(answers, t.Value)
		case "human", "user":
			if out.question == "" {
				out.question = strings.TrimSpace(strings.ReplaceAll(t.Value, data.ImagePlaceholder, ""))
			}
		}
	}
	out.Answer = strings.Join(answers, "\n")
	for i, ts := range scores {
		p := probs[i]
		out.inOrder = append(out.inOrder, Token{
			Pos: ts.Pos, Token: ts.Token, Piece: ts.Piece, Delta: ts.Delta, Weight: ts.Weight,
			PImg: math.Exp(p.LogPImg), PNoImg: math.Exp(p.LogPNoImg),
			Top: p.TopPiece, TopID: p.Top, PTop: math.Exp(p.LogPTop),
			lp: p.LogPImg, lpNo: p.LogPNoImg,
		})
	}
	return out
}

// writeOutputs writes the JSONL, the page and the clean dataset.
func writeOutputs(c Config, res *Result, nRecords int) error {
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	for _, s := range res.Samples {
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	if err := fsutil.WriteFileAtomic(c.Out, lines.Bytes()); err != nil {
		return err
	}
	if c.HTML != "" {
		rule := fmt.Sprintf("samples scoring %g or more are flagged", c.Threshold)
		if c.Top > 0 {
			rule = fmt.Sprintf("the %d highest-scoring samples are flagged", c.Top)
		}
		page, err := report.AuditHTML(pageSamples(res.Samples, c.HTMLSamples), c.Threshold, rule)
		if err != nil {
			return err
		}
		if err := fsutil.WriteFileAtomic(c.HTML, page); err != nil {
			return err
		}
	}
	if c.WriteClean == "" {
		return nil
	}
	drop := map[int]bool{}
	for _, s := range res.Samples {
		if s.Flagged {
			drop[s.Record-1] = true
		}
	}
	kept, err := WriteClean(c.Data, c.WriteClean, drop, nRecords)
	if err != nil {
		return err
	}
	res.Kept = kept
	dataDir, _ := filepath.Abs(filepath.Dir(c.Data))
	cleanDir, _ := filepath.Abs(filepath.Dir(c.WriteClean))
	if c.ImageDir == "" && dataDir != cleanDir {
		res.ImageNote = fmt.Sprintf("image paths in %s are relative to %s; train on it with --image-dir %s", c.WriteClean, dataDir, dataDir)
	}
	return nil
}

// pageSamples are the first n ranked samples (n = 0: all) as the page shows them.
func pageSamples(ranked []*Sample, n int) []report.AuditSample {
	if n > 0 && len(ranked) > n {
		ranked = ranked[:n]
	}
	out := make([]report.AuditSample, len(ranked))
	for i, s := range ranked {
		a := report.AuditSample{ID: s.ID, Image: s.imagePath, Question: s.question, Score: s.Score, Flagged: s.Flagged}
		var run []report.AuditToken
		for j, t := range s.inOrder {
			// A gap in the rows starts another assistant turn.
			if j > 0 && t.Pos != s.inOrder[j-1].Pos+1 {
				a.Answers, run = append(a.Answers, run), nil
			}
			run = append(run, report.AuditToken{Piece: t.Piece, Score: t.Score, Delta: t.Delta,
				PImg: t.PImg, PNoImg: t.PNoImg, Top: t.Top, PTop: t.PTop, Differs: t.TopID != t.Token})
		}
		if len(run) > 0 {
			a.Answers = append(a.Answers, run)
		}
		if len(s.Tokens) > 0 && s.Tokens[0].Score > 0 {
			w := s.Tokens[0]
			a.Worst = &report.AuditToken{Piece: w.Piece, Score: w.Score, Delta: w.Delta, PImg: w.PImg, PNoImg: w.PNoImg, Top: w.Top, PTop: w.PTop, Differs: w.TopID != w.Token}
		}
		out[i] = a
	}
	return out
}
