// Package llava is the vision-language model as calft trains it: hyper-parameters read
// from a GGUF text model, its frozen weights on a ggml backend, and a decoder graph
// built from ggml ops that have a backward pass. Image-embedding rows from mtmd enter
// the sequence beside token rows; a per-sequence mask can hide them from the text.
//
// It knows nothing of CAL or optimizers: it turns a batch into logits.
package llava

import "fmt"

// HParams are the text decoder's hyper-parameters.
type HParams struct {
	Arch      string // general.architecture, e.g. "llama", "qwen2"
	NEmbd     int
	NLayer    int
	NHead     int
	NHeadKV   int
	HeadDim   int
	NFF       int
	NVocab    int
	NCtxTrain int
	RMSEps    float32
	RopeBase  float32
	RopeScale float32 // frequency scale: 1/(linear rope scaling factor)
	RopeDims  int
	RopeMode  int  // ggml.RopeNormal or ggml.RopeNeox
	Tied      bool // no output.weight: the lm_head is token_embd
}

// Validate reports hyper-parameters the graph cannot run with.
func (hp HParams) Validate() error {
	switch {
	case hp.NEmbd <= 0 || hp.NLayer <= 0 || hp.NHead <= 0 || hp.NFF <= 0 || hp.NVocab <= 0:
		return fmt.Errorf("model sizes must be positive: %+v", hp)
	case hp.NHeadKV <= 0 || hp.NHead%hp.NHeadKV != 0:
		return fmt.Errorf("head_count %d is not a multiple of head_count_kv %d", hp.NHead, hp.NHeadKV)
	case hp.HeadDim*hp.NHead != hp.NEmbd:
		return fmt.Errorf("head dim %d × %d heads ≠ embedding length %d", hp.HeadDim, hp.NHead, hp.NEmbd)
	case hp.RopeDims <= 0 || hp.RopeDims > hp.HeadDim || hp.RopeDims%2 != 0:
		return fmt.Errorf("rope dimension count %d does not fit head dim %d", hp.RopeDims, hp.HeadDim)
	}
	return nil
}
