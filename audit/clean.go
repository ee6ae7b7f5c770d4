package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/calft/calft/internal/fsutil"
)

var bom = []byte("\xef\xbb\xbf")

// WriteClean writes the dataset at dataPath without the records whose 0-based index is
// in drop, to out, atomically and in the input's format: a JSON array stays an array
// (one record after another, each record's text exactly as it was), JSONL stays JSONL
// (the kept lines as they were). Records are counted as data.Load counts them; want is
// that count, checked so that a file changed since it was read is not half-filtered.
func WriteClean(dataPath, out string, drop map[int]bool, want int) (kept int, err error) {
	raw, err := os.ReadFile(dataPath)
	if err != nil {
		return 0, fmt.Errorf("dataset %w", err)
	}
	var buf bytes.Buffer
	if bytes.HasPrefix(raw, bom) {
		buf.Write(bom)
		raw = raw[len(bom):]
	}
	trimmed := bytes.TrimSpace(raw)
	var n int
	if len(trimmed) > 0 && trimmed[0] == '[' {
		n, kept, err = cleanArray(&buf, trimmed, drop)
	} else {
		n, kept, err = cleanLines(&buf, raw, drop)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", dataPath, err)
	}
	if n != want {
		return 0, fmt.Errorf("%s now holds %d records, %d when it was audited; audit it again", dataPath, n, want)
	}
	return kept, fsutil.WriteFileAtomic(out, buf.Bytes())
}

// cleanArray copies the kept elements of a JSON array, two-space indented as the usual
// pretty-printers write them; each element's own text is copied byte for byte.
func cleanArray(buf *bytes.Buffer, src []byte, drop map[int]bool) (n, kept int, err error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(src, &elems); err != nil {
		return 0, 0, err
	}
	buf.WriteString("[")
	for i, e := range elems {
		if drop[i] {
			continue
		}
		if kept > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  ")
		buf.Write(e)
		kept++
	}
	if kept > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("]\n")
	return len(elems), kept, nil
}

// cleanLines copies the kept records of a JSONL file, a line each; blank lines, which
// hold no record, are left out.
func cleanLines(buf *bytes.Buffer, src []byte, drop map[int]bool) (n, kept int, err error) {
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !drop[n] {
			buf.Write(line)
			buf.WriteByte('\n')
			kept++
		}
		n++
	}
	return n, kept, sc.Err()
}
