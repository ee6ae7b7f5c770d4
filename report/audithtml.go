package report

import (
	"bytes"
	"fmt"
	"html/template"
)

// AuditToken is one supervised token on the audit page.
type AuditToken struct {
	Piece        string
	Score        float64 // how strongly the image contradicts it (nats)
	Delta        float64
	PImg, PNoImg float64
	Top          string // the model's image-present choice
	PTop         float64
	Differs      bool // Top is not this token
}

// AuditSample is one sample of the audit page.
type AuditSample struct {
	ID       string
	Image    string // path of the (first) image; "" for none
	Question string
	Score    float64
	Flagged  bool
	Answers  [][]AuditToken // one list per assistant turn
	Worst    *AuditToken    // the most suspicious token, when one scores above 0
}

var auditPage = template.Must(template.New("audit").Funcs(template.FuncMap{
	"shade": func(score, threshold float64) template.CSS {
		a := 0.0
		if threshold > 0 {
			a = score / threshold
		}
		a = min(max(a, 0), 1)
		if score >= threshold {
			return "background: rgba(200, 30, 30, 0.85); color: #fff; font-weight: bold"
		}
		return template.CSS(fmt.Sprintf("background: rgba(220, 60, 20, %.3f)", 0.6*a))
	},
	"title": func(t AuditToken) string {
		return fmt.Sprintf("score %.2f, Δ = %.2f, P(with image) = %.3f, P(without) = %.3f; with the image the model says %q (P = %.3f)",
			t.Score, t.Delta, t.PImg, t.PNoImg, t.Top, t.PTop)
	},
	"img": inlineImage,
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>calft audit: captions the image contradicts</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
.sample { display: flex; gap: 1.2rem; border-top: 1px solid #ddd; padding: 1rem 0; }
.sample img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
.tok { white-space: pre-wrap; border-radius: 3px; padding: 1px 0; font-family: ui-monospace, monospace; }
.q, .why { color: #666; margin: .2rem 0; }
.flag { color: #fff; background: #b22; border-radius: 3px; padding: 0 .4rem; font-size: .85rem; }
</style></head><body>
<h1>Captions the image contradicts</h1>
<p>Samples ranked by their audit score, most suspicious first. A word's score is how much less
likely the model, seeing the image, finds it than it usually finds that word in this dataset,
and how much less the image supports it than usual (the smaller of the two, in nats). A sample
scores its worst word; {{.Rule}}. Words scoring {{.Threshold}} or more are in red; hover a word
for its numbers.</p>
{{range .Samples}}<div class="sample">
{{if .Image}}<img src="{{img .Image}}" alt="image of {{.ID}}">{{end}}
<div><p class="q"><b>{{.ID}}</b> — score {{printf "%.2f" .Score}} {{if .Flagged}}<span class="flag">flagged</span>{{end}}{{if .Question}} — {{.Question}}{{end}}</p>
{{range .Answers}}<p>{{range .}}<span class="tok" style="{{shade .Score $.Threshold}}" title="{{title .}}">{{.Piece}}</span>{{end}}</p>{{end}}
{{with .Worst}}<p class="why">“{{.Piece}}”: P = {{printf "%.3f" .PImg}} with the image, {{printf "%.3f" .PNoImg}} without (Δ = {{printf "%.2f" .Delta}}){{if .Differs}}; seeing the image the model says “{{.Top}}” (P = {{printf "%.3f" .PTop}}){{end}}</p>{{end}}
</div></div>
{{end}}</body></html>
`))

// AuditHTML renders the audit page; words scoring threshold or more are marked, and rule
// says in words which samples were flagged.
func AuditHTML(samples []AuditSample, threshold float64, rule string) ([]byte, error) {
	var b bytes.Buffer
	err := auditPage.Execute(&b, struct {
		Samples   []AuditSample
		Threshold float64
		Rule      string
	}{samples, threshold, rule})
	return b.Bytes(), err
}
