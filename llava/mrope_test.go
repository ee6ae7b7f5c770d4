package llava_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// mChunk is one chunk of an mtmd prompt with what decoding it needs: text tokens, or
// an image's rows with their grid and M-RoPE positions.
type mChunk struct {
	tokens []int32
	embd   []float32
	grid   llava.Grid
	pos    []int32 // mtmd's positions for the chunk (4 per row for M-RoPE image rows)
	nPos   int
}

// mropePrompt tokenizes a ChatML prompt with images through mtmd and encodes them.
func (f *fixture) mropePrompt(t *testing.T, text string, imgs []mtmd.Image) []mChunk {
	t.Helper()
	mc, err := mtmd.Init(filepath.Join(f.dir, tiny.MmprojFile), f.lm, mtmd.Params{NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if !mc.UsesMRoPE() || !f.lm.UsesMRoPE() {
		t.Fatalf("M-RoPE: projector %v, model %v", mc.UsesMRoPE(), f.lm.UsesMRoPE())
	}
	p, err := mc.TokenizePrompt(text, imgs, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var out []mChunk
	nPast := 0
	for i, ch := range p.Chunks {
		c := mChunk{tokens: ch.Tokens, pos: ch.Positions(nPast), nPos: ch.NPos}
		if ch.Kind != mtmd.ChunkText {
			e, err := p.Encode(i)
			if err != nil {
				t.Fatal(err)
			}
			c.embd, c.grid = e.Data, llava.Grid{NX: e.NX, NY: e.NY}
		}
		nPast += ch.NPos
		out = append(out, c)
	}
	return out
}

// mropeLlamaLogits decodes the chunks through libllama at mtmd's positions, as
// calft generate does, and returns every row's logits.
func mropeLlamaLogits(t *testing.T, lm *llama.Model, ad *llama.Adapter, chunks []mChunk) []float32 {
	t.Helper()
	ctx, err := llama.NewContext(lm, llama.ContextParams{NCtx: 256, KVF32: true, NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if ad != nil {
		if err := ctx.SetAdapter(ad, 1); err != nil {
			t.Fatal(err)
		}
	}
	var out []float32
	for _, c := range chunks {
		if c.embd != nil {
			err = ctx.DecodeEmbeddingsAt(c.embd, c.grid.NX*c.grid.NY, c.pos, 0, true)
		} else if len(c.tokens) > 0 {
			err = ctx.DecodeTokens(c.tokens, int(c.pos[0]), 0, true)
		} else {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		all, err := ctx.LogitsAll()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, all...)
	}
	return out
}

// mropeSequence is calft's view of the chunks, positioned by llava.GridPositions (the
// training data's path), which must reproduce mtmd's positions.
func mropeSequence(t *testing.T, chunks []mChunk) llava.Sequence {
	t.Helper()
	var s llava.Sequence
	var grids []llava.Grid
	var want [][3]int32
	for _, c := range chunks {
		if c.embd == nil {
			s.Tokens = append(s.Tokens, c.tokens...)
			for _, p := range c.pos {
				want = append(want, [3]int32{p, p, p})
			}
			continue
		}
		n := c.grid.NX * c.grid.NY
		for i := range n {
			s.Tokens = append(s.Tokens, llava.ImageRow)
			want = append(want, [3]int32{c.pos[i], c.pos[n+i], c.pos[2*n+i]})
		}
		s.Embd = append(s.Embd, c.embd...)
		grids = append(grids, c.grid)
	}
	var err error
	if s.Pos, s.PosHW, err = llava.GridPositions(s.Tokens, grids); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		h, x := s.PositionHW(i)
		if got := [3]int32{s.Position(i), h, x}; got != w {
			t.Fatalf("row %d: GridPositions gives %v, mtmd %v", i, got, w)
		}
	}
	return s
}

// qwenImages are two images for the M-RoPE prompts: 32×24 pixels (a 4×3 grid of merged
// rows, so the text after it moves on by 4 positions, not 12) and 32×32 (4×4).
func (f *fixture) qwenImages(t *testing.T) []mtmd.Image {
	t.Helper()
	var out []mtmd.Image
	for i, h := range []int{24, 32} {
		img, err := imageio.Load(filepath.Join(f.dir, tiny.ImageDir, []string{"000.png", "001.png"}[i]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mtmd.Image{RGB: img.Pix[:3*img.W*h], W: img.W, H: h})
	}
	return out
}

// TestMRoPELogitsMatchLibllama checks Qwen2-VL's text model (qwen2vl: M-RoPE,
// ggml_rope_multi) against libllama, text alone and with two images whose rows take
// mtmd's grid positions, without an adapter, with one, and merged; then the
// image-absent pass against the sequence without its image rows at the same positions.
//
// Qwen3-VL (qwen3vl: QK-norm, interleaved M-RoPE, deepstack slices in every image row)
// runs the same checks, and its image rows without their deepstack slices must give
// visibly different logits (or the parity above would not see them ignored).
func TestMRoPELogitsMatchLibllama(t *testing.T) {
	for _, c := range []struct {
		arch, proj string
		sections   [4]int
	}{
		{tiny.ArchQwen2VL, tiny.ProjQwen2VL, [4]int{2, 3, 3, 0}},
		{tiny.ArchQwen2VL, tiny.ProjQwen25VL, [4]int{2, 3, 3, 0}},
		{tiny.ArchQwen3VL, tiny.ProjQwen3VL, [4]int{4, 2, 2, 0}},
	} {
		proj := c.proj
		t.Run(proj, func(t *testing.T) {
			f := newFixtureWith(t, tiny.Options{Seed: 7, Arch: c.arch, Projector: proj}, llava.LoadOptions{})
			if !f.m.HP.MRoPE() || f.m.HP.Rope.Sections != c.sections {
				t.Fatalf("calft read %+v", f.m.HP.Rope)
			}
			if c.arch == tiny.ArchQwen3VL && f.m.HP.Deepstack != tiny.Qwen3VLDeepstack {
				t.Fatalf("calft read %d deepstack layers, want %d", f.m.HP.Deepstack, tiny.Qwen3VLDeepstack)
			}
			m := mtmd.DefaultMarker()
			text := f.mropePrompt(t, "<|im_start|>user\nwhat is a red circle?<|im_end|>\n<|im_start|>assistant\na shape", nil)
			withImages := f.mropePrompt(t, "<|im_start|>user\n"+m+"what is in the image?"+m+"and here?<|im_end|>\n<|im_start|>assistant\na blue square", f.qwenImages(t))
			if g := withImages[1].grid; g != (llava.Grid{NX: 4, NY: 3}) || withImages[1].nPos != 4 {
				t.Fatalf("first image: grid %+v, %d positions; want 4×3 and 4", g, withImages[1].nPos)
			}
			ad, host, lad := f.randomAdapter(t)
			merged := f.mergedModel(t, host)
			check := parityCheck(t, parityTol)
			for _, c := range []struct {
				name   string
				chunks []mChunk
			}{{"text", text}, {"images", withImages}} {
				seq := mropeSequence(t, c.chunks)
				logits := func(a llava.Adapter) []float32 {
					d := &llava.Decoder{HP: f.m.HP, W: &f.m.W, Adapter: a}
					out, err := llava.ComputeLogits(f.be, d, &llava.Batch{Seqs: []llava.Sequence{seq}}, false)
					if err != nil {
						t.Fatal(err)
					}
					return out
				}
				base := logits(nil)
				check(c.name+", no adapter", base, mropeLlamaLogits(t, f.lm, nil, c.chunks))
				withAd := logits(ad)
				if relErr(t, withAd, base) < 1e-3 {
					t.Fatalf("%s: the random adapter barely changes the logits", c.name)
				}
				check(c.name+", with adapter", withAd, mropeLlamaLogits(t, f.lm, lad, c.chunks))
				check(c.name+", merged vs base+adapter", withAd, mropeLlamaLogits(t, merged, nil, c.chunks))
				if c.name == "images" {
					// The same rows at plain row-index positions must differ visibly, or
					// the check above would not see wrong M-RoPE positions.
					full := seq
					seq = llava.Sequence{Tokens: seq.Tokens, Embd: seq.Embd}
					if e := relErr(t, logits(nil), base); e < 1e-3 {
						t.Errorf("row-index positions change the logits by only %.2e", e)
					}
					if hp := f.m.HP; hp.Deepstack > 0 {
						seq = full
						seq.Embd = slices.Clone(full.Embd)
						w := hp.NEmbdInp()
						for r := 0; r < len(seq.Embd)/w; r++ {
							clear(seq.Embd[r*w+hp.NEmbd : (r+1)*w])
						}
						if e := relErr(t, logits(nil), base); e < 1e-3 {
							t.Errorf("image rows without their deepstack slices change the logits by only %.2e", e)
						} else {
							t.Logf("deepstack slices zeroed: logits change by %.2e", e)
						}
					}
				}
			}
			checkMRoPEImageAbsent(t, f, mropeSequence(t, withImages))
		})
	}
}

// checkMRoPEImageAbsent compares the image-absent pass with the sequence rebuilt
// without its image rows, every text row keeping its M-RoPE positions.
func checkMRoPEImageAbsent(t *testing.T, f *fixture, seq llava.Sequence) {
	t.Helper()
	if last := len(seq.Tokens) - 1; seq.Position(last) == int32(last) {
		t.Fatal("the last row's position is its index; the check would not see M-RoPE's jump")
	}
	e, _, _ := imageAbsent(t, f, seq)
	t.Logf("image-absent pass vs sequence without image rows: %.2e", e)
	if e > parityTol {
		t.Errorf("relative error %.2e > %.0e", e, parityTol)
	}
}

// TestGridPositions checks the M-RoPE layout on a hand-made sequence: two text rows,
// a 3×2 image, a text row, a 1×2 image, and a text row.
func TestGridPositions(t *testing.T) {
	I := llava.ImageRow
	toks := []int32{5, 6, I, I, I, I, I, I, 7, I, I, 8}
	pos, hw, err := llava.GridPositions(toks, []llava.Grid{{NX: 3, NY: 2}, {NX: 1, NY: 2}})
	if err != nil {
		t.Fatal(err)
	}
	wantPos := []int32{0, 1, 2, 2, 2, 2, 2, 2, 5, 6, 6, 8}
	want := [][2]int32{{0, 0}, {1, 1}, {2, 2}, {2, 3}, {2, 4}, {3, 2}, {3, 3}, {3, 4}, {5, 5}, {6, 6}, {7, 6}, {8, 8}}
	for i := range toks {
		if pos[i] != wantPos[i] || hw[2*i] != want[i][0] || hw[2*i+1] != want[i][1] {
			t.Errorf("row %d: (%d, %d, %d), want (%d, %d, %d)", i, pos[i], hw[2*i], hw[2*i+1], wantPos[i], want[i][0], want[i][1])
		}
	}
	if _, _, err := llava.GridPositions(toks, []llava.Grid{{NX: 2, NY: 2}, {NX: 1, NY: 2}}); err == nil {
		t.Error("a grid that does not match its image's rows was accepted")
	}
	if _, _, err := llava.GridPositions(toks, []llava.Grid{{NX: 3, NY: 2}}); err == nil {
		t.Error("a missing grid was accepted")
	}
}
