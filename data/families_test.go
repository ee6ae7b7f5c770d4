package data

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/calft/calft/tiny"
)

// SmolVLM's projector tiles each image (four tiles and an overview, each its own chunk):
// a sample's NImage counts every row of each image, in order, and its answers are masked
// up to <end_of_utterance>.
func TestBuildSmolVLMTiles(t *testing.T) {
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, tiny.Options{Seed: 5, Family: tiny.FamilySmolVLM}); err != nil {
		t.Fatal(err)
	}
	e := newEnvIn(t, dir)
	rec := Record{ID: "two", Images: []string{"images/000.png", "images/001.png"}, Conversations: []Turn{
		{From: "human", Value: "<image>\n<image>\nwhat do you see?"}, {From: "gpt", Value: "a red circle"}}}
	s, err := e.b.Build(&rec)
	if err != nil {
		t.Fatal(err)
	}
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

func mustCache(t *testing.T, e *env, dir string) *EmbedCache {
	t.Helper()
	c, err := NewEmbedCache(e.mc, filepath.Join(dir, tiny.MmprojFile), "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
