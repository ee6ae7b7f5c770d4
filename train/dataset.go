package train

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"unicode"

	"github.com/calft/calft/data"
	"github.com/calft/calft/llava"
)

// Dataset is a run's built samples and what was left out.
type Dataset struct {
	Train, Val []*data.Sample
	Skipped    []error
}

// buildAll builds records into samples; with onError "fail" the first problem stops,
// with "skip" problems are collected and the sample left out.
func (e *Env) buildAll(ctx context.Context, recs []data.Record, onError string) ([]*data.Sample, []error, error) {
	var out []*data.Sample
	var skipped []error
	for i := range recs {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("%w while reading the data (%d of %d samples built); nothing was written", ErrInterrupted, i, len(recs))
		}
		s, err := e.Builder.Build(&recs[i])
		if err != nil {
			if onError == "fail" {
				return nil, nil, fmt.Errorf("%w (use --on-error skip to leave such samples out)", err)
			}
			skipped = append(skipped, err)
			continue
		}
		out = append(out, s)
	}
	return out, skipped, nil
}

// LoadDataset reads and builds the training (and validation) data of a run.
func (e *Env) LoadDataset(ctx context.Context, c *Config) (*Dataset, error) {
	recs, err := data.Load(c.Data)
	if err != nil {
		return nil, err
	}
	ds := &Dataset{}
	all, skipped, err := e.buildAll(ctx, recs, c.OnError)
	if err != nil {
		return nil, err
	}
	ds.Skipped = skipped
	switch {
	case c.ValData != "":
		vrecs, err := data.Load(c.ValData)
		if err != nil {
			return nil, err
		}
		// Without --image-dir, each data file's images are relative to its own folder.
		if c.ImageDir == "" {
			saved := e.Builder.ImageDir
			e.Builder.ImageDir = data.DefaultImageDir(c.ValData)
			defer func() { e.Builder.ImageDir = saved }()
		}
		val, vskipped, err := e.buildAll(ctx, vrecs, c.OnError)
		if err != nil {
			return nil, err
		}
		ds.Train, ds.Val = all, val
		ds.Skipped = append(ds.Skipped, vskipped...)
	case c.ValSplit > 0:
		// A fixed shuffle of the seed chooses the held-out samples.
		idx := rand.New(rand.NewPCG(c.Seed, 0x5e11)).Perm(len(all))
		nVal := max(1, int(float64(len(all))*c.ValSplit))
		for k, i := range idx {
			if k < nVal {
				ds.Val = append(ds.Val, all[i])
			} else {
				ds.Train = append(ds.Train, all[i])
			}
		}
	default:
		ds.Train = all
	}
	if len(ds.Train) == 0 {
		var b strings.Builder
		for _, e := range ds.Skipped {
			fmt.Fprintf(&b, "\n  %v", e)
		}
		return nil, fmt.Errorf("%s: no usable training sample (%d skipped)%s", c.Data, len(ds.Skipped), b.String())
	}
	return ds, nil
}

// digest identifies the built training and validation samples (ids, rows, targets).
func (ds *Dataset) digest() string {
	h := sha256.New()
	for _, set := range [][]*data.Sample{ds.Train, ds.Val} {
		for _, s := range set {
			h.Write([]byte(s.ID))
			binary.Write(h, binary.LittleEndian, s.Rows)
			binary.Write(h, binary.LittleEndian, s.Target)
			for _, p := range s.Images {
				h.Write([]byte(p))
			}
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// order is the sample order of an epoch: a permutation fixed by the seed and the epoch,
// so a resumed run sees exactly the samples an uninterrupted one would.
func order(seed uint64, epoch, n int) []int {
	return rand.New(rand.NewPCG(seed, uint64(epoch)+1)).Perm(n)
}

// Inspect renders a sample for a person: text with the supervised tokens in [[ ]], image
// rows as a block, and counts.
func Inspect(w io.Writer, e *Env, s *data.Sample) error {
	fmt.Fprintf(w, "sample %s: %d rows, %d supervised tokens, %d image(s)\n", s.ID, len(s.Rows), s.NTargets(), len(s.Images))
	var b strings.Builder
	open := false
	for i := 0; i < len(s.Rows); i++ {
		if s.Rows[i] == llava.ImageRow {
			j := i
			for j < len(s.Rows) && s.Rows[j] == llava.ImageRow {
				j++
			}
			fmt.Fprintf(&b, "<image: rows %d-%d>", i, j-1)
			i = j - 1
			continue
		}
		if s.Target[i] && !open {
			b.WriteString("[[")
			open = true
		} else if !s.Target[i] && open {
			b.WriteString("]]")
			open = false
		}
		p, err := e.Vocab.TokenToPiece(s.Rows[i], true)
		if err != nil {
			return err
		}
		b.WriteString(printable(p))
	}
	if open {
		b.WriteString("]]")
	}
	fmt.Fprintf(w, "%s\n", b.String())
	for i, p := range s.Images {
		fmt.Fprintf(w, "  image %d: %s\n", i, printable(p))
	}
	return nil
}

// printable escapes what a terminal would act on instead of showing: control characters
// (escape sequences) other than newlines and tabs, and the bidirectional-text controls
// that reorder what follows them.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
