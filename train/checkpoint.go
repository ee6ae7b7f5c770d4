package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/lora"
)

// A checkpoint is a folder under OUT/checkpoints holding everything a run needs to go on
// exactly where it stopped: the adapter, the AdamW moments, the step (which fixes the
// position in the data order) and the configuration. It is written under a temporary
// name and renamed, and OUT/checkpoints/latest names the newest complete one.
const (
	checkpointsDir = "checkpoints"
	latestFile     = "latest"
	keepCheckpoint = 2
)

type checkpointState struct {
	Step    int    `json:"step"`     // optimizer steps done
	OptStep int    `json:"opt_step"` // AdamW's step counter
	Total   int    `json:"total_steps"`
	Config  Config `json:"config"`
	// DataDigest identifies the built samples, so a resume on changed data is refused.
	DataDigest string `json:"data_digest"`
	// Ranks is the number of processes of a data-parallel run (absent: one); a run
	// resumes only with as many, since they fix the global batch and the data order.
	Ranks int `json:"ranks,omitempty"`
}

func checkpointRoot(out string) string { return filepath.Join(out, checkpointsDir) }

// manifestFile lists the SHA-256 of every other file of a checkpoint. It is written last,
// so a checkpoint whose files do not match it was damaged after it was written.
const manifestFile = "manifest.json"

type manifest struct {
	SHA256 map[string]string `json:"sha256"`
}

// checkpointFiles are the files of a checkpoint besides its manifest.
var checkpointFiles = []string{"adapter.gguf", "optimizer.bin", "state.json"}

// writeManifest records the checksums of a checkpoint folder's files.
func writeManifest(dir string) error {
	m := manifest{SHA256: map[string]string{}}
	for _, f := range checkpointFiles {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		m.SHA256[f] = sum
	}
	js, _ := json.MarshalIndent(m, "", "  ")
	return fsutil.WriteFileAtomic(filepath.Join(dir, manifestFile), js)
}

// verifyManifest checks a checkpoint's files against its manifest. A checkpoint from
// before manifests existed has none and is accepted as it is.
func verifyManifest(dir string) error {
	js, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var m manifest
	if err := json.Unmarshal(js, &m); err != nil || len(m.SHA256) == 0 {
		return fmt.Errorf("%s is damaged", manifestFile)
	}
	for _, f := range checkpointFiles {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if sum != m.SHA256[f] {
			return fmt.Errorf("%s does not match its checksum (it changed after it was written: a damaged disk or copy)", f)
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// saveCheckpoint writes the state after step optimizer steps. crash, when not nil, is
// called halfway through (a test hook that kills the process there).
func saveCheckpoint(out string, arch string, ad *lora.Adapter, opt *Optimizer, st checkpointState, crash func()) (string, error) {
	root := checkpointRoot(out)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	name := fmt.Sprintf("step-%07d", st.Step)
	tmp, err := os.MkdirTemp(root, ".tmp-"+name+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := ad.ToHost(arch).Save(filepath.Join(tmp, "adapter.gguf"), gguf.F32); err != nil {
		return "", err
	}
	if crash != nil {
		crash()
	}
	m, v := opt.Moments()
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, "optimizer.bin"), encodeMoments(m, v)); err != nil {
		return "", err
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, "state.json"), js); err != nil {
		return "", err
	}
	if err := writeManifest(tmp); err != nil {
		return "", err
	}
	final := filepath.Join(root, name)
	// A checkpoint of the same step may exist (a run stopped at its last step, then
	// resumed): move it aside rather than delete it before the new one is in place.
	old := ""
	if _, err := os.Stat(final); err == nil {
		old = filepath.Join(root, ".old-"+name)
		os.RemoveAll(old)
		if err := os.Rename(final, old); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(root, latestFile), []byte(name+"\n")); err != nil {
		return "", err
	}
	pruneCheckpoints(root, name)
	return final, nil
}

// sweepCheckpoints removes the temporary folders of checkpoints that were being written
// when a run was killed; the caller holds the run folder's lock.
func sweepCheckpoints(out string) int {
	entries, _ := os.ReadDir(checkpointRoot(out))
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".old-") {
			if os.RemoveAll(filepath.Join(checkpointRoot(out), e.Name())) == nil {
				n++
			}
		}
	}
	return n
}

// finished returns the state of a run's last checkpoint when the run is complete (all
// its steps done and its summary written), nil otherwise.
func finished(out string) (*checkpointState, error) {
	dir, err := latestCheckpoint(out)
	if err != nil || dir == "" {
		return nil, err
	}
	js, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st checkpointState
	if err := json.Unmarshal(js, &st); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(out, "summary.json")); err != nil || st.Step < st.Total {
		return nil, nil
	}
	return &st, nil
}

// pruneCheckpoints keeps the newest few complete checkpoints.
func pruneCheckpoints(root, latest string) {
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for len(names) > keepCheckpoint {
		if names[0] != latest {
			os.RemoveAll(filepath.Join(root, names[0]))
		}
		names = names[1:]
	}
}

// checkpointCandidates lists a run's checkpoint folders to resume from, best first: the
// one "latest" names, then every other complete one, newest first.
func checkpointCandidates(out string) []string {
	var out2 []string
	if dir, err := latestCheckpoint(out); err == nil && dir != "" {
		if _, err := os.Stat(dir); err == nil {
			out2 = append(out2, dir)
		}
	}
	entries, _ := os.ReadDir(checkpointRoot(out))
	var names []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") {
			names = append(names, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, n := range names {
		if dir := filepath.Join(checkpointRoot(out), n); !slices.Contains(out2, dir) {
			out2 = append(out2, dir)
		}
	}
	return out2
}

// latestCheckpoint returns the newest complete checkpoint folder, or "".
func latestCheckpoint(out string) (string, error) {
	b, err := os.ReadFile(filepath.Join(checkpointRoot(out), latestFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(checkpointRoot(out), strings.TrimSpace(string(b))), nil
}

// loadCheckpoint reads a checkpoint's state, adapter and moments.
func loadCheckpoint(dir string) (*checkpointState, *lora.HostAdapter, [][]float32, [][]float32, error) {
	if err := verifyManifest(dir); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	var st checkpointState
	if err := json.Unmarshal(js, &st); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("checkpoint %s: state.json: %v", dir, err)
	}
	h, err := lora.Read(filepath.Join(dir, "adapter.gguf"))
	if err != nil {
		return nil, nil, nil, nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "optimizer.bin"))
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	m, v, err := decodeMoments(raw)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("checkpoint %s: optimizer.bin: %v", dir, err)
	}
	return &st, h, m, v, nil
}

// encodeMoments stores m and v: a count, then per tensor its length and floats.
func encodeMoments(m, v [][]float32) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m)))
	for _, set := range [][][]float32{m, v} {
		for _, t := range set {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(t)))
			for _, x := range t {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
			}
		}
	}
	return b
}

func decodeMoments(b []byte) (m, v [][]float32, err error) {
	read := func() (uint32, bool) {
		if len(b) < 4 {
			return 0, false
		}
		x := binary.LittleEndian.Uint32(b)
		b = b[4:]
		return x, true
	}
	n, ok := read()
	if !ok {
		return nil, nil, errors.New("truncated")
	}
	for s := 0; s < 2; s++ {
		var set [][]float32
		for i := 0; i < int(n); i++ {
			l, ok := read()
			if !ok || len(b) < 4*int(l) {
				return nil, nil, errors.New("truncated")
			}
			t := make([]float32, l)
			for j := range t {
				x, _ := read()
				t[j] = math.Float32frombits(x)
				if math.IsNaN(float64(t[j])) || math.IsInf(float64(t[j]), 0) {
					return nil, nil, fmt.Errorf("tensor %d holds %v: damaged", i, t[j])
				}
			}
			set = append(set, t)
		}
		if s == 0 {
			m = set
		} else {
			v = set
		}
	}
	return m, v, nil
}
