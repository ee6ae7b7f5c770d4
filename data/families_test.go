package data

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// SmolVLM's projector tiles each image (four tiles and an overview, each its own chunk):
// a sample's NImage counts every row of each image, in order, and its answers are masked
// up to <end_of_utterance>.
func TestBuildSmolVLMTiles(t *testing.T) {
	e, dir, _, s := buildTwoImages(t, tiny.Options{Seed: 5, Family: tiny.FamilySmolVLM})
	per := 5 * tiny.SmolVLMTileRows
	if !slices.Equal(s.NImage, []int{per, per}) {
		t.Fatalf("NImage %v, want two images of %d rows", s.NImage, per)
	}
	if got := e.supervisedText(t, s); got != "a red circle<end_of_utterance>" {
		t.Fatalf("supervised text %q", got)
	}
	seq, err := mustCache(t, e, dir).Sequence(s, tiny.NEmbd)
	if err != nil || seq.NImageRows() != 2*per {
		t.Fatalf("sequence: %d image rows, %v", seq.NImageRows(), err)
	}
}

// buildTwoImages generates the tiny files of o and builds a sample of two images with
// the answer "a red circle".
func buildTwoImages(t *testing.T, o tiny.Options) (*env, string, Record, *Sample) {
	t.Helper()
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, o); err != nil {
		t.Fatal(err)
	}
	e := newEnvIn(t, dir)
	rec := Record{ID: "two", Images: []string{"images/000.png", "images/001.png"}, Conversations: []Turn{
		{From: "human", Value: "<image>\n<image>\nwhat do you see?"}, {From: "gpt", Value: "a red circle"}}}
	s, err := e.b.Build(&rec)
	if err != nil {
		t.Fatal(err)
	}
	return e, dir, rec, s
}

func mustCache(t *testing.T, e *env, dir string) *EmbedCache {
	t.Helper()
	c, err := NewEmbedCache(e.mc, filepath.Join(dir, tiny.MmprojFile), "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MiniCPM-V 2.6's resampler slices each image (an overview and 2×2 slices, each its own
// chunk of 64 rows) and mtmd marks them with the <image> </image> <slice> </slice>
// control tokens and "\n" between rows of slices. The <image> placeholders of the data
// are not refused although <image> is a control token's text; the other markers are.
func TestBuildMiniCPMVSlices(t *testing.T) {
	e, dir, rec, s := buildTwoImages(t, tiny.Options{Seed: 5, Family: tiny.FamilyMiniCPMV, Arch: tiny.ArchQwen2})
	if !slices.Equal(s.NImage, []int{tiny.MiniCPMVRows, tiny.MiniCPMVRows}) {
		t.Fatalf("NImage %v, want two images of %d rows", s.NImage, tiny.MiniCPMVRows)
	}
	// The rows as text, each run of image rows as [n].
	var layout strings.Builder
	for i := 0; i < len(s.Rows); {
		j := i
		img := s.Rows[i] == llava.ImageRow
		for j < len(s.Rows) && (s.Rows[j] == llava.ImageRow) == img {
			j++
		}
		if img {
			fmt.Fprintf(&layout, "[%d]", j-i)
		} else {
			txt, err := e.lm.Detokenize(s.Rows[i:j], false, true)
			if err != nil {
				t.Fatal(err)
			}
			layout.WriteString(txt)
		}
		i = j
	}
	// (The tiny SentencePiece vocabulary detokenizes a space after some control tokens.)
	one := "<image>[64]</image><slice>[64]</slice><slice>[64]</slice>\n<slice>[64]</slice><slice>[64]</slice>"
	want := "<|im_start|> user\n" + one + " \n" + one + " \nwhat do you see?<|im_end|> \n<|im_start|> assistant\na red circle<|im_end|> \n"
	if layout.String() != want {
		t.Fatalf("layout\n%q\nwant\n%q", layout.String(), want)
	}
	t.Logf("rows of two images: %q", layout.String())
	if got := e.supervisedText(t, s); got != "a red circle<|im_end|>" {
		t.Fatalf("supervised text %q", got)
	}
	seq, err := mustCache(t, e, dir).Sequence(s, tiny.MiniCPMVNEmbd)
	if err != nil || seq.NImageRows() != 2*tiny.MiniCPMVRows {
		t.Fatalf("sequence: %d image rows, %v", seq.NImageRows(), err)
	}
	// The encoder ran on each slice: finite rows, and the slices' rows differ from the
	// overview's.
	n := tiny.MiniCPMVNEmbd * tiny.MiniCPMVQueries
	for i, x := range seq.Embd {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("image row value %d is %v", i, x)
		}
	}
	if slices.Equal(seq.Embd[:n], seq.Embd[n:2*n]) {
		t.Fatal("the first slice's rows equal the overview's")
	}
	// A text model as wide as the resampler but without MiniCPM-V's tokens: mtmd loads
	// the pair and writes token -1 for each marker; Build refuses the sample.
	other := t.TempDir()
	wide := &tiny.TextShape{NEmbd: tiny.MiniCPMVNEmbd, NLayer: 2, NHead: 4, NHeadKV: 2, NFF: 160}
	if err := tiny.GenerateWith(other, tiny.Options{Seed: 5, Arch: tiny.ArchQwen2, Text: wide}); err != nil {
		t.Fatal(err)
	}
	mixed := newEnvFiles(t, filepath.Join(other, tiny.BaseFile), filepath.Join(dir, tiny.MmprojFile), dir)
	if _, err := mixed.b.Build(&rec); err == nil || !strings.Contains(err.Error(), "token -1") {
		t.Errorf("a vocabulary without <slice>: %v", err)
	} else {
		t.Logf("a vocabulary without <slice>: %v", err)
	}
	for _, bad := range []string{"</image>", "<slice>", "</slice>"} {
		rec := Record{ID: "marker", Images: []string{"images/000.png"}, Conversations: []Turn{
			{From: "human", Value: "<image>\nwhat do you see?"}, {From: "gpt", Value: "a " + bad + " circle"}}}
		if _, err := e.b.Build(&rec); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("an answer holding %s: %v", bad, err)
		}
	}
}
