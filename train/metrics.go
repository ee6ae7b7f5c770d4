package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
)

// Metrics is one line of OUT/metrics.jsonl.
type Metrics struct {
	Step         int      `json:"step"`
	Epoch        float64  `json:"epoch"`
	LR           float64  `json:"lr"`
	Loss         float64  `json:"loss"`
	CALWeight    float64  `json:"cal_weight_mean"`
	GradNorm     float64  `json:"grad_norm"`
	TokensPerSec float64  `json:"tokens_per_s"`
	ValLoss      *float64 `json:"val_loss,omitempty"`
	// SyncSec is the step's time spent exchanging gradients and statistics between the
	// ranks of a data-parallel job: host copies and allreduces, including waits for the
	// slowest rank (absent when alone).
	SyncSec float64 `json:"sync_s,omitempty"`
}

// ValPoint is a validation loss measured after Step optimizer steps.
type ValPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

// Summary is what a finished run reports (also written to OUT/summary.json).
type Summary struct {
	Steps        int        `json:"steps"`
	Samples      int        `json:"train_samples"`
	ValSamples   int        `json:"val_samples"`
	Skipped      int        `json:"skipped_samples"`
	FirstLoss    float64    `json:"first_loss"`
	LastLoss     float64    `json:"last_loss"`
	Val          []ValPoint `json:"val_loss"`
	Adapter      string     `json:"adapter"`
	Merged       string     `json:"merged,omitempty"`
	Seconds      float64    `json:"seconds"`
	TokensPerSec float64    `json:"tokens_per_s"`
	Resumed      int        `json:"resumed_from_step"`
	Ranks        int        `json:"ranks,omitempty"` // of a data-parallel job (absent when alone)
	// Backend is where the steps ran; NodesOn, beside a device, how many graph nodes ran
	// on the device and how many on the CPU fallback (this process, since it started).
	Backend string         `json:"backend"`
	NodesOn map[string]int `json:"nodes_on,omitempty"`
}

// metricsFile appends one JSON line per step to OUT/metrics.jsonl.
type metricsFile struct{ f *os.File }

// openMetrics opens the metrics of a run; a resumed run keeps the lines up to its
// checkpoint and drops any written after it.
func openMetrics(out string, keepUpTo int) (*metricsFile, error) {
	path := filepath.Join(out, "metrics.jsonl")
	var kept []byte
	if keepUpTo > 0 {
		if raw, err := os.ReadFile(path); err == nil {
			sc := bufio.NewScanner(bytes.NewReader(raw))
			for sc.Scan() {
				var m Metrics
				if json.Unmarshal(sc.Bytes(), &m) == nil && m.Step <= keepUpTo {
					kept = append(append(kept, sc.Bytes()...), '\n')
				}
			}
		}
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsFile{f}, nil
}

func (m *metricsFile) write(x Metrics) error {
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	_, err = m.f.Write(append(b, '\n'))
	return err
}

func (m *metricsFile) Close() error { return m.f.Close() }
