package check_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/tiny"
)

// familyFiles generates a tiny family into a fresh folder and returns its base and mmproj.
func familyFiles(t *testing.T, o tiny.Options) (base, mmproj string) {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, o); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, tiny.BaseFile), filepath.Join(dir, tiny.MmprojFile)
}

// MiniCPM-V 2.6's resampler, on the tiny minicpmv files: its width is
// resampler.proj.weight's ne[0] (clip_n_mmproj_embd), each slice and the overview are 64
// rows (minicpmv_version 3), it fits its own text model and is refused, naming both
// files and families, with InternVL's (and the other way round); every tensor mtmd loads is required,
// and shapes mtmd's graph would abort on are refused.
func TestResamplerProjector(t *testing.T) {
	base, mmproj := familyFiles(t, tiny.Options{Seed: 7, Family: tiny.FamilyMiniCPMV, Arch: tiny.ArchQwen2})
	ivBase, ivMmproj := familyFiles(t, tiny.Options{Seed: 7, Family: tiny.FamilyInternVL, Arch: tiny.ArchQwen2})
	mm, err := check.Mmproj(mmproj)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintln(mm.ProjectorType, mm.ImageSize, mm.PatchSize, mm.OutputWidth, mm.TokensPerImage, mm.TokensPerSlice, mm.MiniCPMVVersion)
	if want := fmt.Sprintln("resampler", tiny.MiniCPMVSliceSize, tiny.MiniCPMVPatch, tiny.MiniCPMVNEmbd, 0, tiny.MiniCPMVQueries, 3); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if _, _, err := check.ModelAndMmproj(base, mmproj); err != nil {
		t.Fatal(err)
	}
	_, _, err = check.ModelAndMmproj(ivBase, mmproj)
	wantErr(t, err, gguf.ErrMismatch, mmproj, ivBase, "MiniCPM-V", "resampler", "<slice>")
	t.Logf("InternVL's text model with MiniCPM-V's mmproj: %v", err)
	_, _, err = check.ModelAndMmproj(base, ivMmproj)
	wantErr(t, err, gguf.ErrMismatch, ivMmproj, base, "InternVL", "internvl", "<img>")

	d, err := check.Describe(mmproj)
	if err != nil || d.Problem != nil {
		t.Fatal(err, d.Problem)
	}
	for _, frag := range []string{"projector:", "resampler", "family:", "MiniCPM-V 2.6 (slices", "projection width:", "128", "tokens per image:", "64 per slice (minicpmv_version 3)", "larger than 16×16"} {
		if !strings.Contains(d.String(), frag) {
			t.Errorf("description lacks %q:\n%s", frag, d)
		}
	}

	f, err := gguf.Open(mmproj)
	if err != nil {
		t.Fatal(err)
	}
	var loaded []string
	for _, ti := range f.Tensors {
		if strings.HasPrefix(ti.Name, "resampler.") {
			loaded = append(loaded, ti.Name)
		}
	}
	f.Close()
	if len(loaded) != 18 {
		t.Fatalf("%d resampler tensors, want the 18 mtmd loads: %v", len(loaded), loaded)
	}
	for _, name := range loaded {
		_, err := check.Mmproj(rewrite(t, mmproj, nil, func(n string) bool { return n != name }))
		wantErr(t, err, gguf.ErrTensorMissing, name, "resampler")
	}

	replace := func(name string, shape ...uint64) (func(*gguf.Writer), func(string) bool) {
		n := uint64(1)
		for _, d := range shape {
			n *= d
		}
		return func(w *gguf.Writer) {
				if err := w.AddTensorF32(name, gguf.F32, shape, make([]float32, n)); err != nil {
					t.Fatal(err)
				}
			}, func(s string) bool {
				return s != name
			}
	}
	set := func(key string, v gguf.Value) (func(*gguf.Writer), func(string) bool) {
		return func(w *gguf.Writer) { w.Set(key, v) }, nil
	}
	cases := []struct {
		name  string
		edit  func() (func(*gguf.Writer), func(string) bool)
		kind  error
		frags []string
	}{
		// Heads of 128: ggml would abort on another width.
		{"width 96", func() (func(*gguf.Writer), func(string) bool) { return replace("resampler.proj.weight", 96, 96) }, gguf.ErrTensorShape, []string{"multiple of 128"}},
		// mtmd sizes the rows by ne[0] and the graph makes them ne[1] wide.
		{"proj not square", func() (func(*gguf.Writer), func(string) bool) { return replace("resampler.proj.weight", 128, 64) }, gguf.ErrTensorShape, []string{"resampler.proj.weight"}},
		// The graph reshapes the queries into 64 (version 3) rows.
		{"32 queries", func() (func(*gguf.Writer), func(string) bool) { return replace("resampler.query", 128, 32) }, gguf.ErrTensorShape, []string{"resampler.query", "[128 64]"}},
		{"query_num 32", func() (func(*gguf.Writer), func(string) bool) {
			return set("clip.minicpmv_query_num", gguf.Uint32Value(32))
		}, gguf.ErrTensorShape, []string{"resampler.query", "[128 32]"}},
		{"kv from another tower", func() (func(*gguf.Writer), func(string) bool) { return replace("resampler.kv.weight", 48, 128) }, gguf.ErrTensorShape, []string{"resampler.kv.weight"}},
		// mtmd asserts on MiniCPM-V 2 (version 1) and unknown versions.
		{"version 1", func() (func(*gguf.Writer), func(string) bool) {
			return set("clip.minicpmv_version", gguf.Int32Value(1))
		}, gguf.ErrUnsupported, []string{"minicpmv_version 1"}},
		// Positions are looked up in 70×70 buckets.
		{"17 positions", func() (func(*gguf.Writer), func(string) bool) { return replace("v.position_embd.weight", 32, 17) }, gguf.ErrTensorShape, []string{"v.position_embd.weight", "[32 4900]"}},
		{"class row", func() (func(*gguf.Writer), func(string) bool) { return replace("v.class_embd", 32) }, gguf.ErrUnsupported, []string{"v.class_embd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mutate, keep := c.edit()
			_, err := check.Mmproj(rewrite(t, mmproj, mutate, keep))
			wantErr(t, err, c.kind, c.frags...)
		})
	}
}
