package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAUROCAndPrecision(t *testing.T) {
	pos := []bool{true, false, true, false, false}
	if a := AUROC([]float64{5, 1, 4, 2, 3}, pos); a != 1 {
		t.Errorf("perfect ranking: AUROC %v", a)
	}
	if a := AUROC([]float64{1, 5, 2, 4, 3}, pos); a != 0 {
		t.Errorf("reversed ranking: AUROC %v", a)
	}
	if a := AUROC([]float64{1, 1, 1, 1, 1}, pos); a != 0.5 {
		t.Errorf("all tied: AUROC %v, want 0.5", a)
	}
	// Positives at 4 and 2 against negatives 3, 1, 0: 5 of 6 pairs right.
	if a := AUROC([]float64{4, 3, 2, 1, 0}, pos); math.Abs(a-5.0/6) > 1e-12 {
		t.Errorf("AUROC %v, want 5/6", a)
	}
	if p := PrecisionAtK([]float64{4, 3, 2, 1, 0}, pos, 2); p != 0.5 {
		t.Errorf("precision at 2: %v", p)
	}
	// A tie at the cut counts against the positives.
	if p := PrecisionAtK([]float64{3, 3, 1, 0, 0}, []bool{true, false, false, false, false}, 1); p != 0 {
		t.Errorf("tied precision at 1: %v, want 0", p)
	}
}

// sample makes a sample with an image whose tokens have the given ids and
// log-probabilities with and without the image.
func sample(rec int, ids []int32, lp, lpNo []float64) *Sample {
	s := &Sample{ID: "s", Record: rec, hasImage: true}
	for i, id := range ids {
		s.inOrder = append(s.inOrder, Token{Pos: 10 + i, Token: id, lp: lp[i], lpNo: lpNo[i]})
	}
	return s
}

func TestRateJudgesEachTokenAgainstItsType(t *testing.T) {
	// Token 7 is a colour: usually log P ≈ −0.3 with the image, −1.4 without. Token 3 is
	// a function word the image does not change. Token 9 occurs once.
	var samples []*Sample
	for i := 0; i < 8; i++ {
		samples = append(samples, sample(i+1, []int32{3, 7}, []float64{-0.1, -0.3 - 0.01*float64(i)}, []float64{-0.1, -1.4}))
	}
	bad := sample(9, []int32{3, 7}, []float64{-0.1, -3.5}, []float64{-0.1, -1.4})  // the image contradicts 7
	oddText := sample(10, []int32{3, 9}, []float64{-2.5, -6}, []float64{-2.4, -6}) // unlikely with or without the image
	rare := sample(11, []int32{3, 9}, []float64{-0.1, -4}, []float64{-0.1, -1})    // the image lowers a rare token by 3 nats
	textOnly := sample(12, []int32{7}, []float64{-9}, []float64{-9})               // no image
	textOnly.hasImage = false
	samples = append(samples, bad, oddText, rare, textOnly)
	Rate(samples)
	if math.Abs(bad.Score-3.2+0.035) > 0.02 || bad.inOrder[1].Score != bad.Score {
		t.Errorf("contradicted colour: score %v (token %+v), want ≈ 3.17 from the colour", bad.Score, bad.inOrder[1])
	}
	// Token 3 at −2.5 is 2.4 nats below its type, but the image does not account for
	// it (support gap 0.1), so it is not a contradiction.
	if oddText.Score > 0.15 {
		t.Errorf("a caption unlikely with and without the image scored %v", oddText.Score)
	}
	if math.Abs(rare.Score-3) > 1e-9 {
		t.Errorf("rare token: score %v, want −PMI = 3", rare.Score)
	}
	if textOnly.Score != 0 {
		t.Errorf("a sample without an image scored %v", textOnly.Score)
	}
	for _, s := range samples[:8] {
		if s.Score > 0.05 {
			t.Errorf("clean sample %d scored %v", s.Record, s.Score)
		}
	}
	Rank(samples, 1)
	if samples[0] != bad || samples[1] != rare || len(samples[0].Tokens) != 1 || samples[0].Tokens[0].Token != 7 {
		t.Errorf("ranking: first %d then %d, tokens %+v", samples[0].Record, samples[1].Record, samples[0].Tokens)
	}
	if n := Flag(samples, 1.5, 0); n != 2 || !bad.Flagged || !rare.Flagged {
		t.Errorf("threshold 1.5 flagged %d", n)
	}
	if n := Flag(samples, 1.5, 1); n != 1 || !bad.Flagged || rare.Flagged {
		t.Errorf("top 1 flagged %d", n)
	}
}

func TestWriteCleanKeepsFormatAndFields(t *testing.T) {
	dir := t.TempDir()
	recs := []string{
		`{"id": "a", "image": "i/0.png", "source": {"url": "x"}, "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a red circle."}]}`,
		`{"id": 2, "image": ["i/1.png"], "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a blue square."}], "extra": [1, 2.50, null]}`,
		`{"id": "c", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "text only"}]}`,
	}
	// Pretty-printed as json.MarshalIndent and Python's json.dump(indent=2) write it.
	var arr bytes.Buffer
	var elems []any
	for _, r := range recs {
		var v any
		json.Unmarshal([]byte(r), &v)
		elems = append(elems, v)
	}
	pretty, _ := json.MarshalIndent(elems, "", "  ")
	arr.Write(pretty)
	for _, c := range []struct {
		name, text string
	}{
		{"data.json", arr.String() + "\n"},
		{"data.jsonl", "\xef\xbb\xbf" + recs[0] + "\n\n" + recs[1] + "\r\n" + recs[2]},
	} {
		in := filepath.Join(dir, c.name)
		os.WriteFile(in, []byte(c.text), 0o644)
		// Nothing dropped: the same file (a pretty-printed array byte for byte).
		same := filepath.Join(dir, "same-"+c.name)
		if kept, err := WriteClean(in, same, nil, 3); err != nil || kept != 3 {
			t.Fatalf("%s: kept %d: %v", c.name, kept, err)
		}
		got, _ := os.ReadFile(same)
		if c.name == "data.json" && string(got) != c.text {
			t.Errorf("an unfiltered array changed:\n%s\nwant\n%s", got, c.text)
		}
		out := filepath.Join(dir, "clean-"+c.name)
		if kept, err := WriteClean(in, out, map[int]bool{1: true}, 3); err != nil || kept != 2 {
			t.Fatalf("%s: kept %d: %v", c.name, kept, err)
		}
		got, _ = os.ReadFile(out)
		if c.name == "data.jsonl" {
			want := "\xef\xbb\xbf" + recs[0] + "\n" + recs[2] + "\n"
			if string(got) != want {
				t.Errorf("JSONL: got %q, want %q", got, want)
			}
			continue
		}
		var back []any
		if err := json.Unmarshal(got, &back); err != nil || len(back) != 2 {
			t.Fatalf("array: %v, %d records\n%s", err, len(back), got)
		}
		wantJSON, _ := json.Marshal([]any{elems[0], elems[2]})
		gotJSON, _ := json.Marshal(back)
		if string(gotJSON) != string(wantJSON) || !strings.Contains(string(got), `"url": "x"`) {
			t.Errorf("array records changed:\n%s", got)
		}
		if _, err := WriteClean(in, out, nil, 4); err == nil {
			t.Error("a record count that differs from the audited one was not refused")
		}
	}
}
