package tiny

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/gguf/check"
)

func generate(t *testing.T, o Options) string {
	t.Helper()
	dir := t.TempDir()
	if err := GenerateWith(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

// allFiles maps each generated file (relative path) to its bytes.
func allFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSameSeedSameBytes(t *testing.T) {
	a := allFiles(t, generate(t, Options{Seed: 42}))
	b := allFiles(t, generate(t, Options{Seed: 42}))
	if len(a) != len(b) || len(a) != 3+defaultSamples-2 {
		t.Fatalf("file counts %d and %d", len(a), len(b))
	}
	for name, data := range a {
		if !bytes.Equal(data, b[name]) {
			t.Errorf("%s differs between runs with the same seed", name)
		}
	}
}

func TestDifferentSeedDifferentWeights(t *testing.T) {
	d1, d2 := generate(t, Options{Seed: 1}), generate(t, Options{Seed: 2})
	for _, name := range []string{BaseFile, MmprojFile} {
		f1, err := gguf.Open(filepath.Join(d1, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f1.Close()
		f2, err := gguf.Open(filepath.Join(d2, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f2.Close()
		for _, ti := range f1.Tensors {
			w1, _ := f1.TensorF32(ti.Name)
			w2, _ := f2.TensorF32(ti.Name)
			if slices.Equal(w1, w2) {
				t.Errorf("%s %s is identical for seeds 1 and 2", name, ti.Name)
			}
		}
		// Same metadata, same layout: only the weights change.
		if f1.DataOffset != f2.DataOffset || len(f1.KVs()) != len(f2.KVs()) {
			t.Errorf("%s: layout depends on the seed", name)
		}
	}
}

func TestGeneratedFilesPassChecks(t *testing.T) {
	for _, tied := range []bool{false, true} {
		dir := generate(t, Options{Seed: 3, TiedOutput: tied})
		m, err := check.TextModel(filepath.Join(dir, BaseFile))
		if err != nil {
			t.Fatal(err)
		}
		if m.Tied != tied || m.NEmbd != NEmbd || m.NLayer != NLayer || m.NHead != NHead || m.NHeadKV != NHeadKV || m.NFF != NFF || m.NCtxTrain != NCtx {
			t.Errorf("tied=%v: model %+v", tied, m)
		}
		if n := len(BuildVocab().Tokens); m.NVocab != n || n < 400 || n > 600 {
			t.Errorf("vocab of %d tokens (model says %d), want 400..600", n, m.NVocab)
		}
		mm, err := check.Mmproj(filepath.Join(dir, MmprojFile))
		if err != nil {
			t.Fatal(err)
		}
		if mm.TokensPerImage != TokensPerImage || mm.OutputWidth != NEmbd {
			t.Errorf("mmproj: %d tokens of width %d", mm.TokensPerImage, mm.OutputWidth)
		}
		if err := check.MmprojForModel(mm, m); err != nil {
			t.Error(err)
		}
	}
}

// The tied option only drops output.weight; every other tensor is the same.
func TestTiedOptionKeepsOtherWeights(t *testing.T) {
	a, b := generate(t, Options{Seed: 9}), generate(t, Options{Seed: 9, TiedOutput: true})
	fa, _ := gguf.Open(filepath.Join(a, BaseFile))
	defer fa.Close()
	fb, _ := gguf.Open(filepath.Join(b, BaseFile))
	defer fb.Close()
	if len(fa.Tensors) != len(fb.Tensors)+1 {
		t.Fatalf("%d and %d tensors", len(fa.Tensors), len(fb.Tensors))
	}
	for _, ti := range fb.Tensors {
		x, _ := fa.TensorData(ti.Name)
		y, _ := fb.TensorData(ti.Name)
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between the tied and untied variants", ti.Name)
		}
	}
}

func TestVocabulary(t *testing.T) {
	v := BuildVocab()
	ids := map[string]int{}
	for i, tok := range v.Tokens {
		if _, dup := ids[tok]; dup {
			t.Fatalf("duplicate token %q", tok)
		}
		ids[tok] = i
	}
	for tok, id := range map[string]int{"<unk>": UnkID, "<s>": BOSID, "</s>": SentEndID, "<|im_start|>": ImStartID, "<|im_end|>": ImEndID, "<0x00>": firstByte, "<0x0A>": firstByte + 10, "<0xFF>": firstByte + 255} {
		if ids[tok] != id {
			t.Errorf("%q has id %d, want %d", tok, ids[tok], id)
		}
	}
	if v.Types[ImStartID] != typeControl || v.Types[firstByte+7] != typeByte || v.Types[ids["▁circle"]] != typeNormal {
		t.Error("token types")
	}
	// Every word is reachable by merges: all its "▁" prefixes are pieces.
	for _, w := range vocabWords {
		for k := 1; k <= len(w); k++ {
			if _, ok := ids[spaceMark+w[:k]]; !ok {
				t.Errorf("piece %q of %q missing", spaceMark+w[:k], w)
			}
		}
		if v.Scores[ids[spaceMark+w]] <= v.Scores[ids[spaceMark+w[:1]]] && len(w) > 1 {
			t.Errorf("%q does not score above its first piece", w)
		}
	}
	for _, w := range lineStartWords {
		if _, ok := ids[w]; !ok && len(w) > 1 {
			t.Errorf("line-start piece %q missing", w)
		}
	}
	if !strings.Contains(ChatTemplate, "<|im_start|>") {
		t.Error("template is not recognisable as ChatML")
	}
	if err := CheckText("a red circle on the left."); err != nil {
		t.Error(err)
	}
	if err := CheckText("a crimson blob"); err == nil || !strings.Contains(err.Error(), "crimson, blob") {
		t.Errorf("CheckText: %v", err)
	}
}

func TestDataset(t *testing.T) {
	dir := generate(t, Options{Seed: 5})
	raw, err := os.ReadFile(filepath.Join(dir, DataFile))
	if err != nil {
		t.Fatal(err)
	}
	var samples []Sample
	if err := json.Unmarshal(raw, &samples); err != nil {
		t.Fatal(err)
	}
	if len(samples) != defaultSamples {
		t.Fatalf("%d samples", len(samples))
	}
	var textOnly, multi int
	for _, s := range samples {
		turns := s.Conversations
		if len(turns)%2 != 0 || len(turns) == 0 {
			t.Errorf("%s: %d turns", s.ID, len(turns))
		}
		for i, tu := range turns {
			if want := []string{"human", "gpt"}[i%2]; tu.From != want {
				t.Errorf("%s turn %d from %q", s.ID, i, tu.From)
			}
			hasMarker := strings.Contains(tu.Value, ImageMarker)
			if hasMarker != (s.Image != "" && i == 0) {
				t.Errorf("%s turn %d: marker %v with image %q", s.ID, i, hasMarker, s.Image)
			}
			if err := CheckText(tu.Value); err != nil {
				t.Errorf("%s: %v", s.ID, err)
			}
		}
		if len(turns) == 4 {
			multi++
		}
		if s.Image == "" {
			textOnly++
			continue
		}
		if !strings.HasPrefix(turns[0].Value, ImageMarker+"\n") || !strings.HasPrefix(s.Image, ImageDir+"/") {
			t.Errorf("%s: image %q, first turn %q", s.ID, s.Image, turns[0].Value)
		}
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(s.Image)))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != ImageSize || b.Dy() != ImageSize {
			t.Errorf("%s: image is %v", s.ID, b)
		}
	}
	if textOnly != 2 || multi < 3 {
		t.Errorf("%d text-only and %d multi-turn samples", textOnly, multi)
	}
}

func TestScenes(t *testing.T) {
	cases := map[string]Scene{
		"a red circle on the left.":            {Circle, Red, Left, 1},
		"two blue squares at the top.":         {Square, Blue, Top, 2},
		"four purple triangles in the middle.": {Triangle, Purple, Middle, 4},
	}
	for want, sc := range cases {
		if got := Describe(sc); got != want {
			t.Errorf("Describe(%+v) = %q, want %q", sc, got, want)
		}
		if err := CheckText(want); err != nil {
			t.Error(err)
		}
	}
	// The shape is drawn in its region and nowhere else.
	img := DrawScene(Scene{Circle, Red, Left, 1}, 32)
	var left, right int
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			if img.RGBAAt(x, y) == Red.RGBA() {
				if x < 16 {
					left++
				} else {
					right++
				}
			}
		}
	}
	if left < 50 || right != 0 {
		t.Errorf("red pixels: %d left, %d right", left, right)
	}
	for n := 1; n <= MaxCount; n++ {
		img := DrawScene(Scene{Square, Black, Bottom, n}, 64)
		if img.RGBAAt(32, 10) != Background {
			t.Errorf("count %d: top half not background", n)
		}
	}
	// Samplers respect their choices.
	rng := rand.New(rand.NewPCG(1, 1))
	s := SceneSampler{Shapes: []Shape{Triangle}, Colors: []Color{Green}, Positions: []Position{Top, Bottom}, MaxCount: 3}
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		sc := s.Sample(rng)
		if sc.Shape != Triangle || sc.Color != Green || (sc.Position != Top && sc.Position != Bottom) || sc.Count < 1 || sc.Count > 3 {
			t.Fatalf("sampled %+v", sc)
		}
		seen[sc.Count] = true
	}
	if len(seen) != 3 {
		t.Errorf("counts seen: %v", seen)
	}
	if sc := RandomScene(rng); sc.Count != 1 || sc.Position > Right || sc.Color > Yellow {
		t.Errorf("RandomScene drew %+v outside the basic distribution", sc)
	}
}
