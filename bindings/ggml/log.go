package ggml

// #include "ggml.h"
// extern void calftGGMLLog(int level, char *text, void *user);
// static void calft_ggml_log_install(void) { ggml_log_set((ggml_log_callback)calftGGMLLog, NULL); }
import "C"

import (
	"os"
	"sync/atomic"
)

// ggml's log levels.
const (
	LogDebug = int(C.GGML_LOG_LEVEL_DEBUG)
	LogInfo  = int(C.GGML_LOG_LEVEL_INFO)
	LogWarn  = int(C.GGML_LOG_LEVEL_WARN)
	LogError = int(C.GGML_LOG_LEVEL_ERROR)
	logCont  = int(C.GGML_LOG_LEVEL_CONT)
)

var (
	minLevel  atomic.Int32
	lastLevel atomic.Int32
)

func init() {
	minLevel.Store(int32(LogError))
	if os.Getenv("CALFT_LOG") == "debug" {
		minLevel.Store(int32(LogDebug))
	}
	C.calft_ggml_log_install()
}

//export calftGGMLLog
func calftGGMLLog(level C.int, text *C.char, _ *C.void) {
	lv := int(level)
	// A continuation line belongs to the message before it, so it shares that level.
	if lv == logCont {
		lv = int(lastLevel.Load())
	} else {
		lastLevel.Store(int32(lv))
	}
	if lv >= int(minLevel.Load()) {
		os.Stderr.WriteString(C.GoString(text))
	}
}
