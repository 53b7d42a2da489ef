// Package plot draws the PNG plots of the benchmark, soak and fleet
// reports: panels with their axes, ticks, series and legends, on the
// primitives beneath them (lines and text on an image.RGBA), in pure Go, so
// that no plotting tool has to be installed. Every plot's axes and ticks
// are drawn here, not by its report.
package plot

import (
	"image"
	"image/color"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// HLine draws a 1-pixel horizontal line from x0 to x1 inclusive.
func HLine(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

// VLine draws a 1-pixel vertical line from y0 to y1 inclusive.
func VLine(img *image.RGBA, x, y0, y1 int, c color.Color) {
	for y := y0; y <= y1; y++ {
		img.Set(x, y, c)
	}
}

// Line draws a 2-pixel line, dashed in 8-pixel steps if asked, clipped to
// the image.
func Line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color, dashed bool) {
	n := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= n; i++ {
		if dashed && (i/8)%2 == 1 {
			continue
		}
		x := x0 + (x1-x0)*i/n
		y := y0 + (y1-y0)*i/n
		for _, d := range [][2]int{{0, 0}, {1, 0}, {0, 1}, {1, 1}} {
			if (image.Point{x + d[0], y + d[1]}).In(img.Rect) {
				img.Set(x+d[0], y+d[1], c)
			}
		}
	}
}

// Text draws s in a 7×13 bitmap font with its baseline at y, starting at x
// or centred on it.
func Text(img *image.RGBA, x, y int, s string, c color.Color, centred bool) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13}
	if centred {
		x -= TextWidth(s) / 2
	}
	d.Dot = fixed.P(x, y)
	d.DrawString(s)
}

// TextWidth is the width of s in pixels as Text draws it.
func TextWidth(s string) int {
	return (&font.Drawer{Face: basicfont.Face7x13}).MeasureString(s).Round()
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
