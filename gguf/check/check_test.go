package check_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/tiny"
)

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

// tinyModel generates the synthetic model once for all tests in this file.
func tinyModel(t *testing.T) (base, mmproj string) {
	t.Helper()
	tinyOnce.Do(func() {
		tinyDir, tinyErr = mkdirTemp()
		if tinyErr == nil {
			tinyErr = tiny.Generate(tinyDir, 7)
		}
	})
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return filepath.Join(tinyDir, tiny.BaseFile), filepath.Join(tinyDir, tiny.MmprojFile)
}

// rewrite copies src to a new file after mutate has edited its metadata;
// keep decides which tensors are copied (nil keeps all).
func rewrite(t *testing.T, src string, mutate func(w *gguf.Writer), keep func(name string) bool) string {
	t.Helper()
	f, err := gguf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriterFrom(f)
	for _, ti := range f.Tensors {
		if keep != nil && !keep(ti.Name) {
			continue
		}
		data, err := f.TensorData(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, data); err != nil {
			t.Fatal(err)
		}
	}
	if mutate != nil {
		mutate(w)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantErr(t *testing.T, err error, kind error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q, want kind %v", err, kind)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q lacks %q", err, f)
		}
	}
}

func TestCheckTextModelOnTiny(t *testing.T) {
	base, _ := tinyModel(t)
	m, err := check.TextModel(base)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintln(m.Arch, m.NEmbd, m.NLayer, m.NHead, m.NHeadKV, m.NFF, m.NCtxTrain, m.HeadDim, m.Rope.Dims, m.RMSEps, m.Rope.Base, m.Tied)
	want := fmt.Sprintln("llama", 64, 2, 4, 2, 160, 512, 16, 16, float32(1e-5), float32(10000), false)
	if got != want {
		t.Errorf("hyper-parameters %s, want %s", got, want)
	}
	v := m.Vocab
	if v.Model != "llama" || v.Size != m.NVocab || v.BOS != tiny.BOSID || v.EOS != tiny.EOSID || v.EOT != tiny.ImEndID || !v.AddBOS || v.NByte != 256 || v.ChatTemplate == "" {
		t.Errorf("vocab %+v", v)
	}
	if m.Tensors["blk.1.ffn_down.weight"].Type != gguf.F32 {
		t.Error("tensor types not reported")
	}
}

func TestCheckTextModelRejects(t *testing.T) {
	base, mmproj := tinyModel(t)
	set := func(key string, v gguf.Value) func(*gguf.Writer) {
		return func(w *gguf.Writer) { w.Set(key, v) }
	}
	del := func(key string) func(*gguf.Writer) {
		return func(w *gguf.Writer) { w.Delete(key) }
	}
	tokens := tiny.BuildVocab().Tokens
	cases := []struct {
		name     string
		mutate   func(*gguf.Writer)
		keep     func(string) bool
		kind     error
		fragment []string
	}{
		{"wrong key type", set("llama.embedding_length", gguf.Int32Value(64)), nil, gguf.ErrKeyType, []string{"llama.embedding_length", "has type i32", "expected u32"}},
		{"missing key", del("llama.block_count"), nil, gguf.ErrKeyMissing, []string{"llama.block_count"}},
		{"unsupported arch", set("general.architecture", gguf.StringValue("gpt2")), nil, gguf.ErrUnsupported, []string{`"gpt2"`}},
		{"eps type", set("llama.attention.layer_norm_rms_epsilon", gguf.Float64Value(1e-5)), nil, gguf.ErrKeyType, []string{"f64"}},
		{"head count floats", set("llama.attention.head_count", gguf.ArrayValue([]float32{4, 4})), nil, gguf.ErrKeyType, []string{"attention.head_count"}},
		{"head count varies", set("llama.attention.head_count", gguf.ArrayValue([]uint32{4, 2})), nil, gguf.ErrUnsupported, []string{"differs between layers"}},
		{"gqa", set("llama.attention.head_count_kv", gguf.Uint32Value(3)), nil, gguf.ErrCorrupt, []string{"multiple of KV heads"}},
		{"rope dims", set("llama.rope.dimension_count", gguf.Uint32Value(8)), nil, gguf.ErrCorrupt, []string{"rope.dimension_count is 8"}},
		{"rope scaling", set("llama.rope.scaling.type", gguf.StringValue("weird")), nil, gguf.ErrCorrupt, []string{`"weird"`}},
		{"moe", set("llama.expert_count", gguf.Uint32Value(8)), nil, gguf.ErrUnsupported, []string{"mixture-of-experts"}},
		{"experts used without experts", set("llama.expert_used_count", gguf.Uint32Value(2)), nil, gguf.ErrCorrupt, []string{"no experts"}},
		{"vocab size type", set("llama.vocab_size", gguf.Uint64Value(566)), nil, gguf.ErrKeyType, []string{"llama.vocab_size"}},
		{"scores short", set("tokenizer.ggml.scores", gguf.ArrayValue([]float32{1, 2})), nil, gguf.ErrCorrupt, []string{"scores has 2 entries"}},
		{"token types u8", set("tokenizer.ggml.token_type", gguf.ArrayValue(make([]uint8, len(tokens)))), nil, gguf.ErrKeyType, []string{"token_type", "array[u8]"}},
		{"duplicate token", set("tokenizer.ggml.tokens", gguf.ArrayValue(append(append([]string{}, tokens[:len(tokens)-1]...), tokens[0]))), nil, gguf.ErrCorrupt, []string{"both", "<unk>"}},
		{"tokens not strings", set("tokenizer.ggml.tokens", gguf.ArrayValue([]uint32{1, 2})), nil, gguf.ErrKeyType, []string{"tokenizer.ggml.tokens"}},
		{"no byte tokens", set("tokenizer.ggml.tokens", gguf.ArrayValue(renameByteToken(tokens))), nil, gguf.ErrUnsupported, []string{"byte tokens", "<0x00>"}},
		{"unknown tokenizer", set("tokenizer.ggml.model", gguf.StringValue("bert")), nil, gguf.ErrUnsupported, []string{`"bert"`}},
		{"bos type", set("tokenizer.ggml.bos_token_id", gguf.Int32Value(1)), nil, gguf.ErrKeyType, []string{"bos_token_id"}},
		{"name type", set("general.name", gguf.Uint32Value(1)), nil, gguf.ErrKeyType, []string{"general.name"}},
		{"nested arrays", set("x.nested", gguf.NestedArrayValue([]gguf.Value{gguf.ArrayValue([]uint8{1})})), nil, gguf.ErrUnsupported, []string{"nested arrays"}},
		{"missing tensor", nil, func(n string) bool { return n != "blk.1.attn_k.weight" }, gguf.ErrTensorMissing, []string{"blk.1.attn_k.weight"}},
		{"wrong shape", set("llama.feed_forward_length", gguf.Uint32Value(64)), nil, gguf.ErrTensorShape, []string{"blk.0.ffn_gate.weight", "[64 160]", "[64 64]"}},
		{"extra tensor", func(w *gguf.Writer) { w.AddTensorF32("blk.5.extra.weight", gguf.F32, []uint64{1}, []float32{0}) }, nil, gguf.ErrUnsupported, []string{"unexpected tensor", "blk.5.extra.weight"}},
		// Keys and tensors libllama applies that calft's decoder does not implement
		// are refused by name.
		{"longrope", set("llama.rope.scaling.type", gguf.StringValue("longrope")), nil, gguf.ErrUnsupported, []string{"llama.rope.scaling.type", "longrope"}},
		{"value length", set("llama.attention.value_length", gguf.Uint32Value(8)), nil, gguf.ErrUnsupported, []string{"llama.attention.value_length"}},
		{"ff varies", set("llama.feed_forward_length", gguf.ArrayValue([]uint32{160, 128})), nil, gguf.ErrUnsupported, []string{"llama.feed_forward_length", "differs between layers"}},
		{"longrope factors", func(w *gguf.Writer) {
			w.AddTensorF32("rope_factors_long.weight", gguf.F32, []uint64{8}, make([]float32, 8))
		}, nil, gguf.ErrUnsupported, []string{"rope_factors_long.weight"}},
		{"f16 norm", func(w *gguf.Writer) {
			w.AddTensorF32("blk.0.attn_norm.weight", gguf.F16, []uint64{64}, make([]float32, 64))
		}, func(n string) bool { return n != "blk.0.attn_norm.weight" }, gguf.ErrTensorType, []string{"blk.0.attn_norm.weight", "F32"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := check.TextModel(rewrite(t, base, c.mutate, c.keep))
			wantErr(t, err, c.kind, c.fragment...)
		})
	}
	_, err := check.TextModel(mmproj)
	wantErr(t, err, gguf.ErrUnsupported, "expected a text model", "vision projector (mmproj)")
}

// TestCheckQwen2VL reads the tiny qwen2vl model's M-RoPE sections and refuses
// sections llama.cpp would not read or would wrap, and a missing q/k/v bias (qwen2vl's
// builder adds them unconditionally).
func TestCheckQwen2VL(t *testing.T) {
	dir := t.TempDir()
	if err := tiny.GenerateWith(dir, tiny.Options{Seed: 7, Arch: tiny.ArchQwen2VL}); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, tiny.BaseFile)
	m, err := check.TextModel(base)
	if err != nil {
		t.Fatal(err)
	}
	if m.Arch != "qwen2vl" || !m.MRoPE() || m.Rope.Sections != [4]int{2, 3, 3, 0} {
		t.Errorf("read %s, rope %+v", m.Arch, m.Rope)
	}
	const key = "qwen2vl.rope.dimension_sections"
	set := func(v gguf.Value) func(*gguf.Writer) { return func(w *gguf.Writer) { w.Set(key, v) } }
	for _, c := range []struct {
		name     string
		mutate   func(*gguf.Writer)
		keep     func(string) bool
		kind     error
		fragment []string
	}{
		{"missing", func(w *gguf.Writer) { w.Delete(key) }, nil, gguf.ErrKeyMissing, []string{key}},
		{"three", set(gguf.ArrayValue([]int32{2, 3, 3})), nil, gguf.ErrCorrupt, []string{key, "3 entries"}},
		{"sum", set(gguf.ArrayValue([]int32{2, 3, 2, 0})), nil, gguf.ErrCorrupt, []string{key, "sums to 7", "8 pairs"}},
		{"floats", set(gguf.ArrayValue([]float32{2, 3, 3, 0})), nil, gguf.ErrKeyType, []string{key}},
		{"negative", set(gguf.ArrayValue([]int32{-1, 3, 6, 0})), nil, gguf.ErrCorrupt, []string{key, "out of range"}},
		{"no k bias", nil, func(n string) bool { return n != "blk.1.attn_k.bias" }, gguf.ErrTensorMissing, []string{"blk.1.attn_k.bias"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := check.TextModel(rewrite(t, base, c.mutate, c.keep))
			wantErr(t, err, c.kind, c.fragment...)
		})
	}
	// A Qwen2-VL projector with a text model without M-RoPE is refused; so is the other
	// way round (libllama would give the rows (p, p, p, 0), but no such model exists:
	// LLaVA's projector goes with llama and qwen2 text models).
	llamaBase, llavaMmproj := tinyModel(t)
	_, _, err = check.ModelAndMmproj(llamaBase, filepath.Join(dir, tiny.MmprojFile))
	wantErr(t, err, gguf.ErrMismatch, "qwen2vl_merger", "M-RoPE", llamaBase, "(llama)")
	_, _, err = check.ModelAndMmproj(base, llavaMmproj)
	wantErr(t, err, gguf.ErrMismatch, "(mlp)", "llama or qwen2 text models", base, "is qwen2vl")
	// Qwen3-VL's projector appends deepstack slices to each row: with Qwen2-VL's text
	// model the widths differ (128 vs 64), and Qwen2-VL's projector gives Qwen3-VL's
	// text model rows without the slices it expects; both are refused naming both files.
	q3 := t.TempDir()
	if err := tiny.GenerateWith(q3, tiny.Options{Seed: 7, Arch: tiny.ArchQwen3VL}); err != nil {
		t.Fatal(err)
	}
	q3Base, q3Mmproj := filepath.Join(q3, tiny.BaseFile), filepath.Join(q3, tiny.MmprojFile)
	if _, _, err := check.ModelAndMmproj(q3Base, q3Mmproj); err != nil {
		t.Fatalf("qwen3vl with its own projector: %v", err)
	}
	_, _, err = check.ModelAndMmproj(base, q3Mmproj)
	wantErr(t, err, gguf.ErrMismatch, "Qwen3-VL projector (qwen3vl_merger)", q3Mmproj, base, "is qwen2vl")
	_, _, err = check.ModelAndMmproj(q3Base, filepath.Join(dir, tiny.MmprojFile))
	wantErr(t, err, gguf.ErrMismatch, "Qwen2-VL projector (qwen2vl_merger)", q3Base, "is qwen3vl")
	// The widths themselves: Qwen3-VL's rows are n_embd × (1 + deepstack layers) wide.
	q3Model, err := check.TextModel(q3Base)
	if err != nil {
		t.Fatal(err)
	}
	q3mm, err := check.Mmproj(q3Mmproj)
	if err != nil {
		t.Fatal(err)
	}
	if q3mm.OutputWidth != 128 || q3Model.NEmbdInp() != 128 || q3mm.Deepstack != 1 {
		t.Fatalf("qwen3vl: projector rows %d wide (%d deepstack), text input %d", q3mm.OutputWidth, q3mm.Deepstack, q3Model.NEmbdInp())
	}
	narrow := *q3Model
	narrow.Deepstack = 0
	wantErr(t, check.MmprojForModel(q3mm, &narrow), gguf.ErrMismatch, "width 128", "n_embd 64", q3Base)
	// UINT32 sections are read too, as llama.cpp reads them.
	if _, err := check.TextModel(rewrite(t, base, set(gguf.ArrayValue([]uint32{2, 3, 3, 0})), nil)); err != nil {
		t.Errorf("UINT32 sections: %v", err)
	}
}

// renameByteToken makes <0x00> a different piece, so byte 0 has no token.
func renameByteToken(tokens []string) []string {
	out := append([]string(nil), tokens...)
	for i, tok := range out {
		if tok == "<0x00>" {
			out[i] = "<zero>"
		}
	}
	return out
}

func TestTiedOutputVariant(t *testing.T) {
	base, _ := tinyModel(t)
	tied := rewrite(t, base, nil, func(n string) bool { return n != "output.weight" })
	m, err := check.TextModel(tied)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Tied {
		t.Error("model without output.weight not reported as tied")
	}
}

func TestCheckMmproj(t *testing.T) {
	base, mmproj := tinyModel(t)
	mm, err := check.Mmproj(mmproj)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintln(mm.ProjectorType, mm.ImageSize, mm.PatchSize, mm.NEmbd, mm.NHead, mm.NFF, mm.NLayer, mm.OutputWidth, mm.TokensPerImage)
	if want := "mlp 32 8 32 2 48 2 64 16\n"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	model, err := check.TextModel(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := check.MmprojForModel(mm, model); err != nil {
		t.Error(err)
	}
	narrow := *model
	narrow.NEmbd = 576
	wantErr(t, check.MmprojForModel(mm, &narrow), gguf.ErrMismatch, mmproj, base, "width 64", "n_embd 576")

	set := func(key string, v gguf.Value) func(*gguf.Writer) {
		return func(w *gguf.Writer) { w.Set(key, v) }
	}
	cases := []struct {
		name     string
		mutate   func(*gguf.Writer)
		keep     func(string) bool
		kind     error
		fragment []string
	}{
		{"has_vision type", set("clip.has_vision_encoder", gguf.Uint8Value(1)), nil, gguf.ErrKeyType, []string{"clip.has_vision_encoder", "expected bool"}},
		{"no vision", set("clip.has_vision_encoder", gguf.BoolValue(false)), nil, gguf.ErrUnsupported, []string{"no vision encoder"}},
		{"image size type", set("clip.vision.image_size", gguf.Int32Value(32)), nil, gguf.ErrKeyType, []string{"clip.vision.image_size"}},
		{"eps type", set("clip.vision.attention.layer_norm_epsilon", gguf.Float64Value(1e-5)), nil, gguf.ErrKeyType, []string{"layer_norm_epsilon"}},
		{"mean short", set("clip.vision.image_mean", gguf.ArrayValue([]float32{0.5})), nil, gguf.ErrCorrupt, []string{"image_mean has 1 values"}},
		{"mean ints", set("clip.vision.image_mean", gguf.ArrayValue([]uint8{1, 2, 3})), nil, gguf.ErrKeyType, []string{"image_mean"}},
		{"unknown projector", set("clip.projector_type", gguf.StringValue("fancy")), nil, gguf.ErrUnsupported, []string{`"fancy"`}},
		{"both activations", func(w *gguf.Writer) {
			w.Set("clip.use_gelu", gguf.BoolValue(true))
			w.Set("clip.use_silu", gguf.BoolValue(true))
		}, nil, gguf.ErrCorrupt, []string{"both true"}},
		{"pinpoints odd", set("clip.vision.image_grid_pinpoints", gguf.ArrayValue([]int32{1, 2, 3})), nil, gguf.ErrCorrupt, []string{"odd"}},
		{"no mm.2", nil, func(n string) bool { return !strings.HasPrefix(n, "mm.2.") }, gguf.ErrTensorMissing, []string{"mm.2.weight"}},
		{"no ffn", nil, func(n string) bool { return n != "v.blk.1.ffn_down.weight" }, gguf.ErrTensorMissing, []string{"v.blk.1.ffn_down.weight"}},
		{"no patch conv", nil, func(n string) bool { return n != "v.patch_embd.weight" }, gguf.ErrTensorMissing, []string{"v.patch_embd.weight"}},
		{"wrong width", set("clip.vision.embedding_length", gguf.Uint32Value(16)), nil, gguf.ErrTensorShape, nil},
		{"idefics3 without scale", set("clip.projector_type", gguf.StringValue("idefics3")), nil, gguf.ErrCorrupt, []string{"scale_factor"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := check.Mmproj(rewrite(t, mmproj, c.mutate, c.keep))
			wantErr(t, err, c.kind, c.fragment...)
		})
	}
	_, err = check.Mmproj(base)
	wantErr(t, err, gguf.ErrUnsupported, "expected a vision projector")
}

func TestIdefics3TokensPerImage(t *testing.T) {
	_, mmproj := tinyModel(t)
	p := rewrite(t, mmproj, func(w *gguf.Writer) {
		w.Set("clip.projector_type", gguf.StringValue("idefics3"))
		w.Set("clip.vision.projector.scale_factor", gguf.Uint32Value(2))
		w.AddTensorF32("mm.model.fc.weight", gguf.F32, []uint64{128, 64}, make([]float32, 128*64))
	}, nil)
	mm, err := check.Mmproj(p)
	if err != nil {
		t.Fatal(err)
	}
	if mm.TokensPerImage != 4 || mm.OutputWidth != 64 {
		t.Errorf("idefics3: %d tokens of width %d, want 4 of 64", mm.TokensPerImage, mm.OutputWidth)
	}
}

// writeAdapter writes a rank-r LoRA for the named base tensors of model.
func writeAdapter(t *testing.T, model *check.TextModelInfo, arch string, r uint64, targets []string, skipB string) string {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.StringValue(arch))
	w.Set("general.type", gguf.StringValue("adapter"))
	w.Set("adapter.type", gguf.StringValue("lora"))
	w.Set("adapter.lora.alpha", gguf.Float32Value(16))
	add := func(name string, shape ...uint64) {
		if err := w.AddTensorF32(name, gguf.F32, shape, make([]float32, shape[0]*shape[1])); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range targets {
		base := model.Tensors[name]
		if name == "token_embd.weight" {
			add(name+".lora_a", r, base.Shape[1])
			add(name+".lora_b", r, base.Shape[0])
			continue
		}
		add(name+".lora_a", base.Shape[0], r)
		if name != skipB {
			add(name+".lora_b", r, base.Shape[1])
		}
	}
	path := filepath.Join(t.TempDir(), "lora.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckAdapter(t *testing.T) {
	base, _ := tinyModel(t)
	model, err := check.TextModel(base)
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{"blk.0.attn_q.weight", "blk.1.attn_q.weight", "blk.0.ffn_down.weight", "output.weight", "token_embd.weight"}
	a, err := check.Adapter(writeAdapter(t, model, "llama", 4, targets, ""), model)
	if err != nil {
		t.Fatal(err)
	}
	if a.Alpha != 16 || !a.HasAlpha || len(a.Targets) != 5 || fmt.Sprint(a.Ranks()) != "[4]" {
		t.Errorf("adapter %+v", a)
	}

	_, err = check.Adapter(writeAdapter(t, model, "qwen2", 4, targets[:1], ""), model)
	wantErr(t, err, gguf.ErrMismatch, `"qwen2"`, `"llama"`)
	_, err = check.Adapter(writeAdapter(t, model, "llama", 4, targets[:2], "blk.1.attn_q.weight"), model)
	wantErr(t, err, gguf.ErrCorrupt, "blk.1.attn_q.weight", "lora_b")

	tied := *model
	tied.Tied = true
	tied.Tensors = map[string]gguf.TensorInfo{}
	for k, v := range model.Tensors {
		if k != "output.weight" {
			tied.Tensors[k] = v
		}
	}
	_, err = check.Adapter(writeAdapter(t, model, "llama", 4, []string{"output.weight"}, ""), &tied)
	wantErr(t, err, gguf.ErrMismatch, "output.weight", "ties its output")

	// An adapter made for a wider model does not fit.
	wide := *model
	wide.Tensors = map[string]gguf.TensorInfo{}
	for k, v := range model.Tensors {
		v.Shape = append([]uint64{v.Shape[0] * 2}, v.Shape[1:]...)
		wide.Tensors[k] = v
	}
	_, err = check.Adapter(writeAdapter(t, &wide, "llama", 4, targets[:1], ""), model)
	wantErr(t, err, gguf.ErrMismatch, "does not fit")

	_, err = check.Adapter(base, model)
	wantErr(t, err, gguf.ErrUnsupported, "expected a LoRA adapter", "this is a text model")
}

func TestDescribe(t *testing.T) {
	base, mmproj := tinyModel(t)
	model, _ := check.TextModel(base)
	lora := writeAdapter(t, model, "llama", 8, []string{"blk.0.attn_q.weight", "blk.1.attn_q.weight", "output.weight"}, "")
	for path, fragments := range map[string][]string{
		base:   {"kind:", "text model", "architecture:", "llama", "layers:", "2", "4 query, 2 key/value", "566 tokens", "256 byte", `bos 1 "<s>"`, `eos 4 "<|im_end|>"`, "chat template:", "F32 ×21"},
		mmproj: {"mmproj", "projector:", "mlp", "family:", "LLaVA-1.5", "32×32 pixels", "projection width:", "64", "tokens per image:", "16"},
		lora:   {"adapter", "alpha:", "16", "rank:", "8", "blk.*.attn_q.weight ×2, output.weight"},
	} {
		d, err := check.Describe(path)
		if err != nil {
			t.Fatal(err)
		}
		if d.Problem != nil {
			t.Errorf("%s: problem %v", path, d.Problem)
		}
		s := d.String()
		for _, f := range fragments {
			if !strings.Contains(s, f) {
				t.Errorf("description of %s lacks %q:\n%s", filepath.Base(path), f, s)
			}
		}
	}
	bad := rewrite(t, base, func(w *gguf.Writer) { w.Set("general.architecture", gguf.StringValue("mamba")) }, nil)
	d, err := check.Describe(bad)
	if err != nil || d.Problem == nil || !strings.Contains(d.String(), "problem:") {
		t.Errorf("unsupported model: %v, %v", d, err)
	}
}
