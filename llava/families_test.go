package llava_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/chat"
	"github.com/calft/calft/data"
	"github.com/calft/calft/internal/testbackend"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// piecesOf splits a sequence into runs of tokens and of image rows, for libllama.
func piecesOf(seq llava.Sequence, nEmbd int) []piece {
	var out []piece
	img := 0
	for i := 0; i < len(seq.Tokens); {
		j := i
		isImg := seq.Tokens[i] == llava.ImageRow
		for j < len(seq.Tokens) && (seq.Tokens[j] == llava.ImageRow) == isImg {
			j++
		}
		if isImg {
			out = append(out, piece{embd: seq.Embd[img*nEmbd : (img+j-i)*nEmbd], nEmbd: nEmbd})
			img += j - i
		} else {
			out = append(out, piece{tokens: seq.Tokens[i:j]})
		}
		i = j
	}
	return out
}

// TestFamilySamplesMatchLibllama builds a training sample of each real-format tiny model
// the way calft does (the family's chat template, mtmd's chunks: for SmolVLM four tiles
// and an overview, each an image chunk, with <fake_token_around_image><row_r_col_c> text
// between them; for InternVL <img> … </img> around the rows) and checks calft's logits
// against libllama's on it, with and without an adapter and for the merged export, and
// the image-absent pass with every image row hidden.
func TestFamilySamplesMatchLibllama(t *testing.T) {
	tile := tiny.SmolVLMTileRows
	for _, c := range []struct {
		family   string
		template string  // "" uses the model's
		runs     []int   // rows of each image chunk
		first    []int32 // the sample's first tokens
	}{
		{tiny.FamilySmolVLM, "", []int{tile, tile, tile, tile, tile}, []int32{tiny.ImStartID}}, // one BOS: <|im_start|>
		{tiny.FamilyInternVL, "", []int{tiny.InternVLRows}, []int32{tiny.ImStartID}},           // no BOS added
		{tiny.FamilyLLaVA15, chat.LLaVA15, []int{tiny.TokensPerImage}, []int32{tiny.BOSID}},
		// Pixtral: one chunk, each row of patches ended by an [IMG_BREAK] row but the last.
		{tiny.FamilyPixtral, "", []int{tiny.PixtralRows}, []int32{tiny.BOSID}},
		// MiniCPM-V 2.6: an overview and 2×2 slices, each its own chunk of 64 rows.
		{tiny.FamilyMiniCPMV, "", slices.Repeat([]int{tiny.MiniCPMVQueries}, 1+tiny.MiniCPMVSlices), []int32{tiny.ImStartID}},
	} {
		t.Run(c.family, func(t *testing.T) {
			o := tiny.Options{Seed: 7, Family: c.family}
			if c.family == tiny.FamilyInternVL || c.family == tiny.FamilyMiniCPMV {
				o.Arch = tiny.ArchQwen2
			}
			testFamilySample(t, o, c.template, c.runs, c.first)
		})
	}
}

func testFamilySample(t *testing.T, o tiny.Options, template string, wantRuns []int, first []int32) {
	f := newFixtureWith(t, o, llava.LoadOptions{})
	mmproj := filepath.Join(f.dir, tiny.MmprojFile)
	mc, err := mtmd.Init(mmproj, f.lm, mtmd.Params{NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	if template == "" {
		template = f.lm.ChatTemplate()
	}
	b := &data.Builder{Vocab: f.lm, Mtmd: mc, Template: template, ImageDir: f.dir}
	recs, err := data.Load(filepath.Join(f.dir, tiny.DataFile))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Build(&recs[0])
	if err != nil {
		t.Fatal(err)
	}
	cache, err := data.NewEmbedCache(mc, mmproj, "")
	if err != nil {
		t.Fatal(err)
	}
	seq, err := cache.Sequence(s, f.m.HP.NEmbd)
	if err != nil {
		t.Fatal(err)
	}
	pieces := piecesOf(seq, f.m.HP.NEmbd)
	var runs []int
	total := 0
	for _, p := range pieces {
		if p.embd != nil {
			runs = append(runs, len(p.embd)/p.nEmbd)
			total += runs[len(runs)-1]
		}
	}
	if !slices.Equal(runs, wantRuns) || !slices.Equal(s.NImage, []int{total}) {
		t.Fatalf("image runs %v, NImage %v: want runs %v", runs, s.NImage, wantRuns)
	}
	if !slices.Equal(s.Rows[:len(first)], first) || s.Rows[len(first)] == s.Rows[0] {
		t.Fatalf("sample starts %v: want %v and no repeat", s.Rows[:len(first)+1], first)
	}

	ad, host, lad := f.randomAdapter(t)
	merged := f.mergedModel(t, host)
	check := parityCheck(t, parityTol)
	base := f.calftLogits(t, nil, pieces)
	check("no adapter", base, llamaLogits(t, f.lm, nil, pieces))
	withAd := f.calftLogits(t, ad, pieces)
	if relErr(t, withAd, base) < 1e-3 {
		t.Fatalf("the random adapter barely changes the logits")
	}
	check("with adapter", withAd, llamaLogits(t, f.lm, lad, pieces))
	check("merged vs base+adapter", withAd, llamaLogits(t, merged, nil, pieces))
	checkImageAbsent(t, f, seq)
}

// checkImageAbsent compares the image-absent pass with the sequence rebuilt without its
// image rows, the text rows keeping their positions.
func checkImageAbsent(t *testing.T, f *fixture, seq llava.Sequence) {
	t.Helper()
	e, _, _ := imageAbsent(t, f, seq)
	t.Logf("image-absent pass (all tiles hidden) vs the sequence without image rows: %.2e", e)
	// Two of calft's own graphs: equal to rounding on the CPU; a device's products round
	// differently in differently shaped batches (4e-4 measured on lavapipe).
	if tol := map[bool]float64{true: 1e-5, false: 1e-3}[testbackend.Name() == "cpu"]; e > tol {
		t.Errorf("relative error %.2e > %.0e", e, tol)
	}
}
