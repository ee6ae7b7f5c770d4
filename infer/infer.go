// Package infer runs greedy generation through libllama, with an optional image (via
// mtmd) and an optional LoRA adapter: the reference path against which fine-tuned
// models are checked, and the CLI's "generate" command.
package infer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/bindings/llama"
	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/chat"
	"github.com/calft/calft/gguf/check"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/lora"
)

// Options describes one generation.
type Options struct {
	Model     string  // text model GGUF (required)
	Mmproj    string  // projector GGUF (required with Image)
	Image     string  // image file (PNG, JPEG, GIF, WebP, BMP); optional
	Lora      string  // LoRA adapter GGUF or PEFT adapter folder; optional
	LoraScale float32 // adapter scale; 0 means 1
	Prompt    string
	N         int // most tokens to generate (at least 1)
	Threads   int // 0 = runtime.NumCPU()
	// Backend is where llama.cpp decodes: cpu ("") or a device kind (cuda, vulkan,
	// metal, auto), whose library is loaded and to which every layer is offloaded.
	Backend string
	// UseChatTemplate wraps the prompt as a user turn of the model's chat template and
	// opens the assistant's reply. A model without a template gets the raw prompt.
	UseChatTemplate bool
	// Template, when set, is the chat template to use instead of the model's: a llama.cpp
	// name, template text or one of chat.GoTemplates (llava15).
	Template string
	// OnText, when set, receives the generated text as it is produced, in pieces that
	// never split a UTF-8 character.
	OnText func(string)
}

// Generate loads the models, feeds the prompt (text and image rows in llama.cpp's
// order and positions) and decodes greedily until an end-of-generation token or N
// tokens. It returns the generated text.
func Generate(o Options) (string, error) {
	// llama.cpp loads GGUF adapters only: a PEFT folder becomes a temporary one.
	lp, cleanup, err := lora.AsGGUF(o.Lora, o.Model)
	if err != nil {
		return "", err
	}
	defer cleanup()
	o.Lora = lp
	img, err := o.check()
	if err != nil {
		return "", err
	}
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	n := o.N

	layers, err := GPULayers(o.Backend)
	if err != nil {
		return "", err
	}
	model, err := llama.LoadModel(o.Model, llama.ModelParams{UseMmap: true, NGPULayers: layers})
	if err != nil {
		return "", err
	}
	defer model.Close() // also closes the projector, context and adapter below

	text, err := o.formatPrompt(model)
	if err != nil {
		return "", err
	}
	p, err := preparePrompt(model, o.Mmproj, img, text, threads)
	if err != nil {
		return "", err
	}
	defer p.close()

	ctx, err := llama.NewContext(model, llama.ContextParams{
		NCtx: p.nPos() + n + 1, NThreads: threads, KVF32: true,
	})
	if err != nil {
		return "", err
	}
	if o.Lora != "" {
		a, err := llama.LoadAdapter(model, o.Lora)
		if err != nil {
			return "", err
		}
		scale := o.LoraScale
		if scale == 0 {
			scale = 1
		}
		if err := ctx.SetAdapter(a, scale); err != nil {
			return "", err
		}
	}
	nPast, err := p.decode(ctx)
	if err != nil {
		return "", err
	}
	return greedy(ctx, model, nPast, n, o.OnText)
}

// check validates every input before any C code runs, and decodes the image.
func (o Options) check() (*imageio.RGB, error) {
	if o.N < 1 {
		return nil, fmt.Errorf("generate: --n %d: generate at least one token", o.N)
	}
	if err := ggml.CheckThreads(o.Threads); err != nil {
		return nil, err
	}
	if err := llama.CheckGGUFFile(o.Model, "model"); err != nil {
		return nil, err
	}
	// llama.cpp aborts the process on some malformed files; the Go checks refuse them first.
	model, err := check.TextModel(o.Model)
	if err != nil {
		return nil, err
	}
	if o.Lora != "" {
		if err := llama.CheckGGUFFile(o.Lora, "LoRA adapter"); err != nil {
			return nil, err
		}
		if _, err := check.Adapter(o.Lora, model); err != nil {
			return nil, err
		}
		if _, err := lora.Read(o.Lora); err != nil { // its values: NaN would generate nothing
			return nil, err
		}
	}
	if o.Image == "" {
		if strings.TrimSpace(o.Prompt) == "" {
			return nil, errors.New("generate: empty prompt and no image")
		}
		if strings.Contains(o.Prompt, mtmd.DefaultMarker()) {
			return nil, fmt.Errorf("generate: prompt contains the image marker %s but no image was given", mtmd.DefaultMarker())
		}
		return nil, nil
	}
	if o.Mmproj == "" {
		return nil, fmt.Errorf("generate: image %s needs a projector (mmproj) file", o.Image)
	}
	if err := llama.CheckGGUFFile(o.Mmproj, "mmproj"); err != nil {
		return nil, err
	}
	mm, err := check.Mmproj(o.Mmproj)
	if err != nil {
		return nil, err
	}
	if err := check.MmprojForModel(mm, model); err != nil {
		return nil, err
	}
	if c := strings.Count(o.Prompt, mtmd.DefaultMarker()); c > 1 {
		return nil, fmt.Errorf("generate: prompt has %d image markers for one image", c)
	}
	if _, err := os.Stat(o.Image); err != nil {
		return nil, fmt.Errorf("image %w", err)
	}
	return imageio.Load(o.Image)
}

// formatPrompt places the image marker (before the text, LLaVA's convention, unless
// the prompt already has one) and applies the chat template when asked to.
func (o Options) formatPrompt(m *llama.Model) (string, error) {
	text := o.Prompt
	if o.Image != "" && !strings.Contains(text, mtmd.DefaultMarker()) {
		text = mtmd.DefaultMarker() + "\n" + text
	}
	if !o.UseChatTemplate {
		return text, nil
	}
	tmpl := o.Template
	if tmpl == "" {
		tmpl = m.ChatTemplate()
	}
	if tmpl == "" {
		return text, nil
	}
	out, err := chat.Apply(tmpl, []chat.Message{{Role: "user", Content: text}}, true)
	if err != nil {
		return "", fmt.Errorf("model %s: %w (generate without the chat template to use the raw prompt)", o.Model, err)
	}
	return out, nil
}

// GPULayers makes a --backend's device known to llama.cpp (loading its library) and
// returns the layers to offload to it: none for the CPU, all for a device.
func GPULayers(backend string) (int, error) {
	switch backend = strings.ToLower(backend); backend {
	case "", "cpu":
		return 0, nil
	case "auto":
		ggml.OpenGPULibraries()
	default:
		if err := ggml.OpenLibrary(backend); err != nil {
			return 0, err
		}
	}
	return 999, nil
}
