// Package progress shows how far long work has got: a live bar when the output is a
// terminal, and otherwise (a log file, CI, a job scheduler) plain lines at most every few
// seconds, with no carriage returns to fill the log.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Interval is the least time between two plain lines.
var Interval = 5 * time.Second

// Reporter reports the progress of one piece of work of a known size.
type Reporter struct {
	w       io.Writer
	what    string
	total   int
	done    int
	status  string
	began   time.Time
	printed time.Time
	bar     *progressbar.ProgressBar
}

// New reports on w (nil: nowhere) the progress of total units of work called what.
func New(w io.Writer, total int, what string) *Reporter {
	r := &Reporter{w: w, what: what, total: total, began: time.Now()}
	if w != nil && isTerminal(w) {
		r.bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(24), progressbar.OptionClearOnFinish(),
			progressbar.OptionSetDescription(what))
	}
	return r
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Set records that done units are finished, with a short status ("loss 1.23 | 456
// tok/s", or "" for none).
func (r *Reporter) Set(done int, status string) {
	if r == nil || r.w == nil {
		return
	}
	r.done, r.status = done, status
	if r.bar != nil {
		if status != "" {
			r.bar.Describe(r.what + " " + status)
		}
		_ = r.bar.Set(done)
		return
	}
	if now := time.Now(); now.Sub(r.printed) >= Interval || done == r.total {
		r.printed = now
		r.line()
	}
}

// Add records n more finished units.
func (r *Reporter) Add(n int, status string) {
	if r != nil {
		r.Set(r.done+n, status)
	}
}

// line prints one plain progress line: what, count, status, rate and time left.
func (r *Reporter) line() {
	elapsed := time.Since(r.began)
	s := fmt.Sprintf("%s: %d/%d", r.what, r.done, r.total)
	if r.status != "" {
		s += ", " + r.status
	}
	if r.done > 0 && r.done < r.total {
		left := time.Duration(float64(elapsed) / float64(r.done) * float64(r.total-r.done))
		s += fmt.Sprintf(", ETA %s", left.Round(time.Second))
	}
	fmt.Fprintf(r.w, "%s (%s)\n", s, elapsed.Round(time.Second))
}

// Finish ends the report: the bar is cleared, a plain report gets its last line.
func (r *Reporter) Finish() {
	if r == nil || r.w == nil {
		return
	}
	if r.bar != nil {
		_ = r.bar.Finish()
		return
	}
	if r.done != r.total || r.printed.IsZero() {
		r.line()
	}
}
