// Package chat renders conversations with a chat template: a model's template or one of
// llama.cpp's built-in names through libllama, and the formats llama.cpp lacks (LLaVA-1.5's
// own training format) in Go. It also decides whether the tokenizer may add its BOS token
// to a rendered conversation (not when the template already wrote it).
package chat

import (
	"fmt"
	"slices"
	"strings"

	"github.com/calft/calft/bindings/llama"
)

// Message is one turn of a conversation: Role "system", "user" or "assistant".
type Message = llama.ChatMessage

// LLaVA15 names LLaVA-1.5's own conversation format (the original repository's
// conv_vicuna_v1, which LLaVA-1.5 and BakLLaVA were trained with). LLaVA-1.5 GGUFs ship
// no chat template, and llama.cpp's built-in "vicuna" separates turns with newlines where
// LLaVA-1.5 used single spaces.
const LLaVA15 = "llava15"

// LLaVA15System is LLaVA-1.5's default system prompt; a system turn replaces it.
const LLaVA15System = "A chat between a curious user and an artificial intelligence assistant. " +
	"The assistant gives helpful, detailed, and polite answers to the user's questions."

// goTemplates are the template names this package renders itself.
var goTemplates = map[string]func([]Message, bool) (string, error){
	LLaVA15: renderLLaVA15,
}

// GoTemplates lists the names Apply renders in Go (not through llama.cpp).
func GoTemplates() []string {
	var names []string
	for n := range goTemplates {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Apply renders msgs with tmpl: a name of GoTemplates, or anything llama.cpp's
// llama_chat_apply_template accepts (a model's template text or a built-in name such as
// "chatml"). addAssistant appends the text that opens the assistant's reply.
func Apply(tmpl string, msgs []Message, addAssistant bool) (string, error) {
	if render, ok := goTemplates[strings.TrimSpace(tmpl)]; ok {
		return render(msgs, addAssistant)
	}
	return llama.ApplyChatTemplate(tmpl, msgs, addAssistant)
}

// renderLLaVA15 follows LLaVA's Conversation.get_prompt for SeparatorStyle.TWO:
// system + " ", then "USER: {q} " and "ASSISTANT: {a}</s>" per turn, and "ASSISTANT:" to
// open the reply. A system turn (first only) replaces the default; an empty one drops it.
func renderLLaVA15(msgs []Message, addAssistant bool) (string, error) {
	var b strings.Builder
	sys := LLaVA15System
	if len(msgs) > 0 && msgs[0].Role == "system" {
		sys, msgs = msgs[0].Content, msgs[1:]
	}
	if sys != "" {
		b.WriteString(sys + " ")
	}
	for i, m := range msgs {
		switch m.Role {
		case "user":
			b.WriteString("USER: " + m.Content + " ")
		case "assistant":
			b.WriteString("ASSISTANT: " + m.Content + "</s>")
		default:
			return "", fmt.Errorf("template %s: turn %d has role %q; only the first turn may be a system turn, the others user or assistant", LLaVA15, i+1, m.Role)
		}
	}
	if addAssistant {
		b.WriteString("ASSISTANT:")
	}
	return b.String(), nil
}

// Vocab is what AddBOS needs of a tokenizer (a *llama.Model).
type Vocab interface {
	BOS() int32
	AddBOS() bool
	TokenText(t int32) string
	TokenAttr(t int32) llama.TokenAttr
}

// AddSpecial reports whether text should be tokenized with the model's special tokens
// added (add_special). It is false when the model adds a BOS token and text already
// begins with that token's text, which the tokenizer reads as the token: SmolVLM's
// template starts with "<|im_start|>", its BOS, and adding another would give the
// sample two. llama.cpp's server tokenizes such prompts without adding BOS too.
func AddSpecial(v Vocab, text string) bool {
	if !v.AddBOS() {
		return true
	}
	bos := v.BOS()
	if bos < 0 || v.TokenAttr(bos)&(llama.AttrControl|llama.AttrUserDefined) == 0 {
		return true // its text would not be read as the token
	}
	piece := v.TokenText(bos)
	return piece == "" || !strings.HasPrefix(text, piece)
}
