package train

import (
	"fmt"
	"os"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/chat"
	"github.com/calft/calft/data"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/llava"
	"github.com/calft/calft/lora"
)

// EnvOptions name the model files and how to read the data.
type EnvOptions struct {
	Model    string // text model GGUF
	Mmproj   string // vision projector GGUF; "" for text-only data
	Template string // chat template text, llama.cpp name or chat.GoTemplates name; "" uses the model's
	ImageDir string
	CacheDir string // image embedding cache; "" keeps it in memory
	Threads  int
	Backend  string // see ggml.NewBackend: cpu (""), cuda, vulkan, metal, blas, a device name or auto
	MaxRows  int    // longest sample; 0: the model's training context
	// Widen loads F16/BF16 weights as F32, which ggml's own backward products need
	// (backward weights "autodiff"); otherwise weights stay as stored.
	Widen bool
}

// Env is everything loaded once for scoring or training: calft's decoder weights on the
// backend, libllama's tokenizer and chat template, mtmd and the image embedding cache.
type Env struct {
	Backend *ggml.Backend
	Model   *llava.Model
	Vocab   *llama.Model
	Mtmd    *mtmd.Context
	Builder *data.Builder
	Cache   *data.EmbedCache

	mmprojPath string
}

// OpenEnv validates the files in Go (llama.cpp aborts on some bad files), then loads them.
func OpenEnv(o EnvOptions) (*Env, error) {
	for _, p := range []string{o.Model, o.Mmproj} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("model file %w", err)
		}
	}
	_, _, err := check.ModelAndMmproj(o.Model, o.Mmproj)
	if err != nil {
		return nil, err
	}
	e := &Env{mmprojPath: o.Mmproj}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	if e.Backend, err = ggml.NewBackend(o.Backend, o.Threads); err != nil {
		return nil, err
	}
	if e.Model, err = llava.LoadWith(o.Model, e.Backend, llava.LoadOptions{Trainable: o.Widen}); err != nil {
		return nil, err
	}
	// libllama reads the same file for the tokenizer and for mtmd (which needs the text
	// model's width): its vocabulary and hyper-parameters only. Loading its weights, even
	// mapped, would add the model's size to the resident memory (llama.cpp populates the
	// mapping: +0.5 GB on a 0.4 GB model, measured).
	if e.Vocab, err = llama.LoadModel(o.Model, llama.ModelParams{MetadataOnly: true}); err != nil {
		return nil, err
	}
	if o.Mmproj != "" {
		if e.Mtmd, err = mtmd.Init(o.Mmproj, e.Vocab, mtmd.Params{NThreads: o.Threads}); err != nil {
			return nil, err
		}
		if e.Cache, err = data.NewEmbedCache(e.Mtmd, o.Mmproj, o.CacheDir); err != nil {
			return nil, err
		}
	}
	tmpl := o.Template
	if tmpl == "" {
		tmpl = e.Vocab.ChatTemplate()
	}
	if tmpl == "" {
		return nil, fmt.Errorf("%s has no chat template; name one with --template (e.g. %s for LLaVA-1.5 and BakLLaVA, whose GGUFs ship none; chatml, vicuna, llama3)", o.Model, chat.LLaVA15)
	}
	maxRows := o.MaxRows
	if maxRows <= 0 {
		maxRows = e.Model.HP.NCtxTrain
	}
	e.Builder = &data.Builder{Vocab: e.Vocab, Mtmd: e.Mtmd, Template: tmpl, MaxRows: maxRows, ImageDir: o.ImageDir}
	ok = true
	return e, nil
}

// Sequence assembles a built sample's decoder input.
func (e *Env) Sequence(s *data.Sample) (llava.Sequence, error) {
	return e.Cache.Sequence(s, e.Model.HP.NEmbdInp())
}

// Close frees everything.
func (e *Env) Close() {
	if e.Mtmd != nil {
		e.Mtmd.Close()
	}
	if e.Vocab != nil {
		e.Vocab.Close()
	}
	if e.Model != nil {
		e.Model.Close()
	}
	if e.Backend != nil {
		e.Backend.Close()
	}
}

// LoadAdapter reads an adapter trained on the env's model (a llama.cpp adapter GGUF or a
// PEFT folder) onto its backend, checked against the model first: a mismatched adapter
// would abort inside ggml.
func (e *Env) LoadAdapter(path string) (*lora.Adapter, error) {
	hp := e.Model.HP
	h, err := lora.ReadAny(path, lora.Base{Arch: hp.Arch, NHead: hp.NHead, NHeadKV: hp.NHeadKV})
	if err != nil {
		return nil, err
	}
	if h.Arch != e.Model.HP.Arch {
		return nil, fmt.Errorf("%s is an adapter for %q, the model %s is %q; use the adapter trained on this model", path, h.Arch, e.Model.Path, e.Model.HP.Arch)
	}
	if err := h.Fits(&e.Model.W); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lora.NewFromHost(e.Backend, h)
}

// ProjectorBytes is the vision projector's memory (mtmd holds its weights), from its
// file's size; 0 without one.
func (e *Env) ProjectorBytes() int64 {
	if e.mmprojPath == "" {
		return 0
	}
	st, err := os.Stat(e.mmprojPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// CacheBytes is the memory the image embeddings of samples take when the cache keeps
// them in memory (no cache folder); 0 otherwise.
func (e *Env) CacheBytes(samples []*data.Sample) int64 {
	if e.Cache == nil || e.Cache.OnDisk() {
		return 0
	}
	seen := map[string]bool{}
	var n int64
	for _, s := range samples {
		for i, p := range s.Images {
			if !seen[p] {
				seen[p] = true
				n += int64(s.NImage[i]) * int64(e.Model.HP.NEmbdInp()) * data.EmbedBytes
			}
		}
	}
	return n
}
