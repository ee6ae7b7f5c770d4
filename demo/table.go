package demo

import (
	"fmt"
	"strings"
)

// measures are the table's columns, in order.
var measures = []struct {
	name string
	f    func(Result) float64
	pct  bool
}{
	{"colour acc.", func(r Result) float64 { return r.ColorAcc }, true},
	{"shape acc.", func(r Result) float64 { return r.ShapeAcc }, true},
	{"position acc.", func(r Result) float64 { return r.PosAcc }, true},
	{"P(true colour)", func(r Result) float64 { return r.ColorProb }, false},
	{"held-out loss", func(r Result) float64 { return r.ValLoss }, false},
}

// Table renders mean ± std over seeds per objective as a Markdown table.
func (rep *Report) Table() string {
	var b strings.Builder
	b.WriteString("| objective |")
	for _, m := range measures {
		b.WriteString(" " + m.name + " |")
	}
	b.WriteString("\n|---|")
	for range measures {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, obj := range rep.objectives() {
		fmt.Fprintf(&b, "| %s |", obj)
		for _, m := range measures {
			mean, std := meanStd(rep.Results, obj, m.f)
			if m.pct {
				fmt.Fprintf(&b, " %.1f%% ± %.1f |", 100*mean, 100*std)
			} else {
				fmt.Fprintf(&b, " %.3f ± %.3f |", mean, std)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// objectives are the objectives the results hold, in the demo's order: ce, cal, and ce on
// the audit's cleaned data.
func (rep *Report) objectives() []string {
	var out []string
	for _, obj := range []string{"ce", "cal", "ce-clean"} {
		for _, r := range rep.Results {
			if r.Objective == obj {
				out = append(out, obj)
				break
			}
		}
	}
	return out
}
