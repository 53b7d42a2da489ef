package ingest

import "fmt"

// Image is a packed 8-bit RGB picture (R, G, B per pixel, rows top to bottom,
// no padding). It is the currency between the decoder, the scene generator and
// the preprocessing; it owns its pixels (never C memory).
type Image struct {
	W, H int
	Pix  []uint8 // len W*H*3
}

// NewImage returns a black image of the given size.
func NewImage(w, h int) *Image {
	return &Image{W: w, H: h, Pix: make([]uint8, w*h*3)}
}

// At returns the R, G, B values of the pixel at (x, y).
func (im *Image) At(x, y int) (r, g, b uint8) {
	i := (y*im.W + x) * 3
	return im.Pix[i], im.Pix[i+1], im.Pix[i+2]
}

// Set sets the pixel at (x, y).
func (im *Image) Set(x, y int, r, g, b uint8) {
	i := (y*im.W + x) * 3
	im.Pix[i], im.Pix[i+1], im.Pix[i+2] = r, g, b
}

func (im *Image) String() string { return fmt.Sprintf("%dx%d RGB", im.W, im.H) }
