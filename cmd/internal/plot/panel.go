package plot

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"
	"strings"
)

// The colours of every plot: the series' (matplotlib's first four), and
// the ink of text and axes.
var (
	Blue   = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	Red    = color.RGBA{0xd6, 0x27, 0x28, 0xff}
	Green  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	Orange = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	Grey   = color.RGBA{0x88, 0x88, 0x88, 0xff} // goals and bounds
	Grid   = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	Ink    = color.RGBA{0x20, 0x20, 0x20, 0xff} // text and axes
)

// Panel is one plot on an image: its plot area in pixels and the data
// ranges that fill it.
type Panel struct {
	Img                    *image.RGBA
	X0, Y0, W, H           int // the plot area: top-left corner and size
	XMin, XMax, YMin, YMax float64
}

// X is the pixel column of the data value v.
func (p Panel) X(v float64) int {
	return p.X0 + int(math.Round((v-p.XMin)/span(p.XMin, p.XMax)*float64(p.W)))
}

// Y is the pixel row of the data value v.
func (p Panel) Y(v float64) int {
	return p.Y0 + p.H - int(math.Round((v-p.YMin)/span(p.YMin, p.YMax)*float64(p.H)))
}

func span(lo, hi float64) float64 {
	if hi > lo {
		return hi - lo
	}
	return 1
}

// Axes draws the panel's grid lines, tick marks and tick labels at xticks
// and yticks, its left and bottom axis lines, xlabel centred below it and
// ylabel above its top-left corner ("" for none).
func (p Panel) Axes(xticks, yticks []float64, xlabel, ylabel string) {
	bottom := p.Y0 + p.H
	for _, t := range yticks {
		y := p.Y(t)
		HLine(p.Img, p.X0, p.X0+p.W, y, Grid)
		HLine(p.Img, p.X0-5, p.X0, y, Ink)
		Text(p.Img, p.X0-8-TextWidth(TickLabel(t)), y+4, TickLabel(t), Ink, false)
	}
	for _, t := range xticks {
		x := p.X(t)
		VLine(p.Img, x, p.Y0, bottom, Grid)
		VLine(p.Img, x, bottom, bottom+5, Ink)
		Text(p.Img, x, bottom+18, TickLabel(t), Ink, true)
	}
	HLine(p.Img, p.X0, p.X0+p.W, bottom, Ink)
	VLine(p.Img, p.X0, p.Y0, bottom, Ink)
	if xlabel != "" {
		Text(p.Img, p.X0+p.W/2, bottom+36, xlabel, Ink, true)
	}
	if ylabel != "" {
		Text(p.Img, p.X0-50, p.Y0-10, ylabel, Ink, false)
	}
}

// Series is one line of a panel.
type Series struct {
	Name   string // in the legend
	Color  color.RGBA
	Dashed bool
	Dots   bool // a dot on each point
	X, Y   []float64
}

// Draw draws the series: their lines, and their dots where asked; a
// series of one point is a dot.
func (p Panel) Draw(ss ...Series) {
	for _, s := range ss {
		for i := 1; i < len(s.X); i++ {
			Line(p.Img, p.X(s.X[i-1]), p.Y(s.Y[i-1]), p.X(s.X[i]), p.Y(s.Y[i]), s.Color, s.Dashed)
		}
		if s.Dots || len(s.X) == 1 {
			for i := range s.X {
				Dot(p.Img, p.X(s.X[i]), p.Y(s.Y[i]), s.Color)
			}
		}
	}
}

// Legend lists the series by name, each beside a stroke of its line, in
// the panel's top-left corner.
func (p Panel) Legend(ss ...Series) {
	lx, ly := p.X0+12, p.Y0+14
	for i, s := range ss {
		y := ly + i*16
		Line(p.Img, lx, y-4, lx+24, y-4, s.Color, s.Dashed)
		Text(p.Img, lx+30, y, s.Name, Ink, false)
	}
}

// Dot draws a round dot of 7 pixels across centred on x, y.
func Dot(img *image.RGBA, x, y int, c color.RGBA) {
	for dy := -3; dy <= 3; dy++ {
		for dx := -3; dx <= 3; dx++ {
			if dx*dx+dy*dy <= 10 && (image.Point{x + dx, y + dy}).In(img.Rect) {
				img.SetRGBA(x+dx, y+dy, c)
			}
		}
	}
}

// Ticks returns the round values (multiples of a step of 1, 2, 2.5 or 5
// times a power of ten) from lo to hi, about n intervals of them.
func Ticks(lo, hi float64, n int) []float64 {
	if !(hi > lo) || n < 1 {
		return []float64{lo}
	}
	step := niceStep((hi - lo) / float64(n))
	var out []float64
	for i := math.Ceil(lo/step - 1e-9); i*step <= hi+step*1e-9; i++ {
		out = append(out, i*step)
	}
	return out
}

func niceStep(raw float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*e >= raw*(1-1e-9) {
			return m * e
		}
	}
	return 10 * e
}

// NiceCeil rounds v up to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a
// power of ten, so that an axis ends on a round number; 1 for v <= 0.
func NiceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8} {
		if m*e >= v*(1-1e-9) {
			return m * e
		}
	}
	return 10 * e
}

// TickLabel is v as an axis labels it: no more decimals than it has (up
// to six), so 2, 0.25, 1250.
func TickLabel(v float64) string {
	s := strconv.FormatFloat(v, 'f', 6, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

// NewImage returns a white w×h image to draw a plot on.
func NewImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	return img
}
