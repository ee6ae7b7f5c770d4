package data

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/calft/calft/bindings/mtmd"
	"github.com/calft/calft/gguf"
	"github.com/calft/calft/imageio"
	"github.com/calft/calft/internal/fsutil"
	"github.com/calft/calft/llava"
)

// EmbedCache encodes each image once with the frozen projector and keeps its embedding
// rows, in memory and (with a folder) on disk, keyed by the projector file and the image
// bytes, so epochs and later runs reuse them.
type EmbedCache struct {
	mc  *mtmd.Context
	dir string              // "" keeps the cache in memory only
	mem map[string][]uint16 // F16 embeddings
	// Hits and Encoded count lookups served from the cache and images encoded.
	Hits, Encoded int
}

// OnDisk reports whether the cache keeps embeddings in a folder (read back when needed)
// rather than in memory.
func (c *EmbedCache) OnDisk() bool { return c.dir != "" }

// EmbedBytes is the memory of one embedding value the cache keeps (F16).
const EmbedBytes = 2

// NewEmbedCache makes a cache for the projector at mmprojPath (loaded as mc). dir may be
// empty.
func NewEmbedCache(mc *mtmd.Context, mmprojPath, dir string) (*EmbedCache, error) {
	c := &EmbedCache{mc: mc, mem: map[string][]uint16{}}
	if dir != "" {
		key, err := fileKey(mmprojPath)
		if err != nil {
			return nil, err
		}
		c.dir = filepath.Join(dir, key[:16])
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return nil, fmt.Errorf("embedding cache: %w", err)
		}
	}
	return c, nil
}

// fileKey identifies a (possibly large) file by its size and its first and last MiB.
func fileKey(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	binary.Write(h, binary.LittleEndian, st.Size())
	const part = 1 << 20
	if _, err := io.CopyN(h, f, part); err != nil && err != io.EOF {
		return "", err
	}
	if st.Size() > 2*part {
		if _, err := f.Seek(-part, io.SeekEnd); err != nil {
			return "", err
		}
		if _, err := io.Copy(h, f); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Get returns every embedding row of an image (all its chunks, in order).
func (c *EmbedCache) Get(path string) ([]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("image %w", err)
	}
	sum := sha256.Sum256(raw)
	key := hex.EncodeToString(sum[:])
	if e, ok := c.mem[key]; ok {
		c.Hits++
		return fromF16(e), nil
	}
	file := ""
	if c.dir != "" {
		file = filepath.Join(c.dir, key+".f32")
		if e, err := readEmbedding(file); err == nil {
			c.Hits++
			return e, nil
		}
	}
	im, err := imageio.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	e, err := c.encode(im)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Encoded++
	// Kept in F16, half the memory and disk of F32 (9.4 MB → 4.7 MB for a LLaVA-1.5
	// image), and read back through the same rounding whichever way it is kept, so a run
	// trains on the same values with a cache or without.
	h, err := toF16(e)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if file == "" {
		// With a disk cache, rows are read back from disk when needed: keeping every
		// image in memory too would grow with the dataset.
		c.mem[key] = h
	} else if err := writeEmbedding(file, h); err != nil {
		return nil, err
	}
	return fromF16(h), nil
}

func toF16(v []float32) ([]uint16, error) {
	out := make([]uint16, len(v))
	for i, x := range v {
		if x > 65504 || x < -65504 {
			return nil, fmt.Errorf("the projector's output %g is beyond F16's range, which the embedding cache keeps", x)
		}
		out[i] = gguf.Float32ToFloat16(x)
	}
	return out, nil
}

func fromF16(h []uint16) []float32 {
	out := make([]float32, len(h))
	for i, x := range h {
		out[i] = gguf.Float16ToFloat32(x)
	}
	return out
}

func (c *EmbedCache) encode(im *imageio.RGB) ([]float32, error) {
	p, err := c.mc.TokenizePrompt(mtmd.DefaultMarker(), []mtmd.Image{{RGB: im.Pix, W: im.W, H: im.H}}, false, true)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	var out []float32
	for i, ch := range p.Chunks {
		if ch.Kind == mtmd.ChunkText {
			continue
		}
		e, err := p.Encode(i)
		if err != nil {
			return nil, err
		}
		for _, v := range e.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("the projector produced a non-finite embedding")
			}
		}
		out = append(out, e.Data...)
	}
	return out, nil
}

// embedMagic starts a cache file of F16 values (files of calft versions that kept F32
// had another, and are encoded again).
const embedMagic = "CALFTE16"

func writeEmbedding(path string, e []uint16) error {
	buf := make([]byte, len(embedMagic)+8+2*len(e))
	copy(buf, embedMagic)
	binary.LittleEndian.PutUint64(buf[len(embedMagic):], uint64(len(e)))
	for i, v := range e {
		binary.LittleEndian.PutUint16(buf[len(embedMagic)+8+2*i:], v)
	}
	if err := fsutil.WriteFileAtomic(path, buf); err != nil {
		return fmt.Errorf("embedding cache: %w", err)
	}
	return nil
}

func readEmbedding(path string) ([]float32, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h := len(embedMagic) + 8
	if len(buf) < h || string(buf[:len(embedMagic)]) != embedMagic {
		return nil, fmt.Errorf("%s: not a calft embedding", path)
	}
	// Compared by division: 2·n wraps around for a huge n and would let one through.
	n := binary.LittleEndian.Uint64(buf[len(embedMagic):])
	if rest := uint64(len(buf) - h); rest%2 != 0 || rest/2 != n {
		return nil, fmt.Errorf("%s: truncated embedding", path)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = gguf.Float16ToFloat32(binary.LittleEndian.Uint16(buf[h+2*i:]))
		// The projector's output is checked finite before it is cached: anything else
		// is damage, and the error makes Get encode the image afresh.
		if math.IsNaN(float64(out[i])) || math.IsInf(float64(out[i]), 0) {
			return nil, fmt.Errorf("%s: damaged embedding (value %d is %v)", path, i, out[i])
		}
	}
	return out, nil
}

// Sequence assembles a sample's decoder input, with its image rows from the cache.
// The cache may be nil for a sample without images.
func (c *EmbedCache) Sequence(s *Sample, nEmbd int) (llava.Sequence, error) {
	seq := llava.Sequence{Tokens: s.Rows, NonCausal: s.NonCausal}
	if c == nil && len(s.Images) > 0 {
		return seq, fmt.Errorf("sample %s has images but no vision projector was loaded", s.ID)
	}
	for _, p := range s.Images {
		e, err := c.Get(p)
		if err != nil {
			return seq, fmt.Errorf("sample %s: %w", s.ID, err)
		}
		seq.Embd = append(seq.Embd, e...)
	}
	if want := seq.NImageRows() * nEmbd; len(seq.Embd) != want {
		return seq, fmt.Errorf("sample %s: its images gave %d embedding floats, its %d image rows need %d",
			s.ID, len(seq.Embd), seq.NImageRows(), want)
	}
	if s.Grids != nil {
		// M-RoPE: image rows sit on a grid and the text after an image continues
		// at its first position + max(nx, ny), as llama.cpp's mtmd helper places them.
		var err error
		if seq.Pos, seq.PosHW, err = llava.GridPositions(s.Rows, s.Grids); err != nil {
			return seq, fmt.Errorf("sample %s: %w", s.ID, err)
		}
	}
	return seq, nil
}
