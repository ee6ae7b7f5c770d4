package check

import (
	"fmt"

	"github.com/calft/calft/gguf"
)

// MiniCPM-V's resampler (projector type "resampler") as mtmd's clip loader and graph
// read it (clip_graph_minicpmv): a ViT whose learned position embeddings are looked up by
// 70×70 buckets of each slice's patch grid, then query_num learned queries attending to
// the patches in heads of resamplerHead; every slice (and the overview) of an image
// becomes query_num rows.
const (
	resamplerHead    = 128 // d_head, fixed in mtmd's graph
	resamplerBuckets = 70 * 70
)

// resamplerQueries are mtmd's query counts per clip.minicpmv_version when the file has
// no clip.minicpmv_query_num. mtmd reads 0 as 2 and aborts on the others.
var resamplerQueries = map[int]int{2: 96, 3: 64, 4: 64, 5: 64, 6: 64}

// resamplerModels name the models of each clip.minicpmv_version.
var resamplerModels = map[int]string{2: "MiniCPM-Llama3-V 2.5", 3: "MiniCPM-V 2.6", 4: "MiniCPM-o 2.6", 5: "MiniCPM-V 4.0", 6: "MiniCPM-V 4.5"}

// checkResampler sets the resampler's rows per slice and checks the tensors whose
// absence or shape would make mtmd fail or abort: the ones it loads (all required), the
// shapes its graph multiplies and reshapes, and the position table's bucket count.
func checkResampler(f *gguf.File, m *MmprojInfo) error {
	version, _ := optional(f, "clip.minicpmv_version", 0, f.Int32)
	if version == 0 {
		version = 2
	}
	queries, ok := resamplerQueries[int(version)]
	if !ok {
		return gguf.Errorf(f.Path, gguf.ErrUnsupported, "clip.minicpmv_version %d is not one mtmd supports (2: MiniCPM-Llama3-V 2.5, 3: MiniCPM-V 2.6, 4-6: MiniCPM-o 2.6, MiniCPM-V 4.0, 4.5); %s", version, adviceReconvert)
	}
	if n, _ := optional(f, "clip.minicpmv_query_num", 0, f.Uint32); n > 0 {
		queries = int(n)
	}
	m.MiniCPMVVersion, m.TokensPerSlice = int(version), queries
	if _, ok := f.Tensor("v.class_embd"); ok {
		return gguf.Errorf(f.Path, gguf.ErrUnsupported, "the resampler projector has a class embedding (v.class_embd), which mtmd's MiniCPM-V graph asserts against; %s", adviceReconvert)
	}
	if err := measureWidth(f, m); err != nil { // resampler.proj.weight's ne[0], a multiple of 128
		return err
	}
	n, e := dim(m.OutputWidth), dim(m.NEmbd)
	specs := []tensorSpec{
		{"resampler.query", []uint64{n, dim(queries)}, false},
		{"resampler.kv.weight", []uint64{e, n}, false},
		{"resampler.proj.weight", []uint64{n, n}, false}, // rows are ne[1] wide, mtmd sizes them by ne[0]
		{"resampler.pos_embed_k", nil, false},
	}
	for _, s := range []string{"q", "k", "v", "out"} {
		specs = append(specs,
			tensorSpec{fmt.Sprintf("resampler.attn.%s.weight", s), []uint64{n, n}, false},
			tensorSpec{fmt.Sprintf("resampler.attn.%s.bias", s), []uint64{n}, false})
	}
	for _, s := range []string{"q", "kv", "post"} {
		specs = append(specs,
			tensorSpec{fmt.Sprintf("resampler.ln_%s.weight", s), []uint64{n}, false},
			tensorSpec{fmt.Sprintf("resampler.ln_%s.bias", s), []uint64{n}, false})
	}
	for _, s := range specs { // presence first, so that a missing tensor is named as such
		if _, ok := f.Tensor(s.name); !ok {
			return gguf.Errorf(f.Path, gguf.ErrTensorMissing, "tensor %q is missing: mtmd's resampler (MiniCPM-V) projector loads it; %s", s.name, adviceReconvert)
		}
	}
	var shaped []tensorSpec
	for _, s := range specs {
		if s.shape != nil {
			shaped = append(shaped, s)
		}
	}
	if err := checkSpecsPresentAndShaped(f, shaped); err != nil {
		return err
	}
	pos, ok := f.Tensor("v.position_embd.weight")
	if !ok || len(pos.Shape) != 2 || pos.Dim(0) != e || pos.Dim(1) < resamplerBuckets {
		shape := "missing"
		if ok {
			shape = fmt.Sprint(pos.Shape)
		}
		return gguf.Errorf(f.Path, gguf.ErrTensorShape, "tensor \"v.position_embd.weight\" is %s: the resampler projector looks position embeddings up by 70×70 buckets of the patch grid and needs shape [%d %d]; %s", shape, e, resamplerBuckets, adviceReconvert)
	}
	return nil
}
