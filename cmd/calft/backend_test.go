package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calft/calft/bindings/ggml"
	"github.com/calft/calft/internal/testbackend"
)

// TestTrainOnDevices trains the tiny model for 20 steps on each device backend present
// (the CPU taking the ops the device lacks) and on the CPU alone: the adapters must
// agree, and the summary must say how many nodes ran where.
func TestTrainOnDevices(t *testing.T) {
	d := tinyDir(t)
	same := []string{"--steps", "20", "--val-every", "0", "--backward-weights", "f32", "--no-image-weights", "f32"}
	train := func(t *testing.T, backend string) (string, []float32, map[string]int) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "run")
		msg, code := run(t, trainArgs(d, out, append(same, "--backend", backend)...)...)
		if code != 0 {
			t.Fatalf("train --backend %s: exit %d\n%s", backend, code, msg)
		}
		raw, err := os.ReadFile(filepath.Join(out, "summary.json"))
		if err != nil {
			t.Fatal(err)
		}
		var s struct {
			NodesOn map[string]int `json:"nodes_on"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		return msg, adapterValues(t, filepath.Join(out, "adapter.gguf")), s.NodesOn
	}
	kinds := testbackend.Devices(t)
	if !ggml.Registered("cuda") && ggml.LibraryPath("cuda") == "" {
		msg, code := run(t, trainArgs(d, filepath.Join(t.TempDir(), "run"), "--backend", "cuda")...)
		if code == 0 || !strings.Contains(msg, "make cuda") {
			t.Errorf("--backend cuda without its library: exit %d, and the error should name `make cuda`:\n%s", code, msg)
		}
	}
	if len(kinds) == 0 {
		t.Skip("no device backend library here (make blas, make vulkan, make cuda)")
	}
	_, ref, _ := train(t, "cpu")
	scale := 0.0
	for _, v := range ref {
		scale = max(scale, float64(max(v, -v)))
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			msg, got, placed := train(t, kind)
			e := maxAbsDiff(got, ref) / scale
			t.Logf("--backend %s: adapter within %.3g of the CPU run's (relative to its largest weight); nodes per backend %v", kind, e, placed)
			if tol := backendAdapterTol[kind]; e > tol {
				t.Errorf("the adapter differs from the CPU run's by %.3g, more than %g", e, tol)
			}
			if len(placed) == 0 || !strings.Contains(msg, "graph nodes per backend") {
				t.Errorf("the summary and the log do not say where the nodes ran:\n%s", msg)
			}
		})
	}
}

// backendAdapterTol is the largest difference from the CPU run's adapter after 20
// steps, relative to its largest weight, per device kind.
var backendAdapterTol = map[string]float64{"blas": 1e-3, "vulkan": 2e-2, "cuda": 2e-2, "metal": 2e-2}
