package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

type env struct {
	dir string
	lm  *llama.Model
	mc  *mtmd.Context
	b   *Builder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.Generate(dir, 5); err != nil {
		t.Fatal(err)
	}
	return newEnvIn(t, dir)
}

// newEnvIn loads the tiny model files in dir.
func newEnvIn(t *testing.T, dir string) *env {
	t.Helper()
	return newEnvFiles(t, filepath.Join(dir, "base.gguf"), filepath.Join(dir, "mmproj.gguf"), dir)
}

// newEnvFiles loads a text model and an mmproj, which may come from different tiny
// folders, with images read from dir.
func newEnvFiles(t *testing.T, model, mmproj, dir string) *env {
	t.Helper()
	lm, err := llama.LoadModel(model, llama.ModelParams{UseMmap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lm.Close() })
	mc, err := mtmd.Init(mmproj, lm, mtmd.Params{NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	return &env{dir: dir, lm: lm, mc: mc, b: &Builder{Vocab: lm, Mtmd: mc, Template: lm.ChatTemplate(), ImageDir: dir}}
}

// supervisedText detokenizes the supervised rows of a sample.
func (e *env) supervisedText(t *testing.T, s *Sample) string {
	var toks []int32
	for i, r := range s.Rows {
		if s.Target[i] {
			toks = append(toks, r)
		}
	}
	txt, err := e.lm.Detokenize(toks, false, true)
	if err != nil {
		t.Fatal(err)
	}
	return txt
}

func TestBuildMasksAssistantTurns(t *testing.T) {
	e := newEnv(t)
	recs, err := Load(filepath.Join(e.dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var multi, textOnly bool
	for i := range recs {
		rec := &recs[i]
		s, err := e.b.Build(rec)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		answers := 0
		for _, turn := range rec.Conversations {
			if turn.From == "gpt" {
				want += turn.Value + "<|im_end|>"
				answers++
			}
		}
		if got := e.supervisedText(t, s); strings.TrimSpace(got) != strings.TrimSpace(want) {
			t.Fatalf("sample %s: supervised text %q, want %q", rec.ID, got, want)
		}
		img := 0
		for _, r := range s.Rows {
			if r == llava.ImageRow {
				img++
			}
		}
		if img != 16*len(rec.Images) {
			t.Fatalf("sample %s: %d image rows for %d images", rec.ID, img, len(rec.Images))
		}
		multi = multi || answers > 1
		textOnly = textOnly || len(rec.Images) == 0
		rows, targets, _ := s.Scored(0, 0)
		if len(rows) != s.NTargets() || len(targets) != len(rows) {
			t.Fatalf("sample %s: %d scored rows for %d targets", rec.ID, len(rows), s.NTargets())
		}
	}
	if !multi || !textOnly {
		t.Fatalf("the tiny dataset should hold multi-turn and text-only samples (multi %v, text-only %v)", multi, textOnly)
	}
}

func TestDataErrorsNameTheSample(t *testing.T) {
	e := newEnv(t)
	cases := map[string]string{
		`{"id":"m1","image":"images/nope.png","conversations":[{"from":"human","value":"<image>\nhi"},{"from":"gpt","value":"a"}]}`: "nope.png",
		`{"id":"m2","image":"images/000.png","conversations":[{"from":"human","value":"hi"},{"from":"gpt","value":"a"}]}`:           "placeholder",
		`{"id":"m3","image":"images/000.png","conversations":[{"from":"human","value":"<image>\nhi"},{"from":"gpt","value":"  "}]}`: "empty answer",
		`{"id":"m4","conversations":[{"from":"human","value":"hi"}]}`:                                                               "no gpt turn",
	}
	var lines []string
	for l := range cases {
		lines = append(lines, l)
	}
	path := filepath.Join(e.dir, "bad.jsonl")
	os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
	recs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		_, err := e.b.Build(&recs[i])
		want := cases[lines[i]]
		if err == nil || !strings.Contains(err.Error(), recs[i].ID) || !strings.Contains(err.Error(), want) {
			t.Errorf("record %s: error %v, want one naming the sample and %q", recs[i].ID, err, want)
		}
	}
	e.b.MaxRows = 20
	recs, _ = Load(filepath.Join(e.dir, "data.json"))
	if _, err := e.b.Build(&recs[0]); err == nil || !strings.Contains(err.Error(), "exceed the context") {
		t.Errorf("a too long sample gave %v", err)
	}
}

func TestEmbedCacheReusesDisk(t *testing.T) {
	e := newEnv(t)
	cacheDir := t.TempDir()
	c, err := NewEmbedCache(e.mc, filepath.Join(e.dir, "mmproj.gguf"), cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(e.dir, "images", "002.png")
	a, err := c.Get(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 16*64 || c.Encoded != 1 {
		t.Fatalf("%d floats, %d encodes", len(a), c.Encoded)
	}
	c2, _ := NewEmbedCache(e.mc, filepath.Join(e.dir, "mmproj.gguf"), cacheDir)
	b, err := c2.Get(img)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Encoded != 0 || c2.Hits != 1 {
		t.Fatalf("second cache encoded %d, hit %d: the disk cache was not used", c2.Encoded, c2.Hits)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("cached embedding differs at %d", i)
		}
	}
}
