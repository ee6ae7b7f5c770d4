package llama

/*
#include <stdlib.h>
*/
import "C"

import (
	"io"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// LogLevel is a threshold for the messages of llama.cpp, ggml and clip: a message is
// printed when its level is at least the threshold. The values match ggml_log_level.
type LogLevel int

// Log thresholds, from most to least verbose.
const (
	LogDebug LogLevel = 1
	LogInfo  LogLevel = 2
	LogWarn  LogLevel = 3
	LogError LogLevel = 4
	// LogQuiet prints nothing; error messages are still kept for the Go errors.
	LogQuiet LogLevel = 100
)

// ggml's level for "this text continues the previous message".
const levelCont = 5

// maxKeptErrors bounds the error lines remembered between two clearErrors calls.
const maxKeptErrors = 8

// logState is the filter shared by every C library that logs through this package.
type logState struct {
	mu        sync.Mutex
	threshold LogLevel
	out       io.Writer
	last      map[string]int // last real level per source, for continuation lines
	errs      []string       // error lines since the last clearErrors
	errOpen   bool           // continuation lines extend the last kept error line
}

var logs = logState{threshold: levelFromEnv(os.Getenv("CALFT_LOG")), out: os.Stderr, last: map[string]int{}}

// levelFromEnv maps CALFT_LOG to a threshold; unset or unknown means quiet, because
// llama.cpp's loading chatter would otherwise drown the CLI's own output.
func levelFromEnv(v string) LogLevel {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "debug", "all", "1":
		return LogDebug
	case "info":
		return LogInfo
	case "warn", "warning":
		return LogWarn
	case "error":
		return LogError
	}
	return LogQuiet
}

// SetLogLevel sets the threshold for printing C library messages.
func SetLogLevel(l LogLevel) {
	logs.mu.Lock()
	logs.threshold = l
	logs.mu.Unlock()
}

// SetLogOutput redirects printed C library messages (default os.Stderr).
func SetLogOutput(w io.Writer) {
	logs.mu.Lock()
	logs.out = w
	logs.mu.Unlock()
}

// LogFrom filters one message from a C library. source names the library's stream so
// that its continuation lines (level 5) inherit the level of its previous message. It is
// exported for sibling bindings that install their own C callback (mtmd's clip logger).
func LogFrom(source string, level int, text string) {
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if level == levelCont {
		level = logs.last[source]
		if logs.errOpen {
			logs.errs[len(logs.errs)-1] += text
		}
	} else {
		logs.last[source] = level
		logs.errOpen = level == int(LogError)
		if logs.errOpen {
			if len(logs.errs) == maxKeptErrors {
				logs.errs = logs.errs[1:]
			}
			logs.errs = append(logs.errs, text)
		}
	}
	if level >= int(logs.threshold) && logs.out != nil {
		io.WriteString(logs.out, text)
	}
}

// clearErrors forgets the error lines logged so far; call it right before a C call
// whose failure should be explained by the lines it logs.
func clearErrors() {
	logs.mu.Lock()
	logs.errs = logs.errs[:0]
	logs.errOpen = false
	logs.mu.Unlock()
}

// takeErrors returns the error lines logged since clearErrors, joined on one line.
func takeErrors() string {
	logs.mu.Lock()
	defer logs.mu.Unlock()
	var parts []string
	for _, e := range logs.errs {
		if e = strings.Join(strings.Fields(e), " "); e != "" {
			parts = append(parts, e)
		}
	}
	logs.errs = logs.errs[:0]
	logs.errOpen = false
	return strings.Join(parts, "; ")
}

// ClearLogErrors and TakeLogErrors give sibling bindings the same error capture.
func ClearLogErrors() { clearErrors() }

// TakeLogErrors returns the C error messages logged since ClearLogErrors.
func TakeLogErrors() string { return takeErrors() }

//export calftLlamaLog
func calftLlamaLog(level C.int, text *C.char, _ unsafe.Pointer) {
	LogFrom("ggml", int(level), C.GoString(text))
}
