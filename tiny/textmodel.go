package tiny

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/gguf"
)

// Initialisation scales of the text model. Linear weights use
// 1/sqrt(fan_in) so activations stay O(1); embeddings and output are scaled
// so that logits spread by about one unit and differ noticeably by token.
const (
	embedStd     = 0.25
	residualGain = 0.5 // shrinks attn_output and ffn_down so the residual stream grows slowly
	normJitter   = 0.05
)

// biasStd is the spread of qwen2's q/k/v biases: large enough that a graph
// which drops them gives visibly different logits.
const biasStd = 0.2

// writeTextModel writes the text model to path: every tensor its architecture's
// description (package arch) holds for these options, filled as the description says.
// The draw order is fixed (token_embd, the blocks, output_norm, output) and optional
// tensors draw from streams of their own, so a file without them has the same bytes as
// before they existed.
func writeTextModel(path string, o Options) error {
	archName, err := o.arch()
	if err != nil {
		return err
	}
	ftype, err := o.fileType()
	if err != nil {
		return err
	}
	a, err := arch.Lookup(archName)
	if err != nil {
		return err
	}
	vocab := o.vocab()
	hp, err := o.HParams()
	if err != nil {
		return err
	}
	w := gguf.NewWriter()
	setTextMetadata(w, vocab, &hp, ftype, o)
	fill := filler{main: newRNG(o.Seed, streamText), bias: newRNG(o.Seed, streamBias), extra: newRNG(o.Seed, streamExtra)}
	specs := a.Specs(&hp)
	var ordered []arch.Spec
	for _, first := range []bool{true, false} { // token_embd and the blocks, then the rest
		for _, s := range specs {
			if (s.Name == "token_embd.weight" || s.Layer >= 0) == first {
				ordered = append(ordered, s)
			}
		}
	}
	for _, s := range ordered {
		values := fill.values(s)
		if !o.has(s) {
			continue
		}
		typ := gguf.F32
		if len(s.Shape) == 2 {
			typ = o.WeightType
		}
		shape := make([]uint64, len(s.Shape))
		for i, d := range s.Shape {
			shape[i] = uint64(d)
		}
		if err := w.AddTensorF32(s.Name, typ, shape, values); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

// HParams are the hyper-parameters of the text model these options describe (without
// the RoPE scaling Options.RopeScaling adds), as libllama reads them from the file.
func (o Options) HParams() (arch.HParams, error) {
	archName, err := o.arch()
	if err != nil {
		return arch.HParams{}, err
	}
	a, err := arch.Lookup(archName)
	if err != nil {
		return arch.HParams{}, err
	}
	sh := o.familyShape(TextShape{NEmbd, NLayer, NHead, NHeadKV, NFF})
	ctx := NCtx
	if o.Text != nil {
		sh, ctx = *o.Text, 4096
		if sh.NEmbd <= 0 || sh.NLayer <= 0 || sh.NHead <= 0 || sh.NHeadKV <= 0 || sh.NFF <= 0 || sh.NEmbd%sh.NHead != 0 || sh.NHead%sh.NHeadKV != 0 {
			return arch.HParams{}, fmt.Errorf("text shape %+v: sizes must be positive, heads must divide n_embd and KV heads the heads", sh)
		}
	}
	hd := sh.NEmbd / sh.NHead
	if o.HeadDim != 0 {
		if o.HeadDim < 2 || o.HeadDim%2 != 0 {
			return arch.HParams{}, fmt.Errorf("head width %d: it must be even (RoPE rotates pairs)", o.HeadDim)
		}
		hd = o.HeadDim
	}
	hp := arch.HParams{Arch: archName, NEmbd: sh.NEmbd, NLayer: sh.NLayer, NHead: sh.NHead, NHeadKV: sh.NHeadKV, HeadDim: hd,
		NFF: sh.NFF, NVocab: len(o.vocab().Tokens), NCtxTrain: ctx, RMSEps: RMSEps, Tied: o.TiedOutput,
		Rope: arch.NoScaling(a.Rope, hd, RopeBase, ctx)}
	switch {
	case hp.Rope.Type == arch.RopeIMRoPE:
		// Qwen3-VL's proportions ([24, 20, 20, 0] of 64 pairs): 5/16 each for height
		// and width, the rest for time.
		n := hd / 2
		hw := n * 5 / 16
		hp.Rope.Sections = [4]int{n - 2*hw, hw, hw, 0}
		hp.Deepstack = Qwen3VLDeepstack
	case hp.MRoPE():
		// Qwen2-VL's proportions ([16, 24, 24, 0] of 64 pairs): a quarter of the
		// pairs for time, the rest split between height and width.
		n := hd / 2
		t := n / 4
		hp.Rope.Sections = [4]int{t, (n - t) / 2, n - t - (n-t)/2, 0}
	}
	if archName == ArchGemma3 {
		return gemma3HParams(hp, o)
	}
	return hp, nil
}

// has reports whether the file holds an optional tensor of the description.
func (o Options) has(s arch.Spec) bool {
	if !s.Optional {
		return true
	}
	switch {
	case s.Name == "output.weight":
		return !o.TiedOutput
	case s.Fill == arch.FillRopeFactors:
		return o.RopeFreqs
	case strings.HasPrefix(s.Tensor.Name, "attn_q.") || strings.HasPrefix(s.Tensor.Name, "attn_k.") || strings.HasPrefix(s.Tensor.Name, "attn_v."):
		return o.Arch == ArchQwen2 || o.Biases // q/k/v biases: always in qwen2 (required in qwen2vl)
	}
	return o.Biases
}

// filler draws tensor values: the main stream for the tensors every model has, the bias
// stream for q/k/v biases (qwen2's, so that the tensors qwen2 shares with llama hold the
// same values), the extra stream for the other optional tensors.
type filler struct{ main, bias, extra *rand.Rand }

// values draws a tensor's values. Tensors every model has are drawn whether or not the
// file keeps them (output.weight of a tied model), so the others do not depend on it.
func (f filler) values(s arch.Spec) []float32 {
	n := 1
	for _, d := range s.Shape {
		n *= d
	}
	lin := func(gain float64) []float32 { return normal(f.main, n, gain/math.Sqrt(float64(s.Shape[0]))) }
	switch s.Fill {
	case arch.FillEmbedding:
		return normal(f.main, n, embedStd)
	case arch.FillNorm:
		return around(f.main, n, 1, normJitter)
	case arch.FillResidual:
		return lin(residualGain)
	case arch.FillRopeFactors:
		// Llama 3.x's shape: high frequencies kept (1), low ones divided by up to 8.
		out := make([]float32, n)
		for i := range out {
			x := float64(i) / float64(max(n-1, 1))
			out[i] = float32(1 + 7*x*x)
		}
		return out
	case arch.FillBias:
		rng := f.extra
		if t := s.Tensor.Name; strings.HasPrefix(t, "attn_q.") || strings.HasPrefix(t, "attn_k.") || strings.HasPrefix(t, "attn_v.") {
			rng = f.bias
		}
		return normal(rng, n, biasStd)
	}
	if !s.Optional || s.Name == "output.weight" {
		return lin(1)
	}
	return normal(f.extra, n, 1/math.Sqrt(float64(s.Shape[0])))
}

// setTextMetadata writes the hyper-parameters under the arch's prefix; llama
// and qwen2 read the same keys. The SentencePiece ("llama") tokenizer is
// independent of the architecture in llama.cpp, so qwen2 keeps it too.
func setTextMetadata(w *gguf.Writer, v Vocab, hp *arch.HParams, ftype uint32, o Options) {
	arch := hp.Arch
	w.Set("general.architecture", gguf.StringValue(arch))
	w.Set("general.type", gguf.StringValue("model"))
	w.Set("general.name", gguf.StringValue("calft tiny "+arch))
	w.Set("general.file_type", gguf.Uint32Value(ftype))
	w.Set(arch+".vocab_size", gguf.Uint32Value(uint32(len(v.Tokens))))
	w.Set(arch+".context_length", gguf.Uint32Value(uint32(hp.NCtxTrain)))
	w.Set(arch+".embedding_length", gguf.Uint32Value(uint32(hp.NEmbd)))
	w.Set(arch+".block_count", gguf.Uint32Value(uint32(hp.NLayer)))
	w.Set(arch+".feed_forward_length", gguf.Uint32Value(uint32(hp.NFF)))
	w.Set(arch+".attention.head_count", gguf.Uint32Value(uint32(hp.NHead)))
	w.Set(arch+".attention.head_count_kv", gguf.Uint32Value(uint32(hp.NHeadKV)))
	w.Set(arch+".attention.layer_norm_rms_epsilon", gguf.Float32Value(RMSEps))
	if hp.HeadDim != hp.NEmbd/hp.NHead {
		w.Set(arch+".attention.key_length", gguf.Uint32Value(uint32(hp.HeadDim)))
		w.Set(arch+".attention.value_length", gguf.Uint32Value(uint32(hp.HeadDim)))
	}
	w.Set(arch+".rope.dimension_count", gguf.Uint32Value(uint32(hp.Rope.Dims)))
	w.Set(arch+".rope.freq_base", gguf.Float32Value(RopeBase))
	if hp.MRoPE() {
		s := hp.Rope.Sections
		w.Set(arch+".rope.dimension_sections", gguf.ArrayValue([]int32{int32(s[0]), int32(s[1]), int32(s[2]), int32(s[3])}))
	}
	if hp.Deepstack > 0 {
		w.Set(arch+".n_deepstack_layers", gguf.Uint32Value(uint32(hp.Deepstack)))
	}
	if o.RopeScaling != "" {
		w.Set(arch+".rope.scaling.type", gguf.StringValue(o.RopeScaling))
		w.Set(arch+".rope.scaling.factor", gguf.Float32Value(ropeScalingFactor))
		w.Set(arch+".rope.scaling.original_context_length", gguf.Uint32Value(uint32(hp.NCtxTrain/4)))
	}
	w.Set("tokenizer.ggml.model", gguf.StringValue("llama"))
	w.Set("tokenizer.ggml.tokens", gguf.ArrayValue(v.Tokens))
	w.Set("tokenizer.ggml.scores", gguf.ArrayValue(v.Scores))
	w.Set("tokenizer.ggml.token_type", gguf.ArrayValue(v.Types))
	w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32Value(BOSID))
	w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32Value(EOSID))
	w.Set("tokenizer.ggml.unknown_token_id", gguf.Uint32Value(UnkID))
	w.Set("tokenizer.ggml.add_bos_token", gguf.BoolValue(true))
	w.Set("tokenizer.ggml.add_eos_token", gguf.BoolValue(false))
	w.Set("tokenizer.chat_template", gguf.StringValue(ChatTemplate))
	o.setFamilyTokens(w)
	if arch == ArchGemma3 {
		setGemma3Metadata(w, v, hp)
	}
}
