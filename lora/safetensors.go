package lora

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/calft/calft/gguf"
	"github.com/calft/calft/internal/fsutil"
)

// The safetensors format (what Hugging Face PEFT saves adapters in): an 8-byte
// little-endian header length N, N bytes of JSON mapping each tensor's name to its dtype,
// shape and [begin, end) byte offsets into the data that follows, and the raw row-major
// data. An optional "__metadata__" entry maps strings to strings.

// ErrSafetensors is the kind of every error about a malformed safetensors file.
var ErrSafetensors = errors.New("malformed safetensors file")

// Safetensors dtypes calft reads and writes.
const (
	STF32  = "F32"
	STF16  = "F16"
	STBF16 = "BF16"
)

// Limits on what a safetensors file may declare, as the reference implementation has.
const (
	stMaxHeader = 100 << 20 // bytes of JSON header
	stMaxDims   = 8
)

// STensor is one tensor of a safetensors file: its values as float32, row-major.
type STensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// stEntry is a tensor's entry in the JSON header.
type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int64  `json:"shape"`
	Offsets []uint64 `json:"data_offsets"`
}

func stElemSize(dtype string) int {
	switch dtype {
	case STF32:
		return 4
	case STF16, STBF16:
		return 2
	}
	return 0
}

// WriteSafetensors writes the tensors, in name order, as dtype (F32, F16 or BF16), with
// the metadata, atomically.
func WriteSafetensors(path string, ts []STensor, dtype string, meta map[string]string) error {
	size := stElemSize(dtype)
	if size == 0 {
		return fmt.Errorf("%s: safetensors are written as F32, F16 or BF16, not %q", path, dtype)
	}
	ts = slices.Clone(ts)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var data bytes.Buffer
	for _, t := range ts {
		n := 1
		shape := make([]int64, len(t.Shape))
		for i, d := range t.Shape {
			n *= d
			shape[i] = int64(d)
		}
		if n != len(t.Data) || t.Name == "" || t.Name == "__metadata__" {
			return fmt.Errorf("%s: tensor %q has shape %v and %d values", path, t.Name, t.Shape, len(t.Data))
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("%s: tensor %q given twice", path, t.Name)
		}
		begin := uint64(data.Len())
		data.Write(encodeST(t.Data, dtype))
		header[t.Name] = stEntry{DType: dtype, Shape: shape, Offsets: []uint64{begin, uint64(data.Len())}}
	}
	js, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Pad the header with spaces so the data starts 8-byte aligned, as the reference
	// writer does.
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := make([]byte, 8, 8+len(js)+data.Len())
	binary.LittleEndian.PutUint64(out, uint64(len(js)))
	out = append(append(out, js...), data.Bytes()...)
	return fsutil.WriteFileAtomic(path, out)
}

func encodeST(v []float32, dtype string) []byte {
	switch dtype {
	case STF16:
		return encode(v, gguf.F16)
	case STBF16:
		out := make([]byte, 2*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint16(out[2*i:], gguf.Float32ToBFloat16(x))
		}
		return out
	}
	return encode(v, gguf.F32)
}

// ReadSafetensors reads every tensor of a safetensors file (F32, F16 or BF16) as
// float32, in name order, and its metadata. The file is checked as any user file: a
// bounded header, one entry per name, offsets inside the file that cover the data
// exactly once, and finite values.
func ReadSafetensors(path string) ([]STensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %w: %s", path, ErrSafetensors, fmt.Sprintf(format, args...))
	}
	size := st.Size()
	var lenBuf [8]byte
	if _, err := f.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, bad("%d bytes, too short for the 8-byte header length", size)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	switch {
	case n > stMaxHeader:
		return nil, nil, bad("header length %d exceeds the limit of %d bytes", n, stMaxHeader)
	case n > uint64(size-8):
		return nil, nil, bad("header length %d exceeds the %d bytes after it (truncated file?)", n, size-8)
	}
	js := make([]byte, n)
	if _, err := f.ReadAt(js, 8); err != nil {
		return nil, nil, bad("reading the header: %v", err)
	}
	entries, names, meta, err := parseSTHeader(js)
	if err != nil {
		return nil, nil, bad("%v", err)
	}
	dataStart, dataLen := int64(8+n), uint64(size)-8-n
	if err := checkSTLayout(entries, names, dataLen); err != nil {
		return nil, nil, bad("%v", err)
	}
	out := make([]STensor, 0, len(names))
	for _, name := range names {
		e := entries[name]
		raw := make([]byte, e.Offsets[1]-e.Offsets[0])
		if _, err := f.ReadAt(raw, dataStart+int64(e.Offsets[0])); err != nil && !(errors.Is(err, io.EOF) && len(raw) == 0) {
			return nil, nil, bad("reading tensor %s: %v", name, err)
		}
		vals, err := decodeST(raw, e.DType)
		if err != nil {
			return nil, nil, bad("tensor %s: %v", name, err)
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int(d)
		}
		out = append(out, STensor{Name: name, Shape: shape, Data: vals})
	}
	return out, meta, nil
}

// parseSTHeader decodes the JSON header, refusing a name given twice (which a plain
// decode into a map would silently resolve) and anything after the closing brace but
// the padding spaces. It returns the entries and their names, sorted.
func parseSTHeader(js []byte) (map[string]stEntry, []string, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, nil, fmt.Errorf("the header is not a JSON object")
	}
	entries := map[string]stEntry{}
	var meta map[string]string
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("header JSON: %v", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, nil, fmt.Errorf("header JSON: unexpected %v", tok)
		}
		if _, dup := entries[name]; dup || (name == "__metadata__" && seenMeta) {
			return nil, nil, nil, fmt.Errorf("the header names %q twice", name)
		}
		if name == "__metadata__" {
			seenMeta = true
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, nil, fmt.Errorf("__metadata__ is not a map of strings: %v", err)
			}
			continue
		}
		var e stEntry
		if err := dec.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("tensor %q: %v", name, err)
		}
		entries[name] = e
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, nil, fmt.Errorf("header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, nil, fmt.Errorf("the header has data after its JSON object")
	}
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	slices.Sort(names)
	return entries, names, meta, nil
}

// checkSTLayout checks each entry's dtype, shape and offsets, and that the tensors cover
// the data region exactly, without overlap or holes.
func checkSTLayout(entries map[string]stEntry, names []string, dataLen uint64) error {
	for _, name := range names {
		e := entries[name]
		size := stElemSize(e.DType)
		if size == 0 {
			return fmt.Errorf("tensor %s has dtype %q; calft reads F32, F16 and BF16", name, e.DType)
		}
		if e.Shape == nil || len(e.Shape) > stMaxDims || len(e.Offsets) != 2 {
			return fmt.Errorf("tensor %s: needs a shape of at most %d dimensions and two data_offsets, has shape %v and offsets %v",
				name, stMaxDims, e.Shape, e.Offsets)
		}
		bytes := uint64(size)
		for _, d := range e.Shape {
			if d < 0 || (d > 0 && bytes > dataLen/uint64(d)) {
				return fmt.Errorf("tensor %s: shape %v of %s does not fit the file's %d data bytes (truncated file?)", name, e.Shape, e.DType, dataLen)
			}
			bytes *= uint64(d)
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin > end || end > dataLen {
			return fmt.Errorf("tensor %s: data_offsets [%d, %d] lie outside the %d data bytes (truncated file?)", name, begin, end, dataLen)
		}
		if end-begin != bytes {
			return fmt.Errorf("tensor %s: shape %v of %s needs %d bytes, data_offsets [%d, %d] hold %d", name, e.Shape, e.DType, bytes, begin, end, end-begin)
		}
	}
	order := slices.Clone(names)
	sort.SliceStable(order, func(i, j int) bool {
		a, b := entries[order[i]].Offsets, entries[order[j]].Offsets
		return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1])
	})
	var at uint64
	for _, name := range order {
		o := entries[name].Offsets
		switch {
		case o[0] < at:
			return fmt.Errorf("tensor %s: data_offsets [%d, %d] overlap another tensor's data", name, o[0], o[1])
		case o[0] > at:
			return fmt.Errorf("tensor %s: data_offsets [%d, %d] leave bytes %d to %d unused", name, o[0], o[1], at, o[0])
		}
		at = o[1]
	}
	if at != dataLen {
		return fmt.Errorf("%d bytes after the last tensor's data", dataLen-at)
	}
	return nil
}

// decodeST converts raw little-endian values to float32, refusing NaN and infinities.
func decodeST(raw []byte, dtype string) ([]float32, error) {
	size := stElemSize(dtype)
	out := make([]float32, len(raw)/size)
	for i := range out {
		switch dtype {
		case STF32:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		case STF16:
			out[i] = gguf.Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		default:
			out[i] = gguf.BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		if v := float64(out[i]); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("element %d is %v; the values must be finite", i, out[i])
		}
	}
	return out, nil
}

// stDTypeName normalises a dtype a user gives (f32, fp16, bf16, …).
func stDTypeName(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "f32", "fp32", "float32":
		return STF32, true
	case "f16", "fp16", "float16":
		return STF16, true
	case "bf16", "bfloat16":
		return STBF16, true
	}
	return "", false
}
