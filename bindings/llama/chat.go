package llama

/*
#include <stdlib.h>
#include "llama.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// ApplyChatTemplate formats msgs with a chat template: a model's Jinja template text
// (Model.ChatTemplate) or a built-in name such as "chatml". llama.cpp does not run
// Jinja; it recognises known templates by their text, so an unrecognised one is an
// error. addAssistant appends the prefix that opens the assistant's reply.
func ApplyChatTemplate(tmpl string, msgs []ChatMessage, addAssistant bool) (string, error) {
	if tmpl == "" {
		return "", fmt.Errorf("chat template: empty template")
	}
	initBackend()
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))

	// The message array holds pointers, so it lives in C memory along with the strings.
	n := max(len(msgs), 1)
	cmsgs := (*C.llama_chat_message)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(C.llama_chat_message{}))))
	defer C.free(unsafe.Pointer(cmsgs))
	arr := unsafe.Slice(cmsgs, n)
	total := 0
	for i, msg := range msgs {
		arr[i].role = C.CString(msg.Role)
		arr[i].content = C.CString(msg.Content)
		total += len(msg.Role) + len(msg.Content)
	}
	defer func() {
		for i := range msgs {
			C.free(unsafe.Pointer(arr[i].role))
			C.free(unsafe.Pointer(arr[i].content))
		}
	}()

	size := 2*total + 256
	for {
		buf := make([]byte, size)
		r := int(C.llama_chat_apply_template(ctmpl, cmsgs, C.size_t(len(msgs)), C.bool(addAssistant),
			(*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf))))
		if r < 0 {
			return "", fmt.Errorf("chat template not supported by llama.cpp (template starts %q)", head(tmpl, 60))
		}
		if r <= len(buf) {
			return string(buf[:r]), nil
		}
		size = r // the return value is the full length; the buffer was too small
	}
}

func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
