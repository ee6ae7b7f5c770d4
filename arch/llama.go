package arch

import "github.com/calft/calft/gguf"

// The llama family (Llama 1-3.x, Mistral, SmolLM, the text half of LLaVA-1.5 and
// SmolVLM), after llama.cpp's src/models/llama.cpp and its tensors in
// llama_model::load_tensors: RMSNorm, RoPE on adjacent pairs (with Llama 3.x's
// frequency factors when the file has rope_freqs.weight), grouped-query attention with
// optional biases, a SwiGLU feed-forward with optional biases, an optional untied output.
func init() {
	register(&Arch{
		Name: "llama",
		Rope: RopeNormal,
		Global: append(commonGlobals(),
			Tensor{Name: "rope_freqs.weight", Shape: ropeFactors, Optional: true, Fill: FillRopeFactors, F32: true}),
		Layer: blockTensors(blockOptions{attnBias: true, attnOutBias: true, ffnBias: true}),
		Check: qBiasFits,
	})
}

// qBiasFits refuses a query bias when the queries are not n_embd wide: llama.cpp's
// loader shapes attn_q.bias [n_embd] and adds it to queries of head width × heads.
func qBiasFits(f *gguf.File, hp *HParams) error {
	if _, ok := f.Tensor(LayerName(0, "attn_q.bias")); ok && hp.QDim() != hp.NEmbd {
		return gguf.Errorf(f.Path, gguf.ErrUnsupported, "has attn_q.bias with queries %d wide (head width %d × %d heads) ≠ n_embd %d, which llama.cpp cannot add", hp.QDim(), hp.HeadDim, hp.NHead, hp.NEmbd)
	}
	return nil
}

// commonGlobals are the tensors outside the blocks that every architecture has.
func commonGlobals() []Tensor {
	return []Tensor{
		{Name: "token_embd.weight", Shape: vocabMatrix, Fill: FillEmbedding},
		{Name: "output_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "output.weight", Shape: vocabMatrix, Optional: true, Fill: FillLinear},
	}
}

// blockOptions say which optional tensors an architecture's blocks may hold.
type blockOptions struct {
	attnBias    bool // attn_q/k/v.bias
	biasNeeded  bool // attn_q/k/v.bias are required (qwen2vl's builder adds them unconditionally)
	attnOutBias bool // attn_output.bias
	ffnBias     bool // ffn_gate/up/down.bias
}

// blockTensors is a llama-style block: the order is the one generators draw in.
func blockTensors(o blockOptions) []Tensor {
	ts := []Tensor{
		{Name: "attn_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		{Name: "attn_q.weight", Shape: qMatrix, Target: "attn_q"},
		{Name: "attn_k.weight", Shape: kvMatrix, Target: "attn_k"},
		{Name: "attn_v.weight", Shape: kvMatrix, Target: "attn_v"},
	}
	if o.attnBias {
		opt := !o.biasNeeded
		ts = append(ts,
			Tensor{Name: "attn_q.bias", Shape: qVector, Optional: opt, Fill: FillBias, F32: true},
			Tensor{Name: "attn_k.bias", Shape: kvVector, Optional: opt, Fill: FillBias, F32: true},
			Tensor{Name: "attn_v.bias", Shape: kvVector, Optional: opt, Fill: FillBias, F32: true})
	}
	ts = append(ts, Tensor{Name: "attn_output.weight", Shape: outMatrix, Target: "attn_output", Fill: FillResidual})
	if o.attnOutBias {
		ts = append(ts, Tensor{Name: "attn_output.bias", Shape: embdVector, Optional: true, Fill: FillBias, F32: true})
	}
	ts = append(ts,
		Tensor{Name: "ffn_norm.weight", Shape: embdVector, Fill: FillNorm, F32: true},
		Tensor{Name: "ffn_gate.weight", Shape: ffnIn, Target: "ffn_gate"},
		Tensor{Name: "ffn_up.weight", Shape: ffnIn, Target: "ffn_up"},
		Tensor{Name: "ffn_down.weight", Shape: ffnOut, Target: "ffn_down", Fill: FillResidual})
	if o.ffnBias {
		ts = append(ts,
			Tensor{Name: "ffn_gate.bias", Shape: ffVector, Optional: true, Fill: FillBias, F32: true},
			Tensor{Name: "ffn_up.bias", Shape: ffVector, Optional: true, Fill: FillBias, F32: true},
			Tensor{Name: "ffn_down.bias", Shape: embdVector, Optional: true, Fill: FillBias, F32: true})
	}
	return ts
}

// Shapes, in ggml order: a matrix [n_in, n_out] maps n_in-wide rows to n_out.
func embdVector(hp *HParams) []int  { return []int{hp.NEmbd} }
func vocabMatrix(hp *HParams) []int { return []int{hp.NEmbd, hp.NVocab} }
func qMatrix(hp *HParams) []int     { return []int{hp.NEmbd, hp.QDim()} }
func kvMatrix(hp *HParams) []int    { return []int{hp.NEmbd, hp.KVDim()} }
func outMatrix(hp *HParams) []int   { return []int{hp.QDim(), hp.NEmbd} }
func qVector(hp *HParams) []int     { return []int{hp.NEmbd} } // as llama.cpp's loader shapes it
func kvVector(hp *HParams) []int    { return []int{hp.KVDim()} }
func ffnIn(hp *HParams) []int       { return []int{hp.NEmbd, hp.NFF} }
func ffnOut(hp *HParams) []int      { return []int{hp.NFF, hp.NEmbd} }
func ffVector(hp *HParams) []int    { return []int{hp.NFF} }
func vocabVector(hp *HParams) []int { return []int{hp.NVocab} }
func ropeFactors(hp *HParams) []int { return []int{hp.Rope.Dims / 2} }
