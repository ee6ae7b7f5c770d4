package infer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func firstImage(t *testing.T, dir string) string {
	t.Helper()
	imgs, _ := filepath.Glob(filepath.Join(dir, "images", "*.png"))
	if len(imgs) == 0 {
		t.Fatal("tiny models have no images")
	}
	return imgs[0]
}

func TestGenerateText(t *testing.T) {
	dir := testDir(t)
	var streamed strings.Builder
	o := Options{
		Model: filepath.Join(dir, "base.gguf"), Prompt: "the cat sat on the", N: 12, Threads: 2,
		// A random model emits stray byte tokens, so pieces need not be valid UTF-8
		// here; completeUTF8's test covers the splitting.
		OnText: func(s string) { streamed.WriteString(s) },
	}
	out, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		t.Fatal("no text generated")
	}
	if streamed.String() != out {
		t.Errorf("streamed %q, returned %q", streamed.String(), out)
	}
	// Greedy decoding is deterministic.
	o.OnText = nil
	again, err := Generate(o)
	if err != nil || again != out {
		t.Errorf("second run %q (%v), first %q", again, err, out)
	}
	// The chat-template path runs too (the tiny model's template is ChatML).
	o.UseChatTemplate = true
	if _, err := Generate(o); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateImage(t *testing.T) {
	dir := testDir(t)
	o := Options{
		Model: filepath.Join(dir, "base.gguf"), Mmproj: filepath.Join(dir, "mmproj.gguf"),
		Image: firstImage(t, dir), Prompt: "describe the image", N: 8, Threads: 2, UseChatTemplate: true,
	}
	out, err := Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		t.Fatal("no text generated")
	}
	// A marker in the prompt places the image there instead of in front.
	o.Prompt = "describe <__media__> briefly"
	o.UseChatTemplate = false
	if _, err := Generate(o); err != nil {
		t.Fatal(err)
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := testDir(t)
	tmp := t.TempDir()
	model := filepath.Join(dir, "base.gguf")
	mmproj := filepath.Join(dir, "mmproj.gguf")
	img := firstImage(t, dir)
	notGGUF := filepath.Join(tmp, "lora.safetensors")
	os.WriteFile(notGGUF, []byte(`{"__metadata__": {}} and some padding bytes`), 0o644)
	textImg := filepath.Join(tmp, "photo.jpg")
	os.WriteFile(textImg, []byte("I am not a JPEG"), 0o644)
	missing := filepath.Join(tmp, "missing.gguf")

	cases := []struct {
		name string
		o    Options
		want string // the error must contain it
	}{
		{"missing model", Options{Model: missing, Prompt: "hi"}, missing},
		{"missing mmproj", Options{Model: model, Mmproj: missing, Image: img, Prompt: "hi"}, missing},
		{"missing image", Options{Model: model, Mmproj: mmproj, Image: filepath.Join(tmp, "no.png"), Prompt: "hi"}, "no.png"},
		{"unreadable image", Options{Model: model, Mmproj: mmproj, Image: textImg, Prompt: "hi"}, textImg},
		{"image without mmproj", Options{Model: model, Image: img, Prompt: "hi"}, "mmproj"},
		{"lora not gguf", Options{Model: model, Lora: notGGUF, Prompt: "hi", N: 2}, notGGUF},
		{"missing lora", Options{Model: model, Lora: missing, Prompt: "hi", N: 2}, missing},
		{"lora is a model", Options{Model: model, Lora: model, Prompt: "hi", N: 2}, model},
		{"empty prompt", Options{Model: model}, "empty prompt"},
		{"marker without image", Options{Model: model, Prompt: "see <__media__>"}, "marker"},
		{"negative N", Options{Model: model, Prompt: "hi", N: -1}, "--n -1"},
	}
	for _, c := range cases {
		if c.o.N == 0 {
			c.o.N = 4
		}
		_, err := Generate(c.o)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
}

func TestCompleteUTF8(t *testing.T) {
	s := []byte("aé✓😀")
	for cut := 0; cut <= len(s); cut++ {
		k := completeUTF8(s[:cut])
		if !utf8.Valid(s[:k]) {
			t.Errorf("cut %d: prefix %q not valid", cut, s[:k])
		}
		if utf8.Valid(s[:cut]) && k != cut {
			t.Errorf("cut %d: held back a complete prefix", cut)
		}
	}
	if k := completeUTF8([]byte{0xff, 0xfe}); k != 2 {
		t.Errorf("invalid bytes held back: %d", k)
	}
}
