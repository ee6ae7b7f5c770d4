package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/data"
)

// TestQuickDemo runs `calft demo --quick` end to end and checks what it must show:
// reports written, adapters exported, both objectives far above chance.
func TestQuickDemo(t *testing.T) {
	o := DefaultOptions(true)
	o.Out = t.TempDir()
	rep, err := Run(context.Background(), o, nil)
	if err != nil {
		t.Fatal(err)
	}
	var term bytes.Buffer
	if err := Finish(rep, &term); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "plot.png", "score.html"} {
		if st, err := os.Stat(filepath.Join(o.Out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	if len(rep.Results) != 3*o.Seeds { // ce, cal, ce-clean
		t.Fatalf("%d results for %d seeds", len(rep.Results), o.Seeds)
	}
	for _, r := range rep.Results {
		if _, err := os.Stat(r.Adapter); err != nil {
			t.Errorf("adapter %s: %v", r.Adapter, err)
		}
	}
	// Chance: colour 1/4, shape 1/3, position 1/2.
	for _, obj := range []string{"ce", "cal"} {
		c, _ := meanStd(rep.Results, obj, func(r Result) float64 { return r.ColorAcc })
		s, _ := meanStd(rep.Results, obj, func(r Result) float64 { return r.ShapeAcc })
		p, _ := meanStd(rep.Results, obj, func(r Result) float64 { return r.PosAcc })
		t.Logf("%s: colour %.2f, shape %.2f, position %.2f", obj, c, s, p)
		if c < 0.6 || s < 0.7 || p < 0.8 {
			t.Errorf("%s did not learn the task far above chance: colour %.2f, shape %.2f, position %.2f", obj, c, s, p)
		}
	}
	// What the demo shows: CAL gives the image's colour more probability than ce does
	// (the full demo's figures: 0.476 ± 0.025 against 0.412 ± 0.014).
	ceP, _ := meanStd(rep.Results, "ce", func(r Result) float64 { return r.ColorProb })
	calP, _ := meanStd(rep.Results, "cal", func(r Result) float64 { return r.ColorProb })
	t.Logf("P(true colour): ce %.3f, cal %.3f", ceP, calP)
	if calP < ceP {
		t.Errorf("cal's P(true colour) %.3f is below ce's %.3f", calP, ceP)
	}
	// ce on the captions the audit kept learns the true colours better than ce on all of
	// them (the full demo: 0.681 ± 0.021 against 0.412 ± 0.014).
	cleanP, _ := meanStd(rep.Results, "ce-clean", func(r Result) float64 { return r.ColorProb })
	t.Logf("P(true colour): ce on the audit's clean captions %.3f", cleanP)
	if cleanP < ceP {
		t.Errorf("ce-clean's P(true colour) %.3f is below ce's %.3f", cleanP, ceP)
	}
	checkAudits(t, rep)
	md, _ := os.ReadFile(filepath.Join(o.Out, "report.md"))
	if !strings.Contains(string(md), "| cal |") || !strings.Contains(string(md), "calft audit") || !strings.Contains(term.String(), "question:") {
		t.Errorf("report or terminal example incomplete")
	}
	t.Logf("quick demo took %.0fs\n%s", rep.Seconds, rep.Table())
}

// checkAudits: calft audit with each seed's warm-up adapter finds the corrupted captions
// (the bars: AUROC ≥ 0.95, precision ≥ 0.9 at the true count; the quick demo
// measured 1.000 and 1.00 on both seeds), flags few of the clean held-out captions, and
// its clean data is the training data minus what it flagged.
func checkAudits(t *testing.T, rep *Report) {
	t.Helper()
	var truth []Corruption
	raw, err := os.ReadFile(filepath.Join(rep.Opt.Out, "task", "train", "corrupted.json"))
	if err != nil || json.Unmarshal(raw, &truth) != nil || len(truth) == 0 {
		t.Fatalf("task/train/corrupted.json: %v, %d records", err, len(truth))
	}
	if len(rep.Audits) != rep.Opt.Seeds {
		t.Fatalf("%d audits for %d seeds", len(rep.Audits), rep.Opt.Seeds)
	}
	all, err := data.Load(filepath.Join(rep.Opt.Out, "task", "train", "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range rep.Audits {
		t.Logf("seed %d audit: AUROC %.3f, precision %.3f at %d; %d flagged (precision %.3f, recall %.3f); held-out flagged %.1f%%",
			a.Seed, a.AUROC, a.PrecAtK, a.K, a.Flagged, a.Precision, a.Recall, 100*a.HeldRate)
		if a.K != len(truth) || a.AUROC < 0.98 || a.PrecAtK < 0.95 || a.Precision < 0.95 || a.Recall < 0.9 || a.HeldRate > 0.1 {
			t.Errorf("seed %d: the audit missed its bars with a margin (AUROC ≥ 0.98, precision at K and at the threshold ≥ 0.95, recall ≥ 0.9, held-out flagged ≤ 10%%)", a.Seed)
		}
		clean, err := data.Load(a.Clean)
		if err != nil {
			t.Fatal(err)
		}
		if len(clean) != len(all)-a.Flagged {
			t.Errorf("seed %d: %d clean records, %d − %d flagged", a.Seed, len(clean), len(all), a.Flagged)
		}
	}
}
