package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An mmproj of one family with the text model of another is refused before anything
// reaches llama.cpp: train, score and generate exit 1 naming both files and the
// projector, and write nothing. calft info describes the MiniCPM-V files.
func TestFamilyMismatch(t *testing.T) {
	root := t.TempDir()
	dirs := map[string]string{}
	for _, fam := range []string{"minicpmv", "internvl", "smolvlm"} {
		dirs[fam] = filepath.Join(root, fam)
		if msg, code := run(t, "make-tiny", "--family", fam, "--out", dirs[fam]); code != 0 {
			t.Fatalf("make-tiny --family %s: exit %d\n%s", fam, code, msg)
		}
	}
	// calft info names the family, the projector and its rows per slice.
	info, code := run(t, "info", filepath.Join(dirs["minicpmv"], "base.gguf"), filepath.Join(dirs["minicpmv"], "mmproj.gguf"))
	for _, frag := range []string{"architecture:    qwen2", "embedding:       128", "projector:         resampler",
		"family:            MiniCPM-V 2.6", "tokens per image:  64 per slice"} {
		if code != 0 || !strings.Contains(info, frag) {
			t.Errorf("info of the minicpmv files: exit %d, lacks %q:\n%s", code, frag, info)
		}
	}
	for _, c := range []struct{ text, mmproj, projector string }{
		{"internvl", "minicpmv", "resampler"},
		{"minicpmv", "internvl", "internvl"},
		{"smolvlm", "minicpmv", "resampler"},
		{"minicpmv", "smolvlm", "idefics3"},
	} {
		t.Run(c.text+"+"+c.mmproj, func(t *testing.T) {
			base, mmproj := filepath.Join(dirs[c.text], "base.gguf"), filepath.Join(dirs[c.mmproj], "mmproj.gguf")
			data := filepath.Join(dirs[c.mmproj], "data.json")
			out := filepath.Join(t.TempDir(), "out")
			for _, args := range [][]string{
				{"train", "--model", base, "--mmproj", mmproj, "--data", data, "--out", out, "--dry-run"},
				{"score", "--model", base, "--mmproj", mmproj, "--data", data, "--out", out, "--cache-dir", "none"},
				{"generate", "--model", base, "--mmproj", mmproj, "--image", filepath.Join(dirs[c.mmproj], "images", "000.png"),
					"--prompt", "what do you see?", "--n", "4", "--threads", "2"},
			} {
				msg, code := run(t, args...)
				if code != 1 || !strings.Contains(msg, base) || !strings.Contains(msg, mmproj) || !strings.Contains(msg, c.projector) {
					t.Errorf("%s with %s's text model and %s's mmproj: exit %d, want 1 naming both files and the %s projector:\n%s",
						args[0], c.text, c.mmproj, code, c.projector, msg)
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%s wrote %s before refusing", args[0], out)
				}
				if args[0] == "train" {
					t.Logf("%s's text model, %s's mmproj: %s", c.text, c.mmproj, strings.TrimSpace(msg))
				}
			}
		})
	}
}
