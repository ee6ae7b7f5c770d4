package data

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calft/calft/chat"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// LLaVA-1.5's own format, rendered in Go: every answer and its "</s>" (EOS, read as the
// control token) is learned, nothing of "USER: …" or the system prompt.
func TestBuildLLaVA15Template(t *testing.T) {
	e := newEnv(t)
	e.b.Template = chat.LLaVA15
	recs, err := Load(filepath.Join(e.dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		rec := &recs[i]
		s, err := e.b.Build(rec)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, turn := range rec.Conversations {
			if turn.From == "gpt" {
				want += " " + turn.Value + "</s>"
			}
		}
		// Detokenizing drops the space of the first piece ("▁a").
		want = strings.TrimPrefix(want, " ")
		if got := e.supervisedText(t, s); got != want {
			t.Fatalf("sample %s: supervised text %q, want %q", rec.ID, got, want)
		}
		if s.Rows[0] != tiny.BOSID || s.Rows[1] == tiny.BOSID {
			t.Fatalf("sample %s starts %v, want one BOS", rec.ID, s.Rows[:2])
		}
		ends := 0
		for i, r := range s.Rows {
			if r == tiny.SentEndID {
				ends++
				if !s.Target[i] {
					t.Fatalf("sample %s: </s> at row %d is not learned", rec.ID, i)
				}
			}
		}
		if ends != strings.Count(want, "</s>") {
			t.Fatalf("sample %s: %d </s> tokens for %d answers", rec.ID, ends, strings.Count(want, "</s>"))
		}
	}
	text, err := e.lm.Detokenize(mustBuild(t, e, &recs[0]).textRows(), false, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, "<s> "+chat.LLaVA15System+" USER: ") || !strings.Contains(text, " ASSISTANT: ") {
		t.Errorf("sample text %q is not LLaVA-1.5's format", text)
	}
}

func mustBuild(t *testing.T, e *env, rec *Record) *Sample {
	t.Helper()
	s, err := e.b.Build(rec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// textRows are the sample's token rows without its image rows.
func (s *Sample) textRows() []int32 {
	return slices.DeleteFunc(slices.Clone(s.Rows), func(r int32) bool { return r == llava.ImageRow })
}

// A template that writes the BOS token's text itself (SmolVLM's starts with
// "<|im_start|>", its BOS) gets one BOS, not the tokenizer's and the template's.
func TestBuildNoDoubleBOS(t *testing.T) {
	dir := t.TempDir()
	if err := tiny.Generate(dir, 5); err != nil {
		t.Fatal(err)
	}
	// The tiny vocabulary with <|im_start|> as BOS, as SmolVLM's, and add_bos on.
	src := filepath.Join(dir, tiny.BaseFile)
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	w := gguf.NewWriterFrom(f)
	for _, ti := range f.Tensors {
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, data); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32Value(tiny.ImStartID))
	if err := w.WriteFile(src); err != nil {
		t.Fatal(err)
	}
	e := newEnvIn(t, dir)
	recs, err := Load(filepath.Join(e.dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []string{"chatml", "smolvlm"} { // both begin with "<|im_start|>"
		e.b.Template = tmpl
		for i := range recs {
			s := mustBuild(t, e, &recs[i])
			if s.Rows[0] != tiny.ImStartID || s.Rows[1] == tiny.ImStartID {
				t.Fatalf("%s, sample %s starts %v: want one BOS (%d)", tmpl, recs[i].ID, s.Rows[:2], tiny.ImStartID)
			}
		}
	}
	// A template that does not write it still gets the tokenizer's BOS.
	e.b.Template = chat.LLaVA15
	if s := mustBuild(t, e, &recs[0]); s.Rows[0] != tiny.ImStartID {
		t.Fatalf("llava15 sample starts %v: want the BOS the tokenizer adds", s.Rows[:2])
	}
}
