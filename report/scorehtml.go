// Package report renders what calft measured for people: the CAL score page and the
// demo's report.
package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"strings"
)

// ScoredToken is one supervised token with its CAL numbers.
type ScoredToken struct {
	Piece  string
	Delta  float64
	Weight float64
}

// ScoredSample is one sample of the score page.
type ScoredSample struct {
	ID       string
	Image    string // path of the (first) image, shown inline; "" for none
	Question string
	Answers  [][]ScoredToken // one list per assistant turn
}

var scorePage = template.Must(template.New("score").Funcs(template.FuncMap{
	"shade": func(w, lo, hi float64) template.CSS {
		a := 0.0
		if hi > lo {
			a = (w - lo) / (hi - lo)
		}
		a = min(max(a, 0), 1)
		return template.CSS(fmt.Sprintf("background: rgba(220, 60, 20, %.3f)", 0.08+0.82*a))
	},
	"title": func(t ScoredToken) string { return fmt.Sprintf("Δ = %.3f, weight = %.3f", t.Delta, t.Weight) },
	"img":   inlineImage,
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>calft score: which words depend on the image</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
.sample { display: flex; gap: 1.2rem; border-top: 1px solid #ddd; padding: 1rem 0; }
.sample img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
.tok { white-space: pre-wrap; border-radius: 3px; padding: 1px 0; font-family: ui-monospace, monospace; }
.q { color: #666; margin: 0 0 .4rem; }
.legend span { padding: 2px 6px; font-family: ui-monospace, monospace; }
</style></head><body>
<h1>Which answer words depend on the image</h1>
<p>Each supervised token is shaded by its CAL weight w = smoothed clamp(Δ, {{.Lo}}, {{.Hi}}), where
Δ is the target token's logit with the image minus its logit with the image hidden. Darker: the
model needs the image to predict it. Hover a token for Δ and w.</p>
<p class="legend">weight: <span style="{{shade .Lo .Lo .Hi}}">{{.Lo}}</span> <span style="{{shade .Mid .Lo .Hi}}">{{.Mid}}</span> <span style="{{shade .Hi .Lo .Hi}}">{{.Hi}}</span></p>
{{range .Samples}}<div class="sample">
{{if .Image}}<img src="{{img .Image}}" alt="image of {{.ID}}">{{end}}
<div><p class="q"><b>{{.ID}}</b> — {{.Question}}</p>
{{range .Answers}}<p>{{range .}}<span class="tok" style="{{shade .Weight $.Lo $.Hi}}" title="{{title .}}">{{.Piece}}</span>{{end}}</p>{{end}}
</div></div>
{{end}}</body></html>
`))

// inlineImage turns an image file into a data URL (empty when unreadable).
func inlineImage(path string) template.URL {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	mime := "image/png"
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jpg", ".jpeg":
		mime = "image/jpeg"
	case ".gif":
		mime = "image/gif"
	case ".webp":
		mime = "image/webp"
	case ".bmp":
		mime = "image/bmp"
	}
	return template.URL("data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(raw))
}

// ScoreHTML renders the score page; lo and hi are the clamp range of the weights.
func ScoreHTML(samples []ScoredSample, lo, hi float64) ([]byte, error) {
	var b bytes.Buffer
	err := scorePage.Execute(&b, struct {
		Samples     []ScoredSample
		Lo, Mid, Hi float64
	}{samples, lo, (lo + hi) / 2, hi})
	return b.Bytes(), err
}
