package train

import (
	"github.com/calft/calft/chat"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/tiny"
)

// calFixture is the tiny model and dataset opened as training would open them.
func calFixture(t *testing.T) (*Env, []data.Record) {
	t.Helper()
	return calFixtureWith(t, tiny.Options{Seed: 21})
}

// calFixtureWith is calFixture for a tiny model generated with options o.
func calFixtureWith(t *testing.T, o tiny.Options) (*Env, []data.Record) {
	t.Helper()
	template := ""
	if o.Family == tiny.FamilyLLaVA15 {
		template = chat.LLaVA15 // the GGUFs ship no template
	}
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, o); err != nil {
		t.Fatal(err)
	}
	env, err := OpenEnv(EnvOptions{Model: filepath.Join(dir, "base.gguf"), Mmproj: filepath.Join(dir, "mmproj.gguf"), ImageDir: dir, Threads: 2, Template: template})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	recs, err := data.Load(filepath.Join(dir, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	return env, recs
}

// packed builds a batch of the given records and its scored rows.
func packed(t *testing.T, env *Env, recs []data.Record) (*llava.Batch, []*data.Sample, []int32, []cal.Target) {
	t.Helper()
	b := &llava.Batch{}
	var samples []*data.Sample
	var rows []int32
	var targets []cal.Target
	run := 0
	for i := range recs {
		s, err := env.Builder.Build(&recs[i])
		if err != nil {
			t.Fatal(err)
		}
		seq, err := env.Sequence(s)
		if err != nil {
			t.Fatal(err)
		}
		r, tg, next := s.Scored(int32(b.Rows()), run)
		run = next
		rows, targets = append(rows, r...), append(targets, tg...)
		b.Seqs = append(b.Seqs, seq)
		samples = append(samples, s)
	}
	return b, samples, rows, targets
}

// reference computes Δ, w and the loss in float64 from logits of independent
// one-off graphs (all rows, with and without the image).
func reference(t *testing.T, env *Env, b *llava.Batch, samples []*data.Sample, opt cal.Options) (cal.RefResult, float64) {
	t.Helper()
	dec := &llava.Decoder{HP: env.Model.HP, W: &env.Model.W, ExactGELU: true}
	img, err := llava.ComputeLogits(env.Backend, dec, b, false)
	if err != nil {
		t.Fatal(err)
	}
	noImg, err := llava.ComputeLogits(env.Backend, dec, b, true)
	if err != nil {
		t.Fatal(err)
	}
	V := env.Model.HP.NVocab
	f64 := func(x []float32) []float64 {
		out := make([]float64, len(x))
		for i, v := range x {
			out[i] = float64(v)
		}
		return out
	}
	var all cal.RefResult
	var results []cal.RefResult
	for si, s := range samples {
		off := b.Offset(si)
		var rows []cal.RefRow
		for i := 0; i+1 < len(s.Rows); i++ {
			r := off + i
			rows = append(rows, cal.RefRow{
				LogitsImg: f64(img[r*V : (r+1)*V]), LogitsNoImg: f64(noImg[r*V : (r+1)*V]),
				Target: int(s.Rows[i+1]), Supervised: s.Target[i+1],
			})
		}
		res := cal.Reference(rows, opt)
		results = append(results, res)
		for i, row := range rows {
			if row.Supervised {
				all.Delta = append(all.Delta, res.Delta[i])
				all.Weight = append(all.Weight, res.Weight[i])
				all.CE = append(all.CE, res.CE[i])
			}
		}
	}
	return all, cal.RefLoss(results)
}

func relDiff(a, b float64) float64 {
	return math.Abs(a-b) / math.Max(math.Abs(b), 1e-6)
}

func TestCALMatchesReference(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tiny.Options
	}{
		{"llama", tiny.Options{Seed: 21}},
		// M-RoPE: the hidden rows' positions (time, height, width) in the shared pair.
		{"qwen2vl", tiny.Options{Seed: 21, Arch: tiny.ArchQwen2VL}},
		// Interleaved M-RoPE, QK-norm and deepstack slices on the image rows.
		{"qwen3vl", tiny.Options{Seed: 21, Arch: tiny.ArchQwen3VL}},
		// The tiled and wrapped families: every tile's or slice's rows hidden in the
		// image-absent pass, the marker text between them kept.
		{"smolvlm", tiny.Options{Seed: 21, Family: tiny.FamilySmolVLM}},
		{"internvl", tiny.Options{Seed: 21, Family: tiny.FamilyInternVL, Arch: tiny.ArchQwen2}},
		{"minicpmv", tiny.Options{Seed: 21, Family: tiny.FamilyMiniCPMV, Arch: tiny.ArchQwen2}},
		{"pixtral", tiny.Options{Seed: 21, Family: tiny.FamilyPixtral}},
		{"llava15", tiny.Options{Seed: 21, Family: tiny.FamilyLLaVA15}},
		{"gemma3", tiny.Options{Seed: 21, Arch: tiny.ArchGemma3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, recs := calFixtureWith(t, c.o)
			checkCALMatchesReference(t, env, recs)
		})
	}
}

func checkCALMatchesReference(t *testing.T, env *Env, recs []data.Record) {
	// Multi-turn samples (every fourth), text-only ones (the last two) and plain ones.
	batch, samples, rows, targets := packed(t, env, []data.Record{recs[0], recs[3], recs[5], recs[len(recs)-1]})
	// The defaults clamp an untrained model's small Δ to 1 everywhere; a wide range
	// checks the clamp and the smoothing on varied values too. Its floor is 0, the
	// lowest a user may give: below it the weights' sum can be negative, where the
	// loss's guard on that sum (at least 1e-20) and the reference part ways.
	opts := []cal.Options{cal.Defaults(), {Lo: 0, Hi: 2, Window: 3, Smooth: true}, {Lo: 0, Hi: 2, Window: 5, Smooth: true}, {Lo: 0, Hi: 2, Smooth: false}}
	// Both image-absent passes: over every row (Hidden 0) and sharing the full pass's
	// unchanged rows (Hidden > 0, padded), reading the keys of all full-pass rows (Kept
	// 0) or of the kept rows only (padded).
	H, K := HiddenFor(batch), KeptFor(batch)
	// The loss in one block, or in blocks of 7 rows (the vocabulary is small here).
	for _, c := range []struct {
		hidden, kept, block int
		opt                 cal.Options
	}{{0, 0, 0, opts[0]}, {0, 0, 7, opts[1]}, {0, 0, 0, opts[2]}, {0, 0, 7, opts[3]},
		{H, K, 0, opts[0]}, {H, 0, 7, opts[1]}, {H + 16, K + 16, 0, opts[2]}, {H, K, 7, opts[3]}} {
		hidden, opt := c.hidden, c.opt
		// Gemma 3's exact GELU: llama.cpp's table GELU is a staircase, on which the
		// shared pair's rounding (other products than the full pass's) moves a few
		// inputs to the next step and Δ by up to 1.5e-4; this checks CAL, not GELU.
		dec := &llava.Decoder{HP: env.Model.HP, W: &env.Model.W, ExactGELU: true}
		sg, err := NewStepGraph(env.Backend, dec, nil, Shape{Rows: batch.Rows(), Scored: len(rows), Obj: cal.CAL, Hidden: hidden, Kept: c.kept, LossBlock: c.block}, opt, testAlloc(t, env))
		if err != nil {
			t.Fatal(err)
		}
		loss, err := sg.Run(batch, rows, targets)
		if err != nil {
			t.Fatal(err)
		}
		ref, refLoss := reference(t, env, batch, samples, opt)
		delta, w := sg.Loss.Delta.F32(), sg.Loss.Weight.F32()
		var worstD, worstW float64
		var spread bool
		for i := range ref.Delta {
			worstD = math.Max(worstD, math.Abs(float64(delta[i])-ref.Delta[i])/math.Max(1, math.Abs(ref.Delta[i])))
			// Relative to max(1, |w|): with a clamp range through 0 some weights are ~0,
			// where a relative error says nothing (Δ is compared the same way).
			worstW = math.Max(worstW, math.Abs(float64(w[i])-ref.Weight[i])/math.Max(1, math.Abs(ref.Weight[i])))
			spread = spread || math.Abs(ref.Weight[i]-ref.Weight[0]) > 1e-3
		}
		rl := relDiff(loss, refLoss)
		t.Logf("loss blocks of %d rows, hidden rows %d, kept rows %d, %+v: %d targets, worst Δ error %.2e, worst w error %.2e, loss %.6f vs %.6f (rel %.2e)", c.block, hidden, c.kept, opt, len(ref.Delta), worstD, worstW, loss, refLoss, rl)
		if worstD > 1e-4 || worstW > 1e-4 || rl > 1e-4 {
			t.Errorf("%+v: ggml and the float64 reference differ beyond 1e-4", opt)
		}
		if opt.Lo == 0 && !spread {
			t.Errorf("%+v: all weights equal; the check would not see smoothing mistakes", opt)
		}
		sg.Close()
	}
}

func TestCALWithUnitWeightsIsCE(t *testing.T) {
	env, recs := calFixture(t)
	batch, _, rows, targets := packed(t, env, recs[:3])
	dec := &llava.Decoder{HP: env.Model.HP, W: &env.Model.W}
	loss := func(obj cal.Objective, opt cal.Options) float64 {
		sg, err := NewStepGraph(env.Backend, dec, nil, Shape{Rows: batch.Rows(), Scored: len(rows), Obj: obj}, opt, testAlloc(t, env))
		if err != nil {
			t.Fatal(err)
		}
		defer sg.Close()
		l, err := sg.Run(batch, rows, targets)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lc := loss(cal.CAL, cal.Options{Lo: 1, Hi: 1, Window: 3, Smooth: true})
	le := loss(cal.CE, cal.Defaults())
	t.Logf("cal with w≡1: %.7f, ce: %.7f", lc, le)
	if relDiff(lc, le) > 1e-5 {
		t.Errorf("CAL with unit weights %.7f ≠ CE %.7f", lc, le)
	}
}

func TestCALEdgeCases(t *testing.T) {
	env, recs := calFixture(t)
	dec := &llava.Decoder{HP: env.Model.HP, W: &env.Model.W}
	run := func(b *llava.Batch, rows []int32, targets []cal.Target, nScored int) (float64, []float32) {
		sg, err := NewStepGraph(env.Backend, dec, nil, Shape{Rows: b.Rows(), Scored: nScored, Obj: cal.CAL}, cal.Defaults(), testAlloc(t, env))
		if err != nil {
			t.Fatal(err)
		}
		defer sg.Close()
		l, err := sg.Run(b, rows, targets)
		if err != nil {
			t.Fatal(err)
		}
		return l, sg.Loss.Weight.F32()
	}
	// No supervised token: the scored rows are all padding.
	b, _, _, _ := packed(t, env, recs[:1])
	if l, _ := run(b, nil, nil, 4); l != 0 || math.IsNaN(l) {
		t.Errorf("zero supervised tokens: loss %v, want 0", l)
	}
	// A text-only sample: nothing to hide, Δ = 0, every weight = lo.
	textOnly := recs[len(recs)-1]
	if len(textOnly.Images) != 0 {
		t.Fatal("the tiny dataset's last sample should be text-only")
	}
	b, _, rows, targets := packed(t, env, []data.Record{textOnly})
	l, w := run(b, rows, targets, len(rows))
	for i := range rows {
		if w[i] != 1 {
			t.Errorf("text-only sample: weight %v at %d, want lo = 1", w[i], i)
		}
	}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		t.Errorf("text-only sample: loss %v", l)
	}
	// A very long answer.
	long := recs[0]
	long.Conversations = append([]data.Turn(nil), long.Conversations...)
	long.Conversations[1].Value = strings.Repeat("a red circle on the left. ", 40)
	b, _, rows, targets = packed(t, env, []data.Record{long})
	l, _ = run(b, rows, targets, len(rows))
	t.Logf("long answer: %d rows, %d targets, loss %.4f", b.Rows(), len(rows), l)
	if math.IsNaN(l) || math.IsInf(l, 0) || len(rows) < 250 {
		t.Errorf("long answer: %d targets, loss %v", len(rows), l)
	}
}

// testAlloc is a shared compute buffer for a test's graphs, freed when it ends.
func testAlloc(t *testing.T, env *Env) *Allocator {
	al := NewAllocator(env.Backend)
	t.Cleanup(al.Close)
	return al
}
