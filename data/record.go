// Package data reads the datasets people already have — LLaVA conversation JSON and the
// same records as JSONL — checks them, and turns each record into the rows the decoder
// takes: chat-templated tokens, image rows where the images go, and which tokens are the
// assistant's (the only ones trained on).
package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// ImagePlaceholder marks where an image goes in a human turn, as LLaVA datasets write it.
const ImagePlaceholder = "<image>"

// Turn is one message of a conversation.
type Turn struct {
	From  string `json:"from"`  // "human", "gpt" (also "user", "assistant", "system")
	Value string `json:"value"` // the text; human turns may hold <image>
}

// Record is one LLaVA-format sample.
type Record struct {
	ID            string   `json:"-"`
	Images        []string `json:"-"` // image paths as written in the file
	Conversations []Turn   `json:"conversations"`
	Line          int      `json:"-"` // 1-based record number in the file
}

// rawRecord accepts "image" as a string or a list, and an id of any JSON type.
type rawRecord struct {
	ID            json.RawMessage `json:"id"`
	Image         json.RawMessage `json:"image"`
	Conversations []Turn          `json:"conversations"`
}

func (r *rawRecord) record(n int) (Record, error) {
	rec := Record{Conversations: r.Conversations, Line: n}
	if len(r.ID) > 0 && string(r.ID) != "null" {
		var s string
		if json.Unmarshal(r.ID, &s) == nil {
			rec.ID = s
		} else {
			rec.ID = string(r.ID)
		}
	}
	if rec.ID == "" {
		rec.ID = fmt.Sprintf("#%d", n)
	}
	if len(r.Image) > 0 && string(r.Image) != "null" {
		var one string
		var many []string
		switch {
		case json.Unmarshal(r.Image, &one) == nil:
			rec.Images = []string{one}
		case json.Unmarshal(r.Image, &many) == nil:
			rec.Images = many
		default:
			return rec, fmt.Errorf("sample %s: \"image\" must be a path or a list of paths", rec.ID)
		}
	}
	return rec, nil
}

// Load reads a dataset: a JSON array of records, or JSONL with one record per line.
func Load(path string) ([]Record, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataset %w", err)
	}
	// A UTF-8 byte-order mark, as some editors write, is not part of the JSON.
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimSpace(raw)
	var recs []rawRecord
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(trimmed, &elems); err != nil {
			return nil, fmt.Errorf("%s: not a valid LLaVA JSON array: %v", path, err)
		}
		for i, e := range elems {
			r, err := decodeRecord(e)
			if err != nil {
				return nil, fmt.Errorf("%s: record %d: %v", path, i+1, err)
			}
			recs = append(recs, r)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 1<<20), 1<<30)
		line := 0
		for sc.Scan() {
			line++
			l := bytes.TrimSpace(sc.Bytes())
			if len(l) == 0 {
				continue
			}
			r, err := decodeRecord(l)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %v", path, line, err)
			}
			recs = append(recs, r)
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%s: the dataset has no records", path)
	}
	out := make([]Record, 0, len(recs))
	for i := range recs {
		r, err := recs[i].record(i + 1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// decodeRecord reads one record, with messages in the dataset's terms rather than Go's.
func decodeRecord(raw []byte) (rawRecord, error) {
	var r rawRecord
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return r, fmt.Errorf("a record must be a JSON object {\"id\", \"image\", \"conversations\"}, not %s", jsonKind(raw))
	}
	err := json.Unmarshal(raw, &r)
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		want := map[reflect.Kind]string{reflect.String: "text", reflect.Slice: "a list", reflect.Struct: "an object"}[te.Type.Kind()]
		if want == "" {
			want = te.Type.String()
		}
		return r, fmt.Errorf("%q must be %s, not a %s", te.Field, want, te.Value)
	case err != nil:
		return r, fmt.Errorf("not a valid JSON record: %v", err)
	}
	return r, nil
}

// jsonKind names the kind of a JSON value from its first byte.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// DefaultImageDir is the folder image paths are relative to when none is given: the
// data file's own folder.
func DefaultImageDir(dataPath string) string { return filepath.Dir(dataPath) }

// ImagePath resolves an image path of a record.
func ImagePath(imageDir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(imageDir, p)
}

// role maps a LLaVA speaker to a chat-template role.
func role(from string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(from)) {
	case "human", "user":
		return "user", true
	case "gpt", "assistant", "model":
		return "assistant", true
	case "system":
		return "system", true
	}
	return "", false
}

// Problem is something wrong with one sample.
type Problem struct {
	ID  string
	Msg string
}

func (p Problem) Error() string { return fmt.Sprintf("sample %s: %s", p.ID, p.Msg) }

// Check finds the problems that need no tokenizer: unknown speakers, no assistant turn,
// empty answers, placeholder/image count mismatch, missing or unreadable image files.
func Check(rec *Record, imageDir string) []Problem {
	var ps []Problem
	add := func(format string, args ...any) { ps = append(ps, Problem{rec.ID, fmt.Sprintf(format, args...)}) }
	if len(rec.Conversations) == 0 {
		add("no conversations")
		return ps
	}
	answers, markers := 0, 0
	for i, t := range rec.Conversations {
		r, ok := role(t.From)
		if !ok {
			add("turn %d is from %q; use human or gpt", i+1, t.From)
			continue
		}
		if strings.ContainsRune(t.Value, 0) {
			add("turn %d contains a NUL character (\\u0000), which would cut the text there; remove it", i+1)
		}
		if r == "assistant" {
			answers++
			if strings.TrimSpace(t.Value) == "" {
				add("turn %d: empty answer", i+1)
			}
			if strings.Contains(t.Value, ImagePlaceholder) {
				add("turn %d: %s inside an answer; images go in human turns", i+1, ImagePlaceholder)
			}
		} else {
			markers += strings.Count(t.Value, ImagePlaceholder)
		}
	}
	if answers == 0 {
		add("no gpt turn: nothing to learn from")
	}
	for _, im := range rec.Images {
		if strings.TrimSpace(im) == "" {
			add("an image path is empty; give the image's file, or drop \"image\" for a text-only sample")
			continue
		}
		p := ImagePath(imageDir, im)
		if st, err := os.Stat(p); err != nil {
			add("image %s: %v", p, err)
		} else if st.IsDir() {
			add("image %s is a folder", p)
		}
	}
	if markers != len(rec.Images) {
		add("%d %s placeholder(s) for %d image(s)", markers, ImagePlaceholder, len(rec.Images))
	}
	return ps
}
