package check

import (
	"github.com/calft/calft/arch"
	"github.com/calft/calft/gguf"
)

// TextModelInfo is a text model as libllama will interpret it: its architecture's
// hyper-parameters (read by package arch, as calft's decoder reads them), its tokenizer
// and its tensors.
type TextModelInfo struct {
	Path string
	Name string // general.name, "" if absent
	arch.HParams

	Tensors map[string]gguf.TensorInfo
	NParams uint64
	Vocab   VocabInfo
}

// TextModel opens path and verifies it is a text model calft can train and llama.cpp
// will load without aborting.
func TextModel(path string) (*TextModelInfo, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return InspectTextModel(f)
}

// InspectTextModel is TextModel for an already opened file.
func InspectTextModel(f *gguf.File) (*TextModelInfo, error) {
	if err := rejectOtherKinds(f, "text model"); err != nil {
		return nil, err
	}
	if err := checkGeneral(f); err != nil {
		return nil, err
	}
	h := &TextModelInfo{Path: f.Path}
	var err error
	if h.Name, err = optional(f, "general.name", "", f.String); err != nil {
		return nil, err
	}
	hp, err := arch.ReadHParams(f)
	if err != nil {
		return nil, err
	}
	h.HParams = *hp
	vocab, _, err := inspectVocab(f)
	if err != nil {
		return nil, err
	}
	h.Vocab = *vocab
	a, err := arch.Lookup(hp.Arch)
	if err != nil {
		return nil, err
	}
	if err := a.CheckTensors(f, hp); err != nil {
		return nil, err
	}
	h.Tensors = make(map[string]gguf.TensorInfo, len(f.Tensors))
	for _, t := range f.Tensors {
		h.Tensors[t.Name] = t
		h.NParams += t.Elements()
	}
	return h, nil
}

// rejectOtherKinds gives a clear error when an adapter or an mmproj is
// passed where another kind of file is expected.
func rejectOtherKinds(f *gguf.File, want string) error {
	kind := fileKind(f)
	if kind == want {
		return nil
	}
	names := map[string]string{
		"adapter":    "a LoRA adapter",
		"mmproj":     "a vision projector (mmproj)",
		"text model": "a text model",
	}
	return gguf.Errorf(f.Path, gguf.ErrUnsupported, "expected %s, but this is %s; pass it with the matching option", names[want], names[kind])
}

// fileKind guesses what a GGUF file is from its metadata.
func fileKind(f *gguf.File) string {
	if t, _ := f.String("general.type"); t == "adapter" || f.Has("adapter.type") {
		return "adapter"
	}
	if a, _ := f.String("general.architecture"); a == "clip" || f.Has("clip.has_vision_encoder") || f.Has("clip.projector_type") {
		return "mmproj"
	}
	return "text model"
}

// checkGeneral validates keys every llama.cpp loader reads with a typed
// getter; the clip loader aborts on a mistyped general.name.
func checkGeneral(f *gguf.File) error {
	for _, key := range []string{"general.name", "general.description", "general.architecture", "general.type"} {
		if f.Has(key) {
			if _, err := f.String(key); err != nil {
				return err
			}
		}
	}
	if f.Has("general.file_type") {
		if _, err := f.Uint32("general.file_type"); err != nil {
			return err
		}
	}
	for _, kv := range f.KVs() {
		if kv.Value.Type == gguf.TypeArray && kv.Value.Elem == gguf.TypeArray {
			return gguf.Errorf(f.Path, gguf.ErrUnsupported, "metadata key %q holds nested arrays, which llama.cpp cannot read; %s", kv.Key, adviceReconvert)
		}
	}
	return nil
}
