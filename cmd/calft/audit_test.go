package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auditLine is what the test reads of a line of audit's JSONL.
type auditLine struct {
	ID      string           `json:"id"`
	Record  int              `json:"record"`
	Score   *float64         `json:"score"`
	Flagged bool             `json:"flagged"`
	Tokens  []map[string]any `json:"tokens"`
}

func readAudit(t *testing.T, path string) []auditLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// TestAuditWritesRankingPageAndCleanData audits the tiny dataset (an untrained model:
// the ranking means nothing, the files' shapes do) in both input formats.
func TestAuditWritesRankingPageAndCleanData(t *testing.T) {
	d := tinyDir(t)
	dataPath := filepath.Join(d, "data.json")
	var recs []json.RawMessage
	raw, _ := os.ReadFile(dataPath)
	if err := json.Unmarshal(raw, &recs); err != nil {
		t.Fatal(err)
	}
	var jsonl strings.Builder
	for _, r := range recs {
		var v any
		json.Unmarshal(r, &v)
		b, _ := json.Marshal(v)
		jsonl.Write(append(b, '\n'))
	}
	jsonlPath := filepath.Join(d, "data.jsonl")
	os.WriteFile(jsonlPath, []byte(jsonl.String()), 0o644)
	for _, in := range []string{dataPath, jsonlPath} {
		tmp := t.TempDir()
		out, html, clean := filepath.Join(tmp, "a.jsonl"), filepath.Join(tmp, "a.html"), filepath.Join(d, "clean"+filepath.Ext(in))
		msg, code := run(t, "audit", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
			"--data", in, "--cache-dir", "none", "--out", out, "--html", html, "--write-clean", clean, "--top", "5", "--tokens", "2")
		if code != 0 {
			t.Fatalf("audit: exit %d\n%s", code, msg)
		}
		lines := readAudit(t, out)
		if len(lines) != len(recs) {
			t.Fatalf("%d lines for %d records", len(lines), len(recs))
		}
		drop := map[int]bool{}
		for i, l := range lines {
			if l.Score == nil || l.ID == "" || l.Record < 1 || (i > 0 && *l.Score > *lines[i-1].Score) {
				t.Fatalf("line %d: %+v (not ranked, or fields missing)", i+1, l)
			}
			if l.Flagged != (i < 5) {
				t.Errorf("line %d flagged = %v with --top 5", i+1, l.Flagged)
			}
			if l.Flagged {
				drop[l.Record-1] = true
			}
			for _, tok := range l.Tokens {
				for _, k := range []string{"piece", "score", "delta", "p_img", "p_noimg", "top", "p_top"} {
					if _, ok := tok[k]; !ok {
						t.Fatalf("line %d: a token has no %q: %v", i+1, k, tok)
					}
				}
			}
			if len(l.Tokens) > 2 || (len(l.Tokens) == 0 && *l.Score != 0) {
				t.Errorf("line %d: %d tokens with --tokens 2", i+1, len(l.Tokens))
			}
		}
		// The clean file is the input without the flagged records, each record as it was.
		var want []any
		for i, r := range recs {
			if !drop[i] {
				var v any
				json.Unmarshal(r, &v)
				want = append(want, v)
			}
		}
		got := readRecords(t, clean)
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if string(wb) != string(gb) {
			t.Errorf("%s: the clean file is not the input minus the 5 flagged records", in)
		}
		page, _ := os.ReadFile(html)
		if !strings.Contains(string(page), "data:image/png;base64") || !strings.Contains(string(page), `class="tok"`) {
			t.Errorf("the page lacks images or tokens")
		}
	}
}

// readRecords reads a JSON array or JSONL file as generic records.
func readRecords(t *testing.T, path string) []any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "[") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var v any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

// TestAuditBadInput: every mistake ends with exit code 1 and a message naming it, and
// no input is touched.
func TestAuditBadInput(t *testing.T) {
	d := tinyDir(t)
	base, mmproj, dataPath := filepath.Join(d, "base.gguf"), filepath.Join(d, "mmproj.gguf"), filepath.Join(d, "data.json")
	sum := fileSum(t, dataPath)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "a.jsonl")
	args := func(extra ...string) []string {
		return append([]string{"audit", "--model", base, "--mmproj", mmproj, "--data", dataPath, "--cache-dir", "none", "--out", out}, extra...)
	}
	expectRefusal(t, []string{"--write-clean", "--data"}, args("--write-clean", dataPath)...)
	expectRefusal(t, []string{"--write-clean", "--data"}, args("--write-clean", filepath.Join(d, "images", "..", "data.json"))...)
	expectRefusal(t, []string{"--out", "--data"}, append(args(), "--out", dataPath)...)
	expectRefusal(t, []string{"--out", "--html", "both"}, args("--html", out)...)
	expectRefusal(t, []string{"--write-clean", "--out", "both"}, args("--write-clean", out)...)
	expectRefusal(t, []string{"no-such.json"}, append(args(), "--data", filepath.Join(d, "no-such.json"))...)
	expectRefusal(t, []string{"no-such.gguf"}, append(args(), "--lora", filepath.Join(d, "no-such.gguf"))...)
	expectRefusal(t, []string{"no-such.gguf"}, append(args(), "--model", filepath.Join(d, "no-such.gguf"))...)
	expectRefusal(t, []string{"--mmproj is required"}, "audit", "--model", base, "--data", dataPath, "--out", out)
	expectRefusal(t, []string{"--out is required"}, "audit", "--model", base, "--mmproj", mmproj, "--data", dataPath)
	expectRefusal(t, []string{"--top"}, args("--top", "-1")...)
	expectRefusal(t, []string{"threshold"}, args("--threshold", "NaN")...)
	missing := writeData(t, d, "missing.json", []map[string]any{{"id": "m", "image": "images/none.png", "conversations": conversation("<image>\nwhat?", "a red circle.")}})
	expectRefusal(t, []string{"none.png"}, append(args(), "--data", missing)...)
	if fileSum(t, dataPath) != sum {
		t.Error("the dataset changed")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused audit wrote --out")
	}
}
