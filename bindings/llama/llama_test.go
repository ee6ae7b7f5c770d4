package llama

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func loadTiny(t *testing.T, p ModelParams) *Model {
	t.Helper()
	m, err := LoadModel(filepath.Join(testDir(t), "base.gguf"), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestLoadModel(t *testing.T) {
	m := loadTiny(t, ModelParams{UseMmap: true})
	if m.NEmbd() != 64 || m.NLayer() < 1 || m.NVocab() < 256 || m.NCtxTrain() <= 0 {
		t.Fatalf("hparams: embd %d layer %d vocab %d ctx %d", m.NEmbd(), m.NLayer(), m.NVocab(), m.NCtxTrain())
	}
	if m.Arch() != "llama" {
		t.Errorf("arch %q", m.Arch())
	}
	if m.Description() == "" {
		t.Error("empty description")
	}
	if _, ok := m.Meta("no.such.key"); ok {
		t.Error("missing key reported present")
	}
	if m.UsesMRoPE() {
		t.Error("llama arch reported M-RoPE")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestVocabOnly(t *testing.T) {
	m := loadTiny(t, ModelParams{VocabOnly: true})
	toks, err := m.Tokenize("the cat", true, false)
	if err != nil || len(toks) < 2 {
		t.Fatalf("tokenize: %v %v", toks, err)
	}
	if _, err := NewContext(m, ContextParams{NCtx: 64}); err == nil {
		t.Fatal("a vocab-only model must not give a context")
	}
}

func TestTokenizeRoundTrip(t *testing.T) {
	m := loadTiny(t, ModelParams{VocabOnly: true})
	for _, s := range []string{"the cat sat on the mat", "Zebra! 42 ünïcödé ✓", ""} {
		toks, err := m.Tokenize(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		back, err := m.Detokenize(toks, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if back != s {
			t.Errorf("round trip %q -> %v -> %q", s, toks, back)
		}
		withBOS, _ := m.Tokenize(s, true, false)
		if m.AddBOS() && (len(withBOS) == 0 || withBOS[0] != m.BOS()) {
			t.Fatalf("%q: no BOS in %v", s, withBOS)
		}
		back, _ = m.Detokenize(withBOS, true, false)
		if strings.TrimPrefix(back, " ") != s {
			t.Errorf("round trip with BOS %q -> %q", s, back)
		}
		var b strings.Builder
		for _, tk := range toks {
			p, err := m.TokenToPiece(tk, false)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(p)
		}
		if got := strings.TrimPrefix(b.String(), " "); got != s {
			t.Errorf("pieces of %q join to %q", s, got)
		}
	}
	// Special-token text is one control token only with parseSpecial.
	withSpecial, _ := m.Tokenize("<|im_start|>", false, true)
	plain, _ := m.Tokenize("<|im_start|>", false, false)
	if len(withSpecial) != 1 || !m.IsControl(withSpecial[0]) || len(plain) <= 1 {
		t.Errorf("special parsing: %v vs %v", withSpecial, plain)
	}
	if !m.IsEOG(m.EOS()) {
		t.Error("EOS is not end-of-generation")
	}
	if m.TokenAttr(m.BOS())&AttrControl == 0 || m.TokenText(m.BOS()) == "" {
		t.Error("BOS attributes")
	}
	// Out-of-range ids are errors or zero values, never a crash in C++.
	if _, err := m.TokenToPiece(int32(m.NVocab()), false); err == nil {
		t.Error("TokenToPiece accepted an id outside the vocabulary")
	}
	if _, err := m.Detokenize([]int32{-5}, false, false); err == nil {
		t.Error("Detokenize accepted a negative id")
	}
	if m.IsControl(-1) || m.TokenText(1<<30) != "" || m.TokenScore(-1) != 0 {
		t.Error("getters on bad ids")
	}
}

func TestChatTemplate(t *testing.T) {
	m := loadTiny(t, ModelParams{VocabOnly: true})
	tmpl := m.ChatTemplate()
	if tmpl == "" {
		t.Fatal("tiny model has no chat template")
	}
	msgs := []ChatMessage{{"system", "be brief"}, {"user", "hello"}}
	out, err := ApplyChatTemplate(tmpl, msgs, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
	if out != want {
		t.Errorf("chatml:\n%q\nwant\n%q", out, want)
	}
	// A long conversation exercises the grow-and-retry path.
	long := []ChatMessage{{"user", strings.Repeat("x", 5000)}}
	if out, err := ApplyChatTemplate("chatml", long, false); err != nil || len(out) < 5000 {
		t.Errorf("long: %d %v", len(out), err)
	}
	if _, err := ApplyChatTemplate("{{ nonsense }}", msgs, true); err == nil {
		t.Error("unknown template accepted")
	}
	if _, err := ApplyChatTemplate("", msgs, true); err == nil {
		t.Error("empty template accepted")
	}
}

func finite(t *testing.T, v []float32) {
	t.Helper()
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("logit %d is %v", i, x)
		}
	}
}

func TestDecode(t *testing.T) {
	m := loadTiny(t, ModelParams{})
	c, err := NewContext(m, ContextParams{NCtx: 128, NBatch: 16, NThreads: 2, KVF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	toks, _ := m.Tokenize("the cat sat on the mat", true, false)
	if err := c.DecodeTokens(toks, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	all, err := c.LogitsAll()
	if err != nil || len(all) != len(toks)*m.NVocab() {
		t.Fatalf("LogitsAll: %d floats, %v", len(all), err)
	}
	finite(t, all)
	last, err := c.Logits(-1)
	if err != nil || len(last) != m.NVocab() {
		t.Fatalf("Logits(-1): %v", err)
	}
	if !slices.Equal(last, all[(len(toks)-1)*m.NVocab():]) {
		t.Error("Logits(-1) differs from the last row of LogitsAll")
	}

	// The same prompt in a fresh cache, decoded in two calls with logits only at the
	// end, gives the same last row; a call longer than NBatch is split transparently.
	c.ClearMemory()
	long := append(append([]int32{}, toks...), toks[1:]...)
	long = append(long, long[1:]...)
	if len(long) <= c.NBatch() {
		t.Fatalf("test prompt of %d tokens does not exceed the batch", len(long))
	}
	if err := c.DecodeTokens(long, 0, 0, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logits(0); err == nil {
		t.Error("row 0 has no logits but Logits(0) succeeded")
	}
	if l, err := c.Logits(len(long) - 1); err != nil || len(l) != m.NVocab() {
		t.Fatalf("last row: %v", err)
	}
	c.ClearMemory()
	if err := c.DecodeTokens(toks[:3], 0, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeTokens(toks[3:], 3, 0, false); err != nil {
		t.Fatal(err)
	}
	split, _ := c.Logits(-1)
	if d := maxDiff(split, last); d > 1e-4 {
		t.Errorf("split decode differs by %g", d)
	}

	// Bad input is refused in Go.
	if err := c.DecodeTokens([]int32{int32(m.NVocab())}, len(toks), 0, false); err == nil {
		t.Error("token outside the vocabulary accepted")
	}
	if err := c.DecodeTokens(toks, 0, 3, false); err == nil {
		t.Error("sequence id outside n_seq_max accepted")
	}
	if err := c.DecodeTokens(long, 0, 0, true); err == nil {
		t.Error("logitsAll over NBatch accepted")
	}
	if err := c.DecodeTokens(nil, 0, 0, false); err == nil {
		t.Error("empty decode accepted")
	}
	// A position that breaks the sequence is llama.cpp's error, returned as a Go error.
	if err := c.DecodeTokens(toks[:1], 50, 0, false); err == nil {
		t.Error("non-consecutive position accepted")
	}
}

func TestDecodeEmbeddings(t *testing.T) {
	m := loadTiny(t, ModelParams{})
	c, err := NewContext(m, ContextParams{NCtx: 64, NThreads: 2, KVF32: true, Embeddings: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows := make([]float32, 3*m.NEmbdInp())
	for i := range rows {
		rows[i] = float32(math.Sin(float64(i)))
	}
	if err := c.DecodeEmbeddings(rows, 3, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		l, err := c.Logits(i)
		if err != nil {
			t.Fatal(err)
		}
		finite(t, l)
	}
	if h, err := c.Embeddings(-1); err != nil || len(h) != m.NEmbd() {
		t.Fatalf("Embeddings: %d %v", len(h), err)
	}
	// Text continues after embedding rows at the next position.
	toks, _ := m.Tokenize("the", false, false)
	if err := c.DecodeTokens(toks, 3, 0, false); err != nil {
		t.Fatal(err)
	}
	if err := c.DecodeEmbeddings(rows[:5], 1, 4, 0, false); err == nil {
		t.Error("short embedding row accepted")
	}
	bad := append([]float32{}, rows[:m.NEmbdInp()]...)
	bad[3] = float32(math.NaN())
	if err := c.DecodeEmbeddings(bad, 1, 4, 0, false); err == nil {
		t.Error("NaN embedding accepted")
	}
}

func TestMissingAndBadFiles(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.gguf")
	if _, err := LoadModel(missing, ModelParams{}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing model: %v", err)
	}
	text := filepath.Join(dir, "notes.gguf")
	os.WriteFile(text, []byte("hello, not a model at all, but long enough"), 0o644)
	if _, err := LoadModel(text, ModelParams{}); err == nil || !strings.Contains(err.Error(), text) {
		t.Errorf("text file as model: %v", err)
	}
	if _, err := LoadModel(dir, ModelParams{}); err == nil {
		t.Error("directory accepted as model")
	}
	// A GGUF header with garbage after it reaches llama.cpp, which fails cleanly.
	trunc := filepath.Join(dir, "trunc.gguf")
	os.WriteFile(trunc, append([]byte("GGUF\x03\x00\x00\x00"), bytes.Repeat([]byte{0xFF}, 40)...), 0o644)
	if _, err := LoadModel(trunc, ModelParams{}); err == nil || !strings.Contains(err.Error(), trunc) {
		t.Errorf("truncated GGUF: %v", err)
	}
}

func TestAdapterErrors(t *testing.T) {
	m := loadTiny(t, ModelParams{})
	dir := t.TempDir()
	notGGUF := filepath.Join(dir, "adapter.bin")
	os.WriteFile(notGGUF, []byte("PK\x03\x04 this is a zip, not a LoRA adapter........"), 0o644)
	if _, err := LoadAdapter(m, notGGUF); err == nil || !strings.Contains(err.Error(), notGGUF) {
		t.Errorf("non-GGUF adapter: %v", err)
	}
	missing := filepath.Join(dir, "missing.gguf")
	if _, err := LoadAdapter(m, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing adapter: %v", err)
	}
	// A real GGUF that is not an adapter (the base model itself) is refused by llama.cpp.
	_, err := LoadAdapter(m, m.Path())
	if err == nil {
		t.Fatal("base model accepted as an adapter")
	}
	t.Log(err)
}

func TestLogFilter(t *testing.T) {
	var buf bytes.Buffer
	SetLogOutput(&buf)
	defer SetLogOutput(os.Stderr)
	SetLogLevel(LogWarn)
	defer SetLogLevel(LogQuiet)
	LogFrom("t", int(LogInfo), "info line")
	LogFrom("t", levelCont, ".")
	LogFrom("t", int(LogWarn), "warn line")
	LogFrom("t", levelCont, "+cont")
	LogFrom("t", int(LogError), "error line")
	LogFrom("t", levelCont, " more")
	if got := buf.String(); got != "warn line+conterror line more" {
		t.Errorf("printed %q", got)
	}
	if got := takeErrors(); got != "error line more" {
		t.Errorf("kept errors %q", got)
	}
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
