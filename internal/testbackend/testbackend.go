// Package testbackend starts the backend that tests compute on. CALFT_TEST_BACKEND
// names it (cpu when unset; cuda, vulkan, blas, metal or auto otherwise), so that the
// same parity and gradient tests that run on the CPU in CI run on a device where one is
// built: scripts/device-check.sh runs them on CUDA that way.
package testbackend

import (
	"os"
	"strings"
	"testing"

	"github.com/calft/calft/bindings/ggml"
)

// Name is the backend tests run on.
func Name() string {
	if n := os.Getenv("CALFT_TEST_BACKEND"); n != "" {
		return n
	}
	return "cpu"
}

// New starts Name() with threads CPU threads (0: all), closed when t ends.
func New(t testing.TB, threads int) *ggml.Backend {
	t.Helper()
	be, err := ggml.NewBackend(Name(), threads)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(be.Close)
	return be
}

// Devices are the kinds besides the CPU whose libraries are present (built by `make
// blas`, `make vulkan`, `make cuda`) and that have a device here, among those named in
// CALFT_TEST_DEVICES (comma-separated; unset: every kind). The kinds named in
// CALFT_REQUIRE_BACKENDS (`make test` names blas) must be among them: their absence
// fails t instead of leaving their tests out.
func Devices(t testing.TB) []string {
	t.Helper()
	var out []string
	only := os.Getenv("CALFT_TEST_DEVICES")
	for _, kind := range ggml.Kinds {
		if kind == "cpu" || (only != "" && !strings.Contains(","+only+",", ","+kind+",")) {
			continue
		}
		if be, err := ggml.NewBackend(kind, 1); err == nil {
			be.Close()
			out = append(out, kind)
		} else {
			t.Logf("%s: %v", kind, err)
		}
	}
	for _, req := range strings.Split(os.Getenv("CALFT_REQUIRE_BACKENDS"), ",") {
		req = strings.TrimSpace(req)
		if req == "" {
			continue
		}
		found := false
		for _, k := range out {
			found = found || k == req
		}
		if !found {
			t.Fatalf("CALFT_REQUIRE_BACKENDS names %s, but its backend did not start (see the log above); build it with `make %s`", req, req)
		}
	}
	return out
}
