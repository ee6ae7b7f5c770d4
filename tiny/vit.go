package tiny

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/calft/calft/arch"
	"github.com/calft/calft/gguf"
)

// newProjector starts a tiny vision projector of type typ for o's text model: the
// metadata every tiny mmproj has (setMmprojMetadata) with this type and name, and a vit
// writing its tensors from the vision stream of o's seed.
func newProjector(o Options, typ string) (*vit, arch.HParams, error) {
	hp, err := o.HParams()
	if err != nil {
		return nil, hp, err
	}
	return &vit{w: projectorWriter(hp.NEmbd, typ), rng: newRNG(o.Seed, streamVision)}, hp, nil
}

// projectorWriter starts an mmproj of projector type typ for a text model nText wide.
func projectorWriter(nText int, typ string) *gguf.Writer {
	w := gguf.NewWriter()
	setMmprojMetadata(w, nText)
	w.Set("general.name", gguf.StringValue("calft tiny "+typ))
	w.Delete("clip.has_llava_projector")
	w.Set("clip.projector_type", gguf.StringValue(typ))
	return w
}

// done writes the file to path, or returns the first error of the tensors added.
func (v *vit) done(path string) error {
	if v.err != nil {
		return v.err
	}
	return v.w.WriteFile(path)
}

// vit writes the tensors of a vision tower: a patch convolution with bias, position
// embeddings, LayerNorm blocks with biased projections and GELU, drawn from one stream.
// The first error is kept and returned by done.
type vit struct {
	w   *gguf.Writer
	rng *rand.Rand
	err error
}

func (v *vit) add(name string, shape []uint64, values []float32) {
	if v.err == nil {
		v.err = v.w.AddTensorF32(name, gguf.F32, shape, values)
	}
}

func (v *vit) lin(nIn, nOut int, gain float64) []float32 {
	return normal(v.rng, nIn*nOut, gain/math.Sqrt(float64(nIn)))
}

func (v *vit) bias(n int) []float32 { return normal(v.rng, n, 0.02) }
func (v *vit) norm(n int) []float32 { return around(v.rng, n, 1, normJitter) }

// linear adds name.weight [nIn, nOut] and name.bias [nOut].
func (v *vit) linear(name string, nIn, nOut int, gain float64) {
	v.add(name+".weight", []uint64{uint64(nIn), uint64(nOut)}, v.lin(nIn, nOut, gain))
	v.add(name+".bias", []uint64{uint64(nOut)}, v.bias(nOut))
}

// layerNorm adds name.weight and name.bias of width n.
func (v *vit) layerNorm(name string, n int) {
	v.add(name+".weight", []uint64{uint64(n)}, v.norm(n))
	v.add(name+".bias", []uint64{uint64(n)}, v.bias(n))
}

// towerShape is what differs between the tiny vision towers.
type towerShape struct {
	patch  int  // patch side (0: PatchSize)
	nPos   int  // position embeddings
	class  bool // a class embedding, added before the position embeddings
	scales bool // layer scales ls1/ls2 in every block
	// swappedFFN names the feed-forward's first matrix (width → ff) ffn_down and its
	// second ffn_up, as MiniCPM-V's converter does (mtmd swaps them back by shape).
	swappedFFN bool
}

// tower adds the patch convolution, the position embeddings (and class embedding) and
// the VisionLayers blocks of shape t.
func (v *vit) tower(t towerShape) {
	const e = VisionWidth
	p := uint64(t.patch)
	if p == 0 {
		p = PatchSize
	}
	v.add("v.patch_embd.weight", []uint64{p, p, 3, e}, v.lin(int(p*p*3), e, 1))
	v.add("v.patch_embd.bias", []uint64{e}, v.bias(e))
	if t.class {
		v.add("v.class_embd", []uint64{e}, normal(v.rng, e, 0.5))
	}
	v.add("v.position_embd.weight", []uint64{e, uint64(t.nPos)}, normal(v.rng, e*t.nPos, 0.2))
	v.blocks(t)
}

// blocks adds the VisionLayers LayerNorm blocks of a tower of shape t (its FFN names and
// layer scales).
func (v *vit) blocks(t towerShape) {
	const e, ff = VisionWidth, VisionFF
	fc1, fc2 := "ffn_up", "ffn_down"
	if t.swappedFFN {
		fc1, fc2 = fc2, fc1
	}
	for i := 0; i < VisionLayers; i++ {
		b := func(s string) string { return fmt.Sprintf("v.blk.%d.%s", i, s) }
		v.layerNorm(b("ln1"), e)
		v.linear(b("attn_q"), e, e, 1)
		v.linear(b("attn_k"), e, e, 1)
		v.linear(b("attn_v"), e, e, 1)
		v.linear(b("attn_out"), e, e, residualGain)
		v.layerNorm(b("ln2"), e)
		v.linear(b(fc1), e, ff, 1)
		v.linear(b(fc2), ff, e, residualGain)
		if t.scales {
			v.add(b("ls1.weight"), []uint64{e}, around(v.rng, e, 0.5, 0.1))
			v.add(b("ls2.weight"), []uint64{e}, around(v.rng, e, 0.5, 0.1))
		}
	}
}

// writeIdefics3 writes SmolVLM's vision projector: a SigLIP ViT (no class row),
// post-LayerNorm, then mtmd's pixel shuffle of SmolVLMScale² patches and mm.model.fc to
// the text model's width.
func writeIdefics3(path string, o Options) error {
	v, hp, err := newProjector(o, "idefics3")
	if err != nil {
		return err
	}
	w := v.w
	w.Set("clip.use_gelu", gguf.BoolValue(true))
	w.Set("clip.vision.projector.scale_factor", gguf.Uint32Value(SmolVLMScale))
	w.Set("clip.vision.preproc_image_size", gguf.Uint32Value(SmolVLMLongEdge))
	half := []float32{smolvlmImageMean, smolvlmImageMean, smolvlmImageMean}
	w.Set("clip.vision.image_mean", gguf.ArrayValue(half))
	w.Set("clip.vision.image_std", gguf.ArrayValue(half))

	v.tower(towerShape{nPos: (ImageSize / PatchSize) * (ImageSize / PatchSize)})
	v.layerNorm("v.post_ln", VisionWidth)
	const merged = VisionWidth * SmolVLMScale * SmolVLMScale
	v.add("mm.model.fc.weight", []uint64{merged, uint64(hp.NEmbd)}, v.lin(merged, hp.NEmbd, 1))
	return v.done(path)
}

// ImageNet's per-channel normalisation, which InternVL's processor uses.
var (
	imagenetMean = []float32{0.485, 0.456, 0.406}
	imagenetStd  = []float32{0.229, 0.224, 0.225}
)

// writeInternVL writes InternVL's vision projector: a ViT whose class row is appended
// last (position embeddings for patches+1 rows), layer scales, no pre/post norm; then
// mtmd drops the class row, shuffles InternVLScale² patches into one row and applies
// mm.model.mlp.0 (LayerNorm), mlp.1, GELU, mlp.3.
func writeInternVL(path string, o Options) error {
	v, hp, err := newProjector(o, "internvl")
	if err != nil {
		return err
	}
	w := v.w
	w.Set("clip.use_gelu", gguf.BoolValue(true))
	w.Set("clip.vision.projector.scale_factor", gguf.Uint32Value(InternVLScale))
	w.Set("clip.vision.attention.layer_norm_epsilon", gguf.Float32Value(1e-6))
	w.Set("clip.vision.image_mean", gguf.ArrayValue(imagenetMean))
	w.Set("clip.vision.image_std", gguf.ArrayValue(imagenetStd))

	v.tower(towerShape{nPos: (ImageSize/PatchSize)*(ImageSize/PatchSize) + 1, class: true, scales: true})
	const merged = VisionWidth * InternVLScale * InternVLScale
	v.layerNorm("mm.model.mlp.0", merged)
	v.linear("mm.model.mlp.1", merged, hp.NEmbd, 1)
	v.linear("mm.model.mlp.3", hp.NEmbd, hp.NEmbd, 1)
	return v.done(path)
}
