package bench

import (
	"fmt"
	"image/color"

	"github.com/actiond/actiond/cmd/internal/plot"
)

// The live plot: four panels against the number of cameras: latency (p50,
// p99, the 1 s goal) and CPU (actiond, the simulator, the machine's cores)
// above, the effective stride (the stride actually served) and RSS per
// stream (over the base, and marginal) below. Drawn with the standard library and
// basicfont so that make bench needs no plotting tool.

// writeLivePlot draws the points into path (PNG).
func writeLivePlot(path string, pts []livePoint, baseRSS int64) error {
	const W, H = 1000, 880
	img := plot.NewImage(W, H)
	plot.Text(img, W/2, 18, "actiond live capacity: 720p25 H.264 cameras, window 10 s, stride 1.25 s, untrained PP-TSMv2", plot.Ink, true)

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
	xticks := append([]float64{0}, ns...)
	panel := func(x0, y0 int, ymax float64, ylabel string) plot.Panel {
		p := plot.Panel{Img: img, X0: x0, Y0: y0, W: 370, H: 330, XMax: xmax, YMax: plot.NiceCeil(ymax)}
		p.Axes(xticks, plot.Ticks(0, p.YMax, 5), "cameras (N)", ylabel)
		return p
	}
	goal := func(name string, y float64) plot.Series {
		return plot.Series{Name: name, Color: plot.Grey, Dashed: true, X: []float64{0, xmax}, Y: []float64{y, y}}
	}
	measured := func(name string, c color.RGBA, xs, ys []float64) plot.Series {
		return plot.Series{Name: name, Color: c, Dots: true, X: xs, Y: ys}
	}
	show := func(p plot.Panel, ss ...plot.Series) {
		p.Draw(ss...)
		p.Legend(ss...)
	}
	show(panel(70, 50, maxLat, "latency, s (window complete -> event received)"),
		goal("goal: p99 <= 1 s", 1),
		measured("p50", plot.Blue, ns, p50),
		measured("p99", plot.Red, ns, p99))
	show(panel(580, 50, maxCPU, "CPU, cores"),
		goal("machine's cores (2)", 2),
		measured("actiond", plot.Green, ns, cpu),
		measured("simulator + subscriber", plot.Orange, ns, bench),
		measured("whole machine (all jobs)", plot.Grey, ns, mach))
	show(panel(70, 470, maxStride, "effective stride, s (the stride actually served)"),
		goal(fmt.Sprintf("stride asked (%.2f s)", liveStride.Seconds()), liveStride.Seconds()),
		measured("effective stride (mean over streams)", plot.Blue, strideNs, stride))
	show(panel(580, 470, maxRSS, "RSS per stream, MiB"),
		goal("goal: marginal <= 40 MiB", 40),
		measured("(RSS - base) / N", plot.Green, ns, rss),
		measured("marginal (since the previous N)", plot.Red, margNs, marg))
	return plot.WritePNG(path, img)
}
