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
		// MiniCPM-V 2.6: an overview and 2×2 slices, each an image chunk of 64 rows.
		{"minicpmv", []string{"<|im_start|> user\n<image><image: rows 4-67></image><slice><image: rows 70-133></slice><slice>",
			"</slice>\n<slice><image: rows 203-266></slice><slice><image: rows 269-332></slice>", "assistant\n[[", "<|im_end|>]]"}},
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

// TestMismatchedFamiliesExit pairs each family's text model with the next family's
// mmproj, and the other way round: every pair is refused before llama.cpp sees it,
// exit 1, the message naming both files. (The tiny models share one width, so only the
// family check can tell them apart.)
func TestMismatchedFamiliesExit(t *testing.T) {
	families := []string{"llava15", "smolvlm", "qwen2vl", "qwen3vl", "internvl", "minicpmv", "pixtral", "gemma3"}
	dirs := map[string]string{}
	for _, f := range families {
		d := filepath.Join(t.TempDir(), f)
		if msg, code := run(t, "make-tiny", "--family", f, "--out", d); code != 0 {
			t.Fatalf("make-tiny --family %s: exit %d\n%s", f, code, msg)
		}
		dirs[f] = d
	}
	for i, text := range families {
		for _, proj := range []string{families[(i+1)%len(families)], families[(i+len(families)-1)%len(families)]} {
			model, mmproj := filepath.Join(dirs[text], "base.gguf"), filepath.Join(dirs[proj], "mmproj.gguf")
			msg, code := run(t, "train", "--model", model, "--mmproj", mmproj, "--data", filepath.Join(dirs[text], "data.json"),
				"--out", filepath.Join(t.TempDir(), "run"), "--template", "chatml", "--dry-run")
			if code != 1 || !strings.Contains(msg, model) || !strings.Contains(msg, mmproj) {
				t.Errorf("%s text with %s mmproj: exit %d (want 1, naming both files)\n%s", text, proj, code, msg)
				continue
			}
			t.Logf("%s text + %s mmproj: %s", text, proj, firstLine(msg))
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
