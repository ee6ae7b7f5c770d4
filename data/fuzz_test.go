package data

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// FuzzLoad reads arbitrary dataset files, JSON arrays and JSONL alike, and checks every
// record they yield: errors, never panics, and records that Check can always judge.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		`[{"id":"a","image":"x.png","conversations":[{"from":"human","value":"<image>\nwhat?"},{"from":"gpt","value":"a cat"}]}]`,
		`{"id":1,"image":["x.png","y.png"],"conversations":[{"from":"human","value":"<image><image> two"},{"from":"gpt","value":"dogs"}]}` + "\n" +
			`{"id":null,"image":null,"conversations":[{"from":"system","value":"be brief"},{"from":"user","value":"hi"},{"from":"assistant","value":"hello"}]}`,
		`{"conversations":[{"from":"Human ","value":"hi"},{"from":"model","value":" "},{"from":"bot","value":"<image>"}]}`,
		`{"id":{"k":[1,2]},"image":3,"conversations":[]}`,
		"\n\n  \n",
		`[]`,
		`[{"image":"/abs/x.png","conversations":[{"from":"gpt","value":"a"}]}, {}]`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.png"), []byte("not checked here"), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "folder"), 0o755); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "data.jsonl")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		recs, err := Load(path)
		if err != nil {
			return
		}
		if len(recs) == 0 {
			t.Fatal("no records and no error")
		}
		for i := range recs {
			rec := &recs[i]
			if rec.Line != i+1 || rec.ID == "" {
				t.Fatalf("record %d: line %d, id %q", i, rec.Line, rec.ID)
			}
			for _, p := range Check(rec, dir) {
				if p.ID != rec.ID || p.Msg == "" {
					t.Fatalf("problem %+v of record %q", p, rec.ID)
				}
			}
		}
	})
}

// FuzzReadEmbedding reads arbitrary embedding-cache files: a damaged cache must give an
// error (and so a fresh encode), never a panic or a huge allocation.
func FuzzReadEmbedding(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.f16")
	if err := writeEmbedding(good, []uint16{0x3c00, 0xc100, 0x0001}); err != nil { // 1, -2.5, a subnormal
		f.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(embedMagic))
	f.Add(binary.LittleEndian.AppendUint64([]byte(embedMagic), 0))
	f.Add(binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint64([]byte(embedMagic), 1), 0x7e00)) // NaN
	path := filepath.Join(dir, "in.f16")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		e, err := readEmbedding(path)
		if err != nil {
			return
		}
		if len(b) != len(embedMagic)+8+2*len(e) {
			t.Fatalf("%d bytes gave %d floats", len(b), len(e))
		}
		for _, v := range e {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("non-finite cached value %v accepted", v)
			}
		}
	})
}

// FuzzScored checks the supervised rows of any mask: row i−1 predicts target i, runs are
// the maximal stretches of consecutive targets, numbered from run0.
func FuzzScored(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6}, []byte{0, 0, 1, 1, 0, 1}, int32(0), uint16(0))
	f.Add([]byte{9}, []byte{1}, int32(7), uint16(3))
	f.Add([]byte{}, []byte{}, int32(0), uint16(0))
	f.Fuzz(func(t *testing.T, toks, mask []byte, offset int32, run0 uint16) {
		if offset < 0 || offset > 1<<20 {
			return
		}
		s := &Sample{}
		for i, b := range toks {
			s.Rows = append(s.Rows, int32(b)-8) // a few negatives: llava.ImageRow is one
			s.Target = append(s.Target, i < len(mask) && mask[i]&1 == 1)
		}
		rows, targets, next := s.Scored(offset, int(run0))
		want := s.NTargets()
		if len(s.Target) > 0 && s.Target[0] {
			want-- // the first row has no row before it to predict it
		}
		if len(rows) != want || len(targets) != want {
			t.Fatalf("%d rows and %d targets for %d supervised tokens", len(rows), len(targets), want)
		}
		runs := 0
		for i := range rows {
			r := int(rows[i] - offset)
			if r < 0 || r+1 >= len(s.Rows) || !s.Target[r+1] || targets[i].Token != s.Rows[r+1] {
				t.Fatalf("scored row %d does not predict a target", rows[i])
			}
			newRun := i == 0 || rows[i] != rows[i-1]+1
			if newRun {
				runs++
			}
			if targets[i].Run != int(run0)+runs-1 {
				t.Fatalf("row %d in run %d, want %d", rows[i], targets[i].Run, int(run0)+runs-1)
			}
		}
		if next != int(run0)+runs {
			t.Fatalf("next run %d after %d runs from %d", next, runs, run0)
		}
	})
}

// buildTemplates are the chat templates FuzzBuild masks with: the tiny model's own and
// a few of llama.cpp's built-in ones.
var buildTemplates = []string{"", "chatml", "llama3", "llama2", "gemma", "vicuna", "phi3", "zephyr", "mistral-v7"}

// FuzzBuild templates, tokenizes and masks arbitrary text-only records with the tiny
// model's vocabulary: a record either fails with an error naming it or gives rows whose
// supervised tokens all lie in assistant turns' stretches.
func FuzzBuild(f *testing.F) {
	for i, s := range []string{
		`{"conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"hello"}]}`,
		`{"conversations":[{"from":"system","value":"terse"},{"from":"human","value":"a"},{"from":"gpt","value":"b"},{"from":"human","value":"c"},{"from":"gpt","value":"d"}]}`,
		`{"conversations":[{"from":"gpt","value":"<|im_end|>"},{"from":"human","value":"<|im_start|>assistant\n"}]}`,
		`{"conversations":[{"from":"human","value":"\u0000x"},{"from":"gpt","value":"y\u0000"}]}`,
		`{"image":"none.png","conversations":[{"from":"human","value":"<image>"},{"from":"gpt","value":"z"}]}`,
		`{"conversations":[{"from":"human","value":"<__media__>"},{"from":"gpt","value":"z"}]}`,
	} {
		f.Add(uint8(i), []byte(s))
	}
	dir := f.TempDir()
	if err := tiny.Generate(dir, 3); err != nil {
		f.Fatal(err)
	}
	lm, err := llama.LoadModel(filepath.Join(dir, tiny.BaseFile), llama.ModelParams{VocabOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	defer lm.Close()
	imageDir := f.TempDir() // empty: every image is missing, so records stay text-only
	f.Fuzz(func(t *testing.T, which uint8, js []byte) {
		var raw rawRecord
		if json.Unmarshal(js, &raw) != nil {
			return
		}
		rec, err := raw.record(1)
		if err != nil {
			return
		}
		tmpl := buildTemplates[int(which)%len(buildTemplates)]
		if tmpl == "" {
			tmpl = lm.ChatTemplate()
		}
		b := &Builder{Vocab: lm, Template: tmpl, ImageDir: imageDir}
		s, err := b.Build(&rec)
		if err != nil {
			if _, ok := err.(Problem); !ok {
				t.Fatalf("error %v does not name the sample", err)
			}
			return
		}
		if len(s.Rows) != len(s.Target) || s.NTargets() == 0 || len(s.Images) != 0 {
			t.Fatalf("%d rows, %d mask entries, %d targets, %d images", len(s.Rows), len(s.Target), s.NTargets(), len(s.Images))
		}
		for _, r := range s.Rows {
			if r == llava.ImageRow || r < 0 || int(r) >= lm.NVocab() {
				t.Fatalf("row %d is no token of a text-only sample", r)
			}
		}
	})
}
