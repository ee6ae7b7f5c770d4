package chat

import (
	"strings"
	"testing"

	"github.com/calft/calft/bindings/llama"
)

func TestLLaVA15TwoTurns(t *testing.T) {
	msgs := []Message{
		{Role: "user", Content: "<__media__>\nWhat is in the image?"},
		{Role: "assistant", Content: "A red circle."},
		{Role: "user", Content: "Where is it?"},
		{Role: "assistant", Content: "On the left."},
	}
	got, err := Apply(LLaVA15, msgs, false)
	if err != nil {
		t.Fatal(err)
	}
	want := "A chat between a curious user and an artificial intelligence assistant. " +
		"The assistant gives helpful, detailed, and polite answers to the user's questions. " +
		"USER: <__media__>\nWhat is in the image? ASSISTANT: A red circle.</s>" +
		"USER: Where is it? ASSISTANT: On the left.</s>"
	if got != want {
		t.Errorf("rendered\n%q\nwant\n%q", got, want)
	}
	open, err := Apply(LLaVA15, msgs[:3], true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(open, "</s>USER: Where is it? ASSISTANT:") || !strings.HasPrefix(want, open) {
		t.Errorf("generation prompt %q is not the conversation's prefix ending in \"ASSISTANT:\"", open)
	}
}

func TestLLaVA15SystemTurn(t *testing.T) {
	got, err := Apply(LLaVA15, []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "hi"}}, true)
	if err != nil || got != "Be brief. USER: hi ASSISTANT:" {
		t.Errorf("got %q, %v", got, err)
	}
	got, err = Apply(LLaVA15, []Message{{Role: "system", Content: ""}, {Role: "user", Content: "hi"}}, true)
	if err != nil || got != "USER: hi ASSISTANT:" {
		t.Errorf("empty system: got %q, %v", got, err)
	}
	_, err = Apply(LLaVA15, []Message{{Role: "user", Content: "hi"}, {Role: "system", Content: "late"}}, false)
	if err == nil || !strings.Contains(err.Error(), "system") {
		t.Errorf("a late system turn gave %v", err)
	}
}

func TestApplyFallsBackToLlamaCpp(t *testing.T) {
	got, err := Apply("chatml", []Message{{Role: "user", Content: "hi"}}, true)
	if err != nil || got != "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" {
		t.Errorf("chatml: %q, %v", got, err)
	}
}

// fakeVocab is a vocabulary whose BOS is id 3 with text "<|im_start|>".
type fakeVocab struct {
	addBOS bool
	attr   llama.TokenAttr
}

func (v fakeVocab) BOS() int32                      { return 3 }
func (v fakeVocab) AddBOS() bool                    { return v.addBOS }
func (v fakeVocab) TokenText(int32) string          { return "<|im_start|>" }
func (v fakeVocab) TokenAttr(int32) llama.TokenAttr { return v.attr }

func TestAddSpecial(t *testing.T) {
	for _, c := range []struct {
		v    fakeVocab
		text string
		want bool
	}{
		{fakeVocab{true, llama.AttrControl}, "<|im_start|>User: hi", false},
		{fakeVocab{true, llama.AttrControl}, "User: hi", true},
		{fakeVocab{false, llama.AttrControl}, "<|im_start|>User: hi", true},
		{fakeVocab{true, llama.AttrNormal}, "<|im_start|>User: hi", true}, // read as text, not the token
	} {
		if got := AddSpecial(c.v, c.text); got != c.want {
			t.Errorf("AddSpecial(%+v, %q) = %v, want %v", c.v, c.text, got, c.want)
		}
	}
}
