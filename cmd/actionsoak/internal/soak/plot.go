package soak

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"
	"time"

	"github.com/actiond/actiond/cmd/internal/plot"
	"github.com/actiond/actiond/internal/stats"
)

// The plot: two panels over the run's time, actiond's RSS above, window
// latency (p50 and p99 per 10 s) below, the faults as ticks on both.
const (
	plotW, plotH = 960, 560
	marginL      = 70
	marginR      = 20
	panelH       = 210
	panel1Top    = 40
	panel2Top    = panel1Top + panelH + 60
	latBucket    = 10 * time.Second
)

var (
	colBG      = color.RGBA{255, 255, 255, 255}
	colAxis    = color.RGBA{60, 60, 60, 255}
	colGrid    = color.RGBA{225, 225, 225, 255}
	colRSS     = color.RGBA{31, 119, 180, 255}
	colP50     = color.RGBA{44, 160, 44, 255}
	colP99     = color.RGBA{214, 39, 40, 255}
	colFault   = color.RGBA{255, 127, 14, 255}
	colWarmUp  = color.RGBA{245, 245, 245, 255}
	colText    = color.RGBA{20, 20, 20, 255}
	faultTickH = 8
)

// writePlot draws r into a PNG file at path.
func writePlot(path string, r *Result) error {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), &image.Uniform{colBG}, image.Point{}, draw.Src)
	total := r.End.Sub(r.Start)
	if total <= 0 {
		total = time.Second
	}
	x0, x1 := marginL, plotW-marginR
	xOf := func(t time.Time) int {
		x := x0 + int(float64(x1-x0)*float64(t.Sub(r.Start))/float64(total))
		return min(max(x, x0), x1)
	}

	// RSS, MiB.
	var rssT []time.Time
	var rssV []float64
	for _, s := range r.Samples {
		if s.RSS > 0 && !s.At.Before(r.Start) && !s.At.After(r.End) {
			rssT, rssV = append(rssT, s.At), append(rssV, mib(s.RSS))
		}
	}
	lo, hi := span(rssV, 0.1)
	fillRect(img, x0, panel1Top, min(xOf(r.Start.Add(r.WarmUp)), x1), panel1Top+panelH, colWarmUp)
	yRSS := panelAxes(img, panel1Top, x0, x1, lo, hi, total)
	plot.Text(img, x0, panel1Top-22, "actiond RSS (MiB); grey: warm-up, left out of the drift; orange ticks: faults", colText, false)
	polyline(img, rssT, rssV, xOf, yRSS, colRSS)

	// Latency p50 and p99 per bucket, ms.
	var bt []time.Time
	var p50, p99 []float64
	var bucket []time.Duration
	flush := func(at time.Time) {
		if len(bucket) == 0 {
			return
		}
		slices.Sort(bucket)
		bt = append(bt, at)
		p50 = append(p50, float64(stats.Percentile(bucket, 0.5))/1e6)
		p99 = append(p99, float64(stats.Percentile(bucket, 0.99))/1e6)
		bucket = bucket[:0]
	}
	next := r.Start.Add(latBucket)
	for _, l := range r.Latency {
		for !l.At.Before(next) {
			flush(next.Add(-latBucket / 2))
			next = next.Add(latBucket)
		}
		bucket = append(bucket, l.D)
	}
	flush(next.Add(-latBucket / 2))
	_, lhi := span(append(slices.Clone(p99), p50...), 0.1)
	yLat := panelAxes(img, panel2Top, x0, x1, 0, lhi, total)
	plot.Text(img, x0, panel2Top-22, "window latency per 10 s (ms): ", colText, false)
	plot.Text(img, x0+30*7, panel2Top-22, "p50", colP50, false)
	plot.Text(img, x0+34*7, panel2Top-22, "p99", colP99, false)
	polyline(img, bt, p50, xOf, yLat, colP50)
	polyline(img, bt, p99, xOf, yLat, colP99)

	for _, f := range r.Faults {
		x := xOf(f.Start)
		for _, top := range []int{panel1Top, panel2Top} {
			plot.VLine(img, x, top+panelH-faultTickH, top+panelH, colFault)
			plot.VLine(img, x, top, top+faultTickH/2, colFault)
		}
	}
	plot.Text(img, x0, plotH-8, fmt.Sprintf("time since the start of the measured run (min); %d faults", len(r.Faults)), colText, false)

	return plot.WritePNG(path, img)
}

// span returns a range that holds v with a margin (a fraction of it).
func span(v []float64, margin float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 1
	}
	lo, hi = slices.Min(v), slices.Max(v)
	d := (hi - lo) * margin
	if d == 0 {
		d = math.Max(1, math.Abs(hi)*0.05)
	}
	return math.Max(0, lo-d), hi + d
}

// panelAxes draws a panel's frame, grid and tick labels, and returns the
// y of a value in it.
func panelAxes(img *image.RGBA, top, x0, x1 int, lo, hi float64, total time.Duration) func(float64) int {
	bottom := top + panelH
	y := func(v float64) int { return bottom - int(float64(panelH)*(v-lo)/(hi-lo)) }
	step := niceStep((hi - lo) / 5)
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		plot.HLine(img, x0, x1, y(v), colGrid)
		plot.Text(img, 4, y(v)+4, fmt.Sprintf("%7.4g", v), colText, false)
	}
	minutes := total.Minutes()
	tstep := niceStep(minutes / 10)
	for m := 0.0; m <= minutes+1e-9; m += tstep {
		x := x0 + int(float64(x1-x0)*m/minutes)
		plot.VLine(img, x, top, bottom, colGrid)
		plot.Text(img, x-10, bottom+14, fmt.Sprintf("%g", math.Round(m*100)/100), colText, false)
	}
	plot.HLine(img, x0, x1, bottom, colAxis)
	plot.HLine(img, x0, x1, top, colAxis)
	plot.VLine(img, x0, top, bottom, colAxis)
	plot.VLine(img, x1, top, bottom, colAxis)
	return y
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

func polyline(img *image.RGBA, ts []time.Time, vs []float64, xOf func(time.Time) int, yOf func(float64) int, c color.Color) {
	for i := 1; i < len(ts); i++ {
		plot.Line(img, xOf(ts[i-1]), yOf(vs[i-1]), xOf(ts[i]), yOf(vs[i]), c, false)
	}
	if len(ts) == 1 {
		fillRect(img, xOf(ts[0])-1, yOf(vs[0])-1, xOf(ts[0])+2, yOf(vs[0])+2, c)
	}
}

func fillRect(img *image.RGBA, xa, ya, xb, yb int, c color.Color) {
	draw.Draw(img, image.Rect(xa, ya, xb, yb), &image.Uniform{c}, image.Point{}, draw.Src)
}
