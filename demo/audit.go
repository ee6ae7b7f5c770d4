package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/calft/calft/audit"
	"github.com/calft/calft/internal/fsutil"
)

// AuditResult is how well calft audit, run with one seed's warm-up adapter, finds the
// captions the demo corrupted.
type AuditResult struct {
	Seed    int
	AUROC   float64 // corrupted versus clean training captions
	K       int     // corrupted training captions
	PrecAtK float64 // precision of the K highest scores
	// At the default --threshold: training captions flagged, their precision and recall,
	// the fraction of the clean held-out captions flagged, and the cleaned dataset.
	Flagged           int
	Precision, Recall float64
	HeldRate          float64
	Clean             string
}

// writeTruth writes the corrupted training captions next to the task's data.json.
func writeTruth(dir string, items []item) error {
	b, err := json.MarshalIndent(corruptions("train", items), "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, "corrupted.json"), append(b, '\n'))
}

// auditSeed audits the training and held-out captions with a seed's warm-up adapter
// (out/…/seedN/audit/{train,heldout}.jsonl, train.html) and writes the training data
// without the flagged captions beside data.json (clean-seedN.json).
func auditSeed(ctx context.Context, rep *Report, seed int, adapter string, items []item) (AuditResult, error) {
	dir := filepath.Join(filepath.Dir(filepath.Dir(adapter)), "audit")
	trainData := filepath.Join(rep.Opt.Out, "task", "train", "data.json")
	c := audit.Defaults()
	c.Model, c.Mmproj, c.Lora, c.Threads, c.Backend, c.CacheDir = rep.Model, rep.Mmproj, adapter, rep.Opt.Threads, rep.Opt.Backend, "none"
	c.Data, c.Out, c.HTML, c.HTMLSamples = trainData, filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "train.html"), 40
	clean := filepath.Join(filepath.Dir(trainData), fmt.Sprintf("clean-seed%d.json", seed))
	c.WriteClean = clean
	tr, err := audit.Run(ctx, c, nil)
	if err != nil {
		return AuditResult{}, fmt.Errorf("seed %d audit: %w", seed, err)
	}
	c.Data, c.Out, c.HTML, c.WriteClean = filepath.Join(rep.HeldDir, "data.json"), filepath.Join(dir, "heldout.jsonl"), "", ""
	held, err := audit.Run(ctx, c, nil)
	if err != nil {
		return AuditResult{}, fmt.Errorf("seed %d audit of the held-out captions: %w", seed, err)
	}
	r := AuditResult{Seed: seed, Flagged: tr.Flagged, Clean: clean}
	scores, noisy := make([]float64, len(tr.Samples)), make([]bool, len(tr.Samples))
	hits := 0
	for i, s := range tr.Samples {
		scores[i], noisy[i] = s.Score, items[s.Record-1].Noisy
		if noisy[i] {
			r.K++
			if s.Flagged {
				hits++
			}
		}
	}
	r.AUROC, r.PrecAtK = audit.AUROC(scores, noisy), audit.PrecisionAtK(scores, noisy, r.K)
	r.Precision, r.Recall = ratio(hits, r.Flagged), ratio(hits, r.K)
	r.HeldRate = ratio(held.Flagged, len(held.Samples))
	return r, nil
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// auditMarkdown is report.md's section on calft audit.
func (rep *Report) auditMarkdown() string {
	if len(rep.Audits) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Finding the corrupted captions: calft audit\n\n")
	fmt.Fprintf(&b, "`calft audit` with each seed's ce warm-up adapter (trained on the noisy captions) ranks the\n"+
		"training captions by how strongly their images contradict them (see the README's *calft audit*).\n"+
		"The demo knows which captions it corrupted (`task/train/corrupted.json`). AUROC: corrupted versus\n"+
		"clean captions; precision at K: the share of corrupted captions among the K highest scores, K being\n"+
		"the number corrupted. At the default threshold (%g): captions flagged, their precision and recall,\n"+
		"and the share of the held-out captions (all correct) flagged when audited on their own.\n\n", audit.DefaultThreshold)
	b.WriteString("| seed | AUROC | precision at K | K | flagged | precision | recall | held-out flagged |\n|---|---|---|---|---|---|---|---|\n")
	for _, a := range rep.Audits {
		fmt.Fprintf(&b, "| %d | %.3f | %.3f | %d | %d | %.3f | %.3f | %.1f%% |\n",
			a.Seed, a.AUROC, a.PrecAtK, a.K, a.Flagged, a.Precision, a.Recall, 100*a.HeldRate)
	}
	b.WriteString("\nEach seed's ranking with the images and the flagged words: `runs/seedN/audit/train.html`; the\n" +
		"training data without the flagged captions: `task/train/clean-seedN.json`.\n\n")
	prob := func(r Result) float64 { return r.ColorProb }
	loss := func(r Result) float64 { return r.ValLoss }
	if slices.Contains(rep.objectives(), "ce-clean") {
		fmt.Fprintf(&b, "Training on the cleaned captions (`ce-clean`, the same ce steps from the warm-up adapter):\n\n")
		b.WriteString("| objective | P(true colour) | held-out loss |\n|---|---|---|\n")
		for _, obj := range rep.objectives() {
			p, ps := meanStd(rep.Results, obj, prob)
			l, ls := meanStd(rep.Results, obj, loss)
			fmt.Fprintf(&b, "| %s | %.3f ± %.3f | %.3f ± %.3f |\n", obj, p, ps, l, ls)
		}
		b.WriteString("\n")
	}
	return b.String()
}
