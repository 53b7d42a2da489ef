package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"github.com/actiond/actiond/cmd/internal/plot"
)

// The live plot: four panels against the number of cameras: latency (p50,
// p99, the 1 s goal) and CPU (actiond, the simulator, the machine's cores)
// above, the effective stride (the stride actually served) and RSS per
// stream (over the base, and marginal) below. Drawn with the standard library and
// basicfont so that make bench needs no plotting tool.

var (
	colBlue   = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	colRed    = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	colGreen  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	colOrange = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	colGrey   = color.RGBA{0x88, 0x88, 0x88, 0xff}
	colGrid   = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	colBlack  = color.RGBA{0x20, 0x20, 0x20, 0xff}
)

type series struct {
	name   string
	col    color.RGBA
	dashed bool
	xs, ys []float64
}

type panel struct {
	img                    *image.RGBA
	x0, y0, w, h           int // plot area, pixels
	xmin, xmax, ymin, ymax float64
}

func (p panel) px(x, y float64) (int, int) {
	fx := float64(p.x0) + (x-p.xmin)/(p.xmax-p.xmin)*float64(p.w)
	fy := float64(p.y0+p.h) - (y-p.ymin)/(p.ymax-p.ymin)*float64(p.h)
	return int(math.Round(fx)), int(math.Round(fy))
}

// writeLivePlot draws the points into path (PNG).
func writeLivePlot(path string, pts []livePoint, baseRSS int64) error {
	const W, H = 1000, 880
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	plot.Text(img, W/2, 18, "actiond live capacity: 720p25 H.264 cameras, window 10 s, stride 1.25 s, untrained PP-TSMv2", colBlack, true)

	var ns, p50, p99, cpu, bench, mach, strideNs, stride, rss, margNs, marg []float64
	maxN, maxLat, maxCPU, maxStride, maxRSS := 1.0, 1.2, 2.2, liveStride.Seconds()*1.2, 48.0
	for i, pt := range pts {
		n := float64(pt.N)
		ns = append(ns, n)
		p50 = append(p50, pt.P50.Seconds())
		p99 = append(p99, pt.P99.Seconds())
		cpu = append(cpu, pt.CPU)
		bench = append(bench, pt.BenchCPU)
		mach = append(mach, pt.MachineCPU)
		maxN = max(maxN, n)
		maxLat = max(maxLat, pt.P99.Seconds()*1.1)
		maxCPU = max(maxCPU, pt.MachineCPU*1.1)
		if pt.EffStride > 0 {
			strideNs = append(strideNs, n)
			stride = append(stride, pt.EffStride.Seconds())
			maxStride = max(maxStride, pt.EffStride.Seconds()*1.1)
		}
		rss = append(rss, pt.perStream(baseRSS))
		maxRSS = max(maxRSS, pt.perStream(baseRSS)*1.1)
		if i > 0 && pt.N > pts[i-1].N {
			m := mib(pt.RSS-pts[i-1].RSS) / float64(pt.N-pts[i-1].N)
			margNs = append(margNs, n)
			marg = append(marg, max(0, m))
			maxRSS = max(maxRSS, m*1.1)
		}
	}
	// Ticks on the measured camera counts; a little room after the last.
	xmax := maxN + max(1, maxN/16)
	left := panel{img: img, x0: 70, y0: 50, w: 370, h: 330, xmin: 0, xmax: xmax, ymin: 0, ymax: niceCeil(maxLat)}
	right := panel{img: img, x0: 580, y0: 50, w: 370, h: 330, xmin: 0, xmax: xmax, ymin: 0, ymax: niceCeil(maxCPU)}
	left.axes(ns, "cameras (N)", "latency, s (window complete -> event received)")
	right.axes(ns, "cameras (N)", "CPU, cores")
	left.draw([]series{
		{name: "goal: p99 <= 1 s", col: colGrey, dashed: true, xs: []float64{0, xmax}, ys: []float64{1, 1}},
		{name: "p50", col: colBlue, xs: ns, ys: p50},
		{name: "p99", col: colRed, xs: ns, ys: p99},
	})
	right.draw([]series{
		{name: "machine's cores (2)", col: colGrey, dashed: true, xs: []float64{0, xmax}, ys: []float64{2, 2}},
		{name: "actiond", col: colGreen, xs: ns, ys: cpu},
		{name: "simulator + subscriber", col: colOrange, xs: ns, ys: bench},
		{name: "whole machine (all jobs)", col: colGrey, xs: ns, ys: mach},
	})
	bl := panel{img: img, x0: 70, y0: 470, w: 370, h: 330, xmin: 0, xmax: xmax, ymin: 0, ymax: niceCeil(maxStride)}
	br := panel{img: img, x0: 580, y0: 470, w: 370, h: 330, xmin: 0, xmax: xmax, ymin: 0, ymax: niceCeil(maxRSS)}
	bl.axes(ns, "cameras (N)", "effective stride, s (the stride actually served)")
	br.axes(ns, "cameras (N)", "RSS per stream, MiB")
	bl.draw([]series{
		{name: fmt.Sprintf("stride asked (%.2f s)", liveStride.Seconds()), col: colGrey, dashed: true, xs: []float64{0, xmax}, ys: []float64{liveStride.Seconds(), liveStride.Seconds()}},
		{name: "effective stride (mean over streams)", col: colBlue, xs: strideNs, ys: stride},
	})
	br.draw([]series{
		{name: "goal: marginal <= 40 MiB", col: colGrey, dashed: true, xs: []float64{0, xmax}, ys: []float64{40, 40}},
		{name: "(RSS - base) / N", col: colGreen, xs: ns, ys: rss},
		{name: "marginal (since the previous N)", col: colRed, xs: margNs, ys: marg},
	})
	return plot.WritePNG(path, img)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (or a multiple of
// 2, 4 for small counts), so that ticks fall on round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if m*e >= v-1e-9 {
			return m * e
		}
	}
	return 10 * e
}

// ticks returns about five round values from 0 to hi.
func ticks(hi float64) []float64 {
	raw := hi / 5
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	step := e
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*e >= raw-1e-9 {
			step = m * e
			break
		}
	}
	var out []float64
	for v := 0.0; v <= hi+1e-9; v += step {
		out = append(out, v)
	}
	return out
}

func fmtTick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func (p panel) axes(xticks []float64, xlabel, ylabel string) {
	for _, t := range ticks(p.ymax) {
		_, y := p.px(0, t)
		plot.HLine(p.img, p.x0, p.x0+p.w, y, colGrid)
		plot.HLine(p.img, p.x0-5, p.x0, y, colBlack)
		plot.Text(p.img, p.x0-8-plot.TextWidth(fmtTick(t)), y+4, fmtTick(t), colBlack, false)
	}
	for _, t := range append([]float64{0}, xticks...) {
		x, _ := p.px(t, 0)
		plot.VLine(p.img, x, p.y0, p.y0+p.h, colGrid)
		plot.VLine(p.img, x, p.y0+p.h, p.y0+p.h+5, colBlack)
		plot.Text(p.img, x, p.y0+p.h+18, fmtTick(t), colBlack, true)
	}
	plot.HLine(p.img, p.x0, p.x0+p.w, p.y0+p.h, colBlack)
	plot.VLine(p.img, p.x0, p.y0, p.y0+p.h, colBlack)
	plot.Text(p.img, p.x0+p.w/2, p.y0+p.h+36, xlabel, colBlack, true)
	plot.Text(p.img, p.x0-50, p.y0-10, ylabel, colBlack, false)
}

// draw plots the series (lines, with a dot per point) and a legend in the
// panel's top-left corner.
func (p panel) draw(ss []series) {
	for _, s := range ss {
		for i := 1; i < len(s.xs); i++ {
			x0, y0 := p.px(s.xs[i-1], s.ys[i-1])
			x1, y1 := p.px(s.xs[i], s.ys[i])
			plot.Line(p.img, x0, y0, x1, y1, s.col, s.dashed)
		}
		if !s.dashed {
			for i := range s.xs {
				x, y := p.px(s.xs[i], s.ys[i])
				dot(p.img, x, y, s.col)
			}
		}
	}
	lx, ly := p.x0+12, p.y0+14
	for i, s := range ss {
		y := ly + i*16
		plot.Line(p.img, lx, y-4, lx+24, y-4, s.col, s.dashed)
		plot.Text(p.img, lx+30, y, s.name, colBlack, false)
	}
}

func dot(img *image.RGBA, x, y int, c color.RGBA) {
	for dy := -3; dy <= 3; dy++ {
		for dx := -3; dx <= 3; dx++ {
			if dx*dx+dy*dy <= 10 && (image.Point{x + dx, y + dy}).In(img.Rect) {
				img.SetRGBA(x+dx, y+dy, c)
			}
		}
	}
}
