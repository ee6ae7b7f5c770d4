package mtmd

/*
#include "mtmd.h"

extern void calftMtmdLog(int level, char *text, void *user_data);

// The shim gives the Go export the exact ggml_log_callback signature.
static void calft_mtmd_log_shim(enum ggml_log_level level, const char *text, void *user_data) {
	calftMtmdLog((int)level, (char *)text, user_data);
}

static void calft_mtmd_install_log(void) { mtmd_log_set(calft_mtmd_log_shim, NULL); }
*/
import "C"

// installLogger sends clip/mtmd messages through the llama binding's filter, so that
// CALFT_LOG and llama.SetLogLevel govern them too.
func installLogger() { C.calft_mtmd_install_log() }
