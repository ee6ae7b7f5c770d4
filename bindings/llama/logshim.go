package llama

/*
#include "llama.h"

extern void calftLlamaLog(int level, char *text, void *user_data);

// The shim gives the Go export the exact ggml_log_callback signature.
static void calft_llama_log_shim(enum ggml_log_level level, const char *text, void *user_data) {
	calftLlamaLog((int)level, (char *)text, user_data);
}

// llama_log_set also installs the callback as ggml's logger.
static void calft_llama_install_log(void) {
	llama_log_set(calft_llama_log_shim, NULL);
}
*/
import "C"

// installLogger routes llama.cpp and ggml messages through LogFrom.
func installLogger() { C.calft_llama_install_log() }
