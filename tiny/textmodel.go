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

// writeTextModel writes the llama-arch text model to path.
func writeTextModel(path string, o Options) error {
	rng := newRNG(o.Seed, streamText)
	vocab := BuildVocab()
	nVocab := len(vocab.Tokens)
	w := gguf.NewWriter()
	setTextMetadata(w, vocab)

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
		if err := w.AddTensorF32(t.name, gguf.F32, t.shape, t.values); err != nil {
			return err
		}
	}
	return w.WriteFile(path)
}

func setTextMetadata(w *gguf.Writer, v Vocab) {
	w.Set("general.architecture", gguf.StringValue("llama"))
	w.Set("general.type", gguf.StringValue("model"))
	w.Set("general.name", gguf.StringValue("calft tiny llama"))
	w.Set("general.file_type", gguf.Uint32Value(0)) // all F32
	w.Set("llama.vocab_size", gguf.Uint32Value(uint32(len(v.Tokens))))
	w.Set("llama.context_length", gguf.Uint32Value(NCtx))
	w.Set("llama.embedding_length", gguf.Uint32Value(NEmbd))
	w.Set("llama.block_count", gguf.Uint32Value(NLayer))
	w.Set("llama.feed_forward_length", gguf.Uint32Value(NFF))
	w.Set("llama.attention.head_count", gguf.Uint32Value(NHead))
	w.Set("llama.attention.head_count_kv", gguf.Uint32Value(NHeadKV))
	w.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32Value(RMSEps))
	w.Set("llama.rope.dimension_count", gguf.Uint32Value(RopeDims))
	w.Set("llama.rope.freq_base", gguf.Float32Value(RopeBase))
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
