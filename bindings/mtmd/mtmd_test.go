package mtmd

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calft/calft/bindings/llama"
)

func setup(t *testing.T) (*llama.Model, *Context) {
	t.Helper()
	dir := testDir(t)
	m, err := llama.LoadModel(filepath.Join(dir, "base.gguf"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c, err := Init(filepath.Join(dir, "mmproj.gguf"), m, Params{NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return m, c
}

func gradient(w, h int) []byte {
	p := make([]byte, 3*w*h)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

func TestEncode(t *testing.T) {
	m, c := setup(t)
	if !c.SupportsVision() || c.UsesMRoPE() || c.UsesNonCausal() {
		t.Fatalf("capabilities: vision %v mrope %v noncausal %v", c.SupportsVision(), c.UsesMRoPE(), c.UsesNonCausal())
	}
	e, err := c.Encode(gradient(32, 32), 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	if e.NRows != 16 || e.NEmbd != m.NEmbd() || len(e.Data) != 16*m.NEmbd() || e.NPos != 16 {
		t.Fatalf("embedding %d rows × %d (pos %d), %d floats", e.NRows, e.NEmbd, e.NPos, len(e.Data))
	}
	for _, v := range e.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite embedding")
		}
	}
	// A different image gives different rows; the same image the same rows.
	again, _ := c.Encode(gradient(32, 32), 32, 32)
	other, _ := c.Encode(make([]byte, 3*32*32), 32, 32)
	if !slices.Equal(e.Data, again.Data) || slices.Equal(e.Data, other.Data) {
		t.Error("encode is not a function of the image")
	}
	if n, err := c.TokensPerImage(32, 32); err != nil || n != 16 {
		t.Errorf("TokensPerImage(32,32) = %d, %v", n, err)
	}
	// LLaVA-1.5 pads and resizes any image to the encoder's size.
	if n, err := c.TokensPerImage(80, 20); err != nil || n != 16 {
		t.Errorf("TokensPerImage(80,20) = %d, %v", n, err)
	}
	if _, err := c.Encode(make([]byte, 10), 32, 32); err == nil {
		t.Error("short RGB buffer accepted")
	}
	if _, err := c.Encode(nil, 0, 0); err == nil {
		t.Error("empty image accepted")
	}
}

func TestTokenizePrompt(t *testing.T) {
	m, c := setup(t)
	text := "look: " + DefaultMarker() + " what is it?"
	p, err := c.TokenizePrompt(text, []Image{{RGB: gradient(32, 32), W: 32, H: 32}}, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	kinds := []ChunkKind{}
	for _, ch := range p.Chunks {
		kinds = append(kinds, ch.Kind)
	}
	if len(p.Chunks) != 3 || kinds[0] != ChunkText || kinds[1] != ChunkImage || kinds[2] != ChunkText {
		t.Fatalf("chunks %v", kinds)
	}
	// The text chunks are what the model's tokenizer gives for the surrounding text.
	first, _ := m.Tokenize("look: ", true, true)
	if !slices.Equal(p.Chunks[0].Tokens, first) {
		t.Errorf("first chunk %v, want %v", p.Chunks[0].Tokens, first)
	}
	img := p.Chunks[1]
	if img.NTokens != 16 || img.NPos != 16 || len(img.Tokens) != 0 {
		t.Errorf("image chunk %+v", img)
	}
	pos := img.Positions(len(first))
	if len(pos) != 16 || pos[0] != int32(len(first)) || pos[15] != int32(len(first)+15) {
		t.Errorf("positions %v", pos)
	}
	if p.NPos() != len(first)+16+len(p.Chunks[2].Tokens) {
		t.Errorf("NPos %d", p.NPos())
	}
	e, err := p.Encode(1)
	if err != nil || e.NRows != 16 {
		t.Fatalf("encode chunk: %v", err)
	}
	direct, _ := c.Encode(gradient(32, 32), 32, 32)
	if !slices.Equal(e.Data, direct.Data) {
		t.Error("prompt encode differs from Encode")
	}
	if _, err := p.Encode(0); err == nil {
		t.Error("encoding a text chunk succeeded")
	}
	if _, err := c.TokenizePrompt("no marker", []Image{{RGB: gradient(32, 32), W: 32, H: 32}}, true, true); err == nil {
		t.Error("image without a marker accepted")
	}
	p.Close()
	if _, err := p.Encode(1); err == nil {
		t.Error("closed prompt encoded")
	}
}

func TestMRoPEPositions(t *testing.T) {
	ch := Chunk{Kind: ChunkImage, NTokens: 6, NPos: 3, NX: 3, NY: 2, MRoPE: true}
	got := ch.Positions(10)
	want := []int32{
		10, 10, 10, 10, 10, 10, // temporal
		10, 10, 10, 11, 11, 11, // row
		10, 11, 12, 10, 11, 12, // column
		0, 0, 0, 0, 0, 0,
	}
	if !slices.Equal(got, want) {
		t.Errorf("M-RoPE positions %v", got)
	}
}

func TestInitErrors(t *testing.T) {
	dir := testDir(t)
	m, err := llama.LoadModel(filepath.Join(dir, "base.gguf"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	missing := filepath.Join(t.TempDir(), "mmproj.gguf")
	if _, err := Init(missing, m, Params{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing mmproj: %v", err)
	}
	txt := filepath.Join(t.TempDir(), "mmproj.txt")
	os.WriteFile(txt, []byte("not a projector, just some text here"), 0o644)
	if _, err := Init(txt, m, Params{}); err == nil || !strings.Contains(err.Error(), txt) {
		t.Errorf("text mmproj: %v", err)
	}
	// A text model handed over as the projector is refused by clip, not a crash.
	_, err = Init(filepath.Join(dir, "base.gguf"), m, Params{})
	if err == nil {
		t.Fatal("text model accepted as a projector")
	}
	t.Log(err)
}

func TestModelCloseClosesProjector(t *testing.T) {
	dir := testDir(t)
	m, err := llama.LoadModel(filepath.Join(dir, "base.gguf"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Init(filepath.Join(dir, "mmproj.gguf"), m, Params{NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if c.c != nil {
		t.Fatal("projector still open after its model was closed")
	}
	c.Close()
}
