package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// LLaVA-1.5's GGUF ships no chat template: train says to name one (llava15), and with
// --template llava15 learns each answer and its </s>; generate takes the same template.
func TestLLaVA15Family(t *testing.T) {
	d := filepath.Join(t.TempDir(), "tiny")
	if msg, code := run(t, "make-tiny", "--family", "llava15", "--out", d); code != 0 {
		t.Fatalf("make-tiny --family llava15: exit %d\n%s", code, msg)
	}
	out := filepath.Join(t.TempDir(), "run")
	msg, code := run(t, trainArgs(d, out, "--dry-run")...)
	if code != 1 || !strings.Contains(msg, "no chat template") || !strings.Contains(msg, "llava15") {
		t.Fatalf("a model without a chat template: exit %d, want 1 naming llava15\n%s", code, msg)
	}
	msg, code = run(t, trainArgs(d, out, "--dry-run", "--template", "llava15")...)
	if code != 0 || !strings.Contains(msg, "questions. USER: <image") || !strings.Contains(msg, " ASSISTANT:[[ ") || !strings.Contains(msg, "</s>]]") {
		t.Fatalf("--template llava15 --dry-run: exit %d\n%s", code, msg)
	}
	msg, code = run(t, trainArgs(d, out, "--template", "llava15", "--steps", "4", "--objective", "cal")...)
	if code != 0 {
		t.Fatalf("train --template llava15: exit %d\n%s", code, msg)
	}
	msg, code = run(t, "generate", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
		"--image", filepath.Join(d, "images", "000.png"), "--prompt", "what do you see?", "--n", "8",
		"--template", "llava15", "--lora", filepath.Join(out, "adapter.gguf"), "--threads", "2")
	if code != 0 {
		t.Fatalf("generate --template llava15: exit %d\n%s", code, msg)
	}
}

// SmolVLM's format (its own template from the GGUF, one BOS although the template writes
// it and the model adds BOS, images tiled by mtmd into separate chunks) and InternVL's
// (qwen2 text, ChatML, <img> … </img> around the rows): the dry run shows the layout, 40
// CAL steps lower the validation loss and generate answers with the adapter.
func TestTiledAndWrappedFamilies(t *testing.T) {
	for _, c := range []struct {
		family string
		layout []string // fragments of the dry run's first sample
	}{
		{"smolvlm", []string{"<|im_start|> User: <fake_token_around_image><row_1_col_1><image", "<global-img><image",
			"Assistant:[[ ", "<end_of_utterance>]]"}},
		{"internvl", []string{"<|im_start|> user\n<img><image: rows", "></img>", "assistant\n[[", "<|im_end|>]]"}},
	} {
		t.Run(c.family, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "tiny")
			if msg, code := run(t, "make-tiny", "--family", c.family, "--out", d); code != 0 {
				t.Fatalf("make-tiny --family %s: exit %d\n%s", c.family, code, msg)
			}
			out := filepath.Join(t.TempDir(), "run")
			msg, code := run(t, trainArgs(d, out, "--dry-run")...)
			if code != 0 || strings.Contains(msg, "<|im_start|><|im_start|>") || strings.Contains(msg, "<s>") {
				t.Fatalf("--dry-run: exit %d\n%s", code, msg)
			}
			for _, frag := range c.layout {
				if !strings.Contains(msg, frag) {
					t.Fatalf("--dry-run lacks %q:\n%s", frag, msg)
				}
			}
			msg, code = run(t, trainArgs(d, out, "--objective", "cal", "--steps", "40", "--val-every", "20")...)
			if code != 0 {
				t.Fatalf("train: exit %d\n%s", code, msg)
			}
			s := readSummary(t, out)
			first, last := s.Val[0].Loss, s.Val[len(s.Val)-1].Loss
			t.Logf("%s, cal: validation loss %.4f → %.4f over %d steps", c.family, first, last, s.Steps)
			if !(last < 0.7*first) {
				t.Errorf("validation loss %.4f → %.4f: not lower", first, last)
			}
			gen, code := run(t, "generate", "--model", filepath.Join(d, "base.gguf"), "--mmproj", filepath.Join(d, "mmproj.gguf"),
				"--image", filepath.Join(d, "images", "004.png"), "--lora", filepath.Join(out, "adapter.gguf"),
				"--prompt", "what do you see?", "--n", "12", "--threads", "2")
			if code != 0 || strings.TrimSpace(gen) == "" {
				t.Fatalf("generate --lora: exit %d, %q", code, gen)
			}
			t.Logf("%s adapter answers: %q", c.family, strings.TrimSpace(gen))
		})
	}
}
