package tiny

import (
	"fmt"
	"math"

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

// writeTextModel writes the text model (llama or qwen2 arch) to path.
func writeTextModel(path string, o Options) error {
	arch, err := o.arch()
	if err != nil {
		return err
	}
	ftype, err := o.fileType()
	if err != nil {
		return err
	}
	rng := newRNG(o.Seed, streamText)
	biasRNG := newRNG(o.Seed, streamBias)
	vocab := BuildVocab()
	nVocab := len(vocab.Tokens)
	w := gguf.NewWriter()
	setTextMetadata(w, vocab, arch, ftype)

	type tensor struct {
		name   string
		shape  []uint64
		values []float32
	}
	lin := func(nIn, nOut int, gain float64) []float32 {
		return normal(rng, nIn*nOut, gain/math.Sqrt(float64(nIn)))
	}
	norm := func(n int) []float32 { return around(rng, n, 1, normJitter) }
	ts := []tensor{{"token_embd.weight", []uint64{NEmbd, uint64(nVocab)}, normal(rng, NEmbd*nVocab, embedStd)}}
	for i := 0; i < NLayer; i++ {
		b := func(s string) string { return fmt.Sprintf("blk.%d.%s", i, s) }
		ts = append(ts,
			tensor{b("attn_norm.weight"), []uint64{NEmbd}, norm(NEmbd)},
			tensor{b("attn_q.weight"), []uint64{NEmbd, NHead * HeadDim}, lin(NEmbd, NHead*HeadDim, 1)},
			tensor{b("attn_k.weight"), []uint64{NEmbd, NHeadKV * HeadDim}, lin(NEmbd, NHeadKV*HeadDim, 1)},
			tensor{b("attn_v.weight"), []uint64{NEmbd, NHeadKV * HeadDim}, lin(NEmbd, NHeadKV*HeadDim, 1)},
		)
		if arch == ArchQwen2 {
			ts = append(ts,
				tensor{b("attn_q.bias"), []uint64{NHead * HeadDim}, normal(biasRNG, NHead*HeadDim, biasStd)},
				tensor{b("attn_k.bias"), []uint64{NHeadKV * HeadDim}, normal(biasRNG, NHeadKV*HeadDim, biasStd)},
				tensor{b("attn_v.bias"), []uint64{NHeadKV * HeadDim}, normal(biasRNG, NHeadKV*HeadDim, biasStd)},
			)
		}
		ts = append(ts,
			tensor{b("attn_output.weight"), []uint64{NHead * HeadDim, NEmbd}, lin(NHead*HeadDim, NEmbd, residualGain)},
			tensor{b("ffn_norm.weight"), []uint64{NEmbd}, norm(NEmbd)},
			tensor{b("ffn_gate.weight"), []uint64{NEmbd, NFF}, lin(NEmbd, NFF, 1)},
			tensor{b("ffn_up.weight"), []uint64{NEmbd, NFF}, lin(NEmbd, NFF, 1)},
			tensor{b("ffn_down.weight"), []uint64{NFF, NEmbd}, lin(NFF, NEmbd, residualGain)},
		)
	}
	ts = append(ts, tensor{"output_norm.weight", []uint64{NEmbd}, norm(NEmbd)})
	// Drawn even when tied, so the other tensors do not depend on the option.
	output := lin(NEmbd, nVocab, 1)
	if !o.TiedOutput {
		ts = append(ts, tensor{"output.weight", []uint64{NEmbd, uint64(nVocab)}, output})
	}
	for _, t := range ts {
		typ := gguf.F32
		if len(t.shape) == 2 {
			typ = o.WeightType
		}
		if err := w.AddTensorF32(t.name, typ, t.shape, t.values); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

// setTextMetadata writes the hyper-parameters under the arch's prefix; llama
// and qwen2 read the same keys. The SentencePiece ("llama") tokenizer is
// independent of the architecture in llama.cpp, so qwen2 keeps it too.
func setTextMetadata(w *gguf.Writer, v Vocab, arch string, ftype uint32) {
	w.Set("general.architecture", gguf.StringValue(arch))
	w.Set("general.type", gguf.StringValue("model"))
	w.Set("general.name", gguf.StringValue("calft tiny "+arch))
	w.Set("general.file_type", gguf.Uint32Value(ftype))
	w.Set(arch+".vocab_size", gguf.Uint32Value(uint32(len(v.Tokens))))
	w.Set(arch+".context_length", gguf.Uint32Value(NCtx))
	w.Set(arch+".embedding_length", gguf.Uint32Value(NEmbd))
	w.Set(arch+".block_count", gguf.Uint32Value(NLayer))
	w.Set(arch+".feed_forward_length", gguf.Uint32Value(NFF))
	w.Set(arch+".attention.head_count", gguf.Uint32Value(NHead))
	w.Set(arch+".attention.head_count_kv", gguf.Uint32Value(NHeadKV))
	w.Set(arch+".attention.layer_norm_rms_epsilon", gguf.Float32Value(RMSEps))
	w.Set(arch+".rope.dimension_count", gguf.Uint32Value(RopeDims))
	w.Set(arch+".rope.freq_base", gguf.Float32Value(RopeBase))
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
}
