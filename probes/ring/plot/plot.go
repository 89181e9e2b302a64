// Package plot draws `ring sweep` results as an SVG or PNG chart (gonum.org/v1/plot).
// It writes to an io.Writer; the command layer creates the file.
package plot

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/ring"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Format is an output image format.
type Format string

// The formats --plot accepts, chosen by the file's extension.
const (
	SVG Format = "svg"
	PNG Format = "png"
)

// Chart size: 8 x 5 inches, 768 x 480 pixels as PNG, with a margin inside.
const (
	width  = 8 * vg.Inch
	height = 5 * vg.Inch
	margin = 3 * vg.Millimeter
)

// FormatForPath picks the format from a file name's extension (.svg or .png, any case).
func FormatForPath(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		return SVG, nil
	case ".png":
		return PNG, nil
	}
	return "", errs.Usage("ring: --plot %q: the file name must end in .svg or .png", path)
}

var (
	maxColor    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	minColor    = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	targetColor = color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
	bestColor   = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
)

// WriteSweep draws max/mean and min/mean against V (log scale), the target as a dashed
// line and the smallest V that meets it as a vertical line, and writes the chart.
func WriteSweep(w io.Writer, f Format, r ring.SweepResult) error {
	if f != SVG && f != PNG {
		return errs.Usage("ring: unknown plot format %q (use svg or png)", f)
	}
	if len(r.Points) == 0 {
		return errs.Usage("ring: the sweep has no points to plot")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s imbalance vs virtual nodes (%d nodes, %s keys, %s)", r.Algo, r.Nodes, thousands(r.Keys), r.Hash)
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = "virtual nodes per node (V)"
	p.Y.Label.Text = "load / mean"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.TickerFunc(ratioTicks)
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	maxXY := make(plotter.XYs, len(r.Points))
	minXY := make(plotter.XYs, len(r.Points))
	lo, hi := math.Inf(1), math.Inf(-1)
	ylo, yhi := r.Target, r.Target
	for i, pt := range sortedByV(r.Points) {
		v := float64(pt.Vnodes)
		maxXY[i] = plotter.XY{X: v, Y: pt.MaxOverMean}
		minXY[i] = plotter.XY{X: v, Y: pt.MinOverMean}
		lo, hi = math.Min(lo, v), math.Max(hi, v)
		ylo, yhi = math.Min(ylo, pt.MinOverMean), math.Max(yhi, pt.MaxOverMean)
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	pad := (yhi - ylo) * 0.08
	top := yhi + pad                                   // the data's headroom
	p.Y.Min, p.Y.Max = math.Max(0, ylo-pad), yhi+5*pad // and above it, room for the legend

	if err := addSeries(p, "max / mean", maxXY, maxColor, draw.TriangleGlyph{}); err != nil {
		return err
	}
	if err := addSeries(p, "min / mean", minXY, minColor, draw.CircleGlyph{}); err != nil {
		return err
	}
	target, err := plotter.NewLine(plotter.XYs{{X: p.X.Min, Y: r.Target}, {X: p.X.Max, Y: r.Target}})
	if err != nil {
		return err
	}
	target.Color = targetColor
	target.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	p.Add(target)
	p.Legend.Add(fmt.Sprintf("target max/mean %.3g", r.Target), target)
	if r.SmallestVnodes != nil {
		v := float64(*r.SmallestVnodes)
		// It stops below the legend, so it never runs through the legend's text.
		best, err := plotter.NewLine(plotter.XYs{{X: v, Y: p.Y.Min}, {X: v, Y: top}})
		if err != nil {
			return err
		}
		best.Color = bestColor
		best.Dashes = []vg.Length{vg.Points(2), vg.Points(3)}
		p.Add(best)
		p.Legend.Add(fmt.Sprintf("smallest V meeting it: %d", *r.SmallestVnodes), best)
	}

	c, err := draw.NewFormattedCanvas(width, height, string(f))
	if err != nil {
		return err
	}
	// A margin all round: gonum draws the title flush with the top edge.
	p.Draw(draw.Crop(draw.New(c), margin, -margin, margin, -margin))
	if _, err := c.WriteTo(w); err != nil {
		return errs.New(errs.KindRuntime, "ring: cannot write the plot: %v", err).Wrap(err)
	}
	return nil
}

func addSeries(p *plot.Plot, name string, xys plotter.XYs, c color.Color, g draw.GlyphDrawer) error {
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	line.Color = c
	line.Width = vg.Points(1.5)
	points.Color = c
	points.Shape = g
	p.Add(line, points)
	p.Legend.Add(name, line, points)
	return nil
}

func sortedByV(pts []ring.SweepPoint) []ring.SweepPoint {
	out := append([]ring.SweepPoint(nil), pts...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Vnodes < out[j-1].Vnodes; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// ratioTicks labels load/mean at the finest step of 0.02, 0.05, 0.1, 0.2, ... that gives
// at most 12 labelled ticks (0.1 or 0.2 for the usual 0.5 .. 1.6 range), with unlabelled
// ticks halfway, so values can be read off the chart.
func ratioTicks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, s := range []float64{0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5} {
		if (hi-lo)/s <= 12 {
			step = s
			break
		}
	}
	var ticks []plot.Tick
	const eps = 1e-9 // 23 * 0.05 is 1.1500000000000001
	for i := math.Ceil(lo/step*2-eps) / 2; i*step <= hi+eps; i += 0.5 {
		v := i * step
		if v == 0 {
			v = 0 // not -0
		}
		t := plot.Tick{Value: v}
		if i == math.Trunc(i) {
			t.Label = strconv.FormatFloat(v, 'f', decimals(step), 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// decimals is how many decimals label a multiple of step.
func decimals(step float64) int {
	d := 0
	for step != math.Trunc(step) && d < 6 {
		step *= 10
		d++
	}
	return d
}

// thousands formats 1000000 as 1,000,000.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
