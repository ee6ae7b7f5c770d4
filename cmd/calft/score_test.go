package main

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScoreWritesJSONLAndHTML(t *testing.T) {
	d := tinyDir(t)
	out, html := filepath.Join(t.TempDir(), "s.jsonl"), filepath.Join(t.TempDir(), "s.html")
	msg, code := run(t, "score", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--data", filepath.Join(d, "data.json"), "--out", out, "--html", html)
	if code != 0 {
		t.Fatalf("score: exit %d\n%s", code, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			ID                             string
			Pos                            int
			Token                          int32
			Piece                          string
			LogitImg, LogitNoImg, Delta, W float64
		}
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "pos", "token", "piece", "logit_img", "logit_noimg", "delta", "weight"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("line %d has no %q: %s", n+1, k, sc.Text())
			}
		}
		l.ID, l.Piece = raw["id"].(string), raw["piece"].(string)
		l.LogitImg, l.LogitNoImg, l.Delta, l.W = raw["logit_img"].(float64), raw["logit_noimg"].(float64), raw["delta"].(float64), raw["weight"].(float64)
		if math.Abs(l.LogitImg-l.LogitNoImg-l.Delta) > 1e-4 {
			t.Errorf("line %d: delta %v ≠ %v − %v", n+1, l.Delta, l.LogitImg, l.LogitNoImg)
		}
		if l.W < 1-1e-6 || l.W > 5+1e-6 {
			t.Errorf("line %d: weight %v outside [1, 5]", n+1, l.W)
		}
		ids[l.ID] = true
		n++
	}
	if n < 100 || len(ids) != 24 {
		t.Fatalf("%d lines for %d samples; want every supervised token of the 24 samples", n, len(ids))
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `class="tok"`) || !strings.Contains(string(page), "data:image/png;base64") {
		t.Errorf("the HTML page lacks shaded tokens or images")
	}
}

func TestBenchTinyPrintsJSON(t *testing.T) {
	for _, obj := range []string{"ce", "cal"} {
		out, code := run(t, "bench", "--preset", "tiny", "--objective", obj, "--steps", "3", "--warmup", "1", "--profile")
		if code != 0 {
			t.Fatalf("bench: exit %d\n%s", code, out)
		}
		line := out[:strings.Index(out, "\n")]
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("bench did not print a JSON line first: %v\n%s", err, out)
		}
		for _, k := range []string{"s_per_step", "tokens_per_s", "step_gflop", "gflop_per_s", "f32_mul_mat_gflop_per_s", "ratio_to_mul_mat", "peak_rss_mb", "profile_ms"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: no %q in %s", obj, k, line)
			}
		}
		if _, ok := r["cal_over_ce"]; ok != (obj == "cal") {
			t.Errorf("%s: cal_over_ce present = %v", obj, ok)
		}
		if !strings.Contains(out, "backward OUT_PROD") {
			t.Errorf("the profile does not break the step down by op:\n%s", out)
		}
	}
}
