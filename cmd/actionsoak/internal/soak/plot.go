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
	faultTickH   = 8
)

var colWarmUp = color.RGBA{245, 245, 245, 255}

// writePlot draws r into a PNG file at path.
func writePlot(path string, r *Result) error {
	img := plot.NewImage(plotW, plotH)
	total := r.End.Sub(r.Start)
	if total <= 0 {
		total = time.Second
	}
	minutes := func(t time.Time) float64 {
		return min(max(t.Sub(r.Start), 0), total).Minutes()
	}
	panel := func(top int, lo, hi float64) plot.Panel {
		return plot.Panel{Img: img, X0: marginL, Y0: top, W: plotW - marginR - marginL, H: panelH, XMax: total.Minutes(), YMin: lo, YMax: hi}
	}
	xticks := plot.Ticks(0, total.Minutes(), 10)

	// RSS, MiB.
	var rssT, rssV []float64
	for _, s := range r.Samples {
		if s.RSS > 0 && !s.At.Before(r.Start) && !s.At.After(r.End) {
			rssT, rssV = append(rssT, minutes(s.At)), append(rssV, mib(s.RSS))
		}
	}
	lo, hi := span(rssV, 0.1)
	rss := panel(panel1Top, lo, hi)
	draw.Draw(img, image.Rect(rss.X0, rss.Y0, rss.X(minutes(r.Start.Add(r.WarmUp))), rss.Y0+rss.H), &image.Uniform{colWarmUp}, image.Point{}, draw.Src)
	rss.Axes(xticks, plot.Ticks(lo, hi, 5), "", "")
	plot.Text(img, marginL, panel1Top-22, "actiond RSS (MiB); grey: warm-up, left out of the drift; orange ticks: faults", plot.Ink, false)
	rss.Draw(plot.Series{Color: plot.Blue, X: rssT, Y: rssV})

	// Latency p50 and p99 per bucket, ms.
	var bt, p50, p99 []float64
	var bucket []time.Duration
	flush := func(at time.Time) {
		if len(bucket) == 0 {
			return
		}
		slices.Sort(bucket)
		bt = append(bt, minutes(at))
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
	lat := panel(panel2Top, 0, lhi)
	lat.Axes(xticks, plot.Ticks(0, lhi, 5), "", "")
	plot.Text(img, marginL, panel2Top-22, "window latency per 10 s (ms): ", plot.Ink, false)
	plot.Text(img, marginL+30*7, panel2Top-22, "p50", plot.Green, false)
	plot.Text(img, marginL+34*7, panel2Top-22, "p99", plot.Red, false)
	lat.Draw(plot.Series{Color: plot.Green, X: bt, Y: p50}, plot.Series{Color: plot.Red, X: bt, Y: p99})

	for _, f := range r.Faults {
		for _, p := range []plot.Panel{rss, lat} {
			x := p.X(minutes(f.Start))
			plot.VLine(img, x, p.Y0+p.H-faultTickH, p.Y0+p.H, plot.Orange)
			plot.VLine(img, x, p.Y0, p.Y0+faultTickH/2, plot.Orange)
		}
	}
	plot.Text(img, marginL, plotH-8, fmt.Sprintf("time since the start of the measured run (min); %d faults", len(r.Faults)), plot.Ink, false)

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
