package demo

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var objColor = map[string]color.RGBA{"ce": {40, 90, 200, 255}, "cal": {220, 70, 30, 255}}

// writePlot draws the mean training-loss curve per objective (left) and each seed's
// probability of the true colour and held-out loss (right).
func writePlot(rep *Report, path string) error {
	curves := plot.New()
	curves.Title.Text = "training loss, each objective's own (mean over seeds)"
	curves.X.Label.Text = "step"
	curves.Y.Label.Text = "loss"
	for _, obj := range []string{"ce", "cal"} {
		var mean []float64
		n := 0
		for _, r := range rep.Results {
			if r.Objective != obj {
				continue
			}
			if mean == nil {
				mean = make([]float64, len(r.Curve))
			}
			for i := range mean {
				if i < len(r.Curve) {
					mean[i] += r.Curve[i]
				}
			}
			n++
		}
		pts := make(plotter.XYs, len(mean))
		for i := range mean {
			pts[i] = plotter.XY{X: float64(i + 1), Y: mean[i] / float64(n)}
		}
		l, err := plotter.NewLine(smooth(pts, 9))
		if err != nil {
			return err
		}
		l.Color = objColor[obj]
		curves.Add(l)
		curves.Legend.Add(obj, l)
	}
	warm := plotter.XYs{{X: float64(rep.Opt.WarmSteps), Y: 0}, {X: float64(rep.Opt.WarmSteps), Y: maxY(rep)}}
	if wl, err := plotter.NewLine(warm); err == nil {
		wl.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		wl.Color = color.Gray{Y: 120}
		curves.Add(wl)
		curves.Legend.Add("end of shared ce warm-up", wl)
	}
	curves.Legend.Top = true

	held := plot.New()
	held.Title.Text = "held-out, per seed"
	held.X.Label.Text = "held-out loss (lower is better)"
	held.Y.Label.Text = "P(true colour) (higher is better)"
	for _, obj := range []string{"ce", "cal"} {
		var pts plotter.XYs
		for _, r := range rep.Results {
			if r.Objective == obj {
				pts = append(pts, plotter.XY{X: r.ValLoss, Y: r.ColorProb})
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.Color = objColor[obj]
		sc.Radius = vg.Points(4)
		held.Add(sc)
		held.Legend.Add(obj, sc)
	}
	held.Legend.Top = true

	acc, err := accuracyBars(rep)
	if err != nil {
		return err
	}

	const w, h = 16 * vg.Inch, 4.5 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Millimeter * 6, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{curves, acc, held}}, tiles, dc)
	curves.Draw(canvases[0][0])
	acc.Draw(canvases[0][1])
	held.Draw(canvases[0][2])
	return savePNG(img, path)
}

func maxY(rep *Report) float64 {
	m := 0.0
	for _, r := range rep.Results {
		for _, y := range r.Curve {
			m = max(m, y)
		}
	}
	return m
}

// smooth is a centred moving average, to make noisy per-step losses readable.
func smooth(pts plotter.XYs, k int) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i := range pts {
		var s float64
		n := 0
		for j := i - k/2; j <= i+k/2; j++ {
			if j >= 0 && j < len(pts) {
				s += pts[j].Y
				n++
			}
		}
		out[i] = plotter.XY{X: pts[i].X, Y: s / float64(n)}
	}
	return out
}

// accuracyBars shows the mean greedy accuracy of each image-determined word per objective.
func accuracyBars(rep *Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "held-out greedy accuracy (mean over seeds)"
	p.Y.Label.Text = "accuracy"
	p.Y.Min, p.Y.Max = 0, 1.2 // room above the bars for the legend
	kinds := measures[:3]
	w := vg.Points(18)
	for i, obj := range []string{"ce", "cal"} {
		var vals plotter.Values
		for _, m := range kinds {
			mean, _ := meanStd(rep.Results, obj, m.f)
			vals = append(vals, mean)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, err
		}
		bars.Color = objColor[obj]
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(2*i-1) * w / 2
		p.Add(bars)
		p.Legend.Add(obj, bars)
	}
	names := make([]string, len(kinds))
	for i, m := range kinds {
		names[i] = m.name
	}
	p.NominalX(names...)
	p.Legend.Top = true
	return p, nil
}
