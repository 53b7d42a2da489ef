package ingest

import (
	"fmt"
	"math"

	"github.com/actiond/actiond/models"
)

// ScaleSize returns the size PaddleVideo's Scale(short, fixed_ratio=True)
// gives a w×h frame (PPTSMV2.md §3.3). A frame whose shorter (or equal) side
// already is short passes through unchanged, whatever its long side; any
// other frame is forced to 4:3 (landscape) or 3:4 (portrait and square),
// e.g. 1920×1080 → 341×256, 500×500 → 256×341.
func ScaleSize(w, h, short int) (int, int) {
	if (w <= h && w == short) || (h <= w && h == short) {
		return w, h
	}
	// Python: int(short_size * 4.0 / 3.0), truncating 341.33 to 341.
	long := int(float64(short) * 4.0 / 3.0)
	if w <= h {
		return short, long
	}
	return long, short
}

// CenterCropOffset returns the top-left corner of PaddleVideo's
// CenterCrop(size, do_round=True) in a w×h frame (PPTSMV2.md §3.5). Python's
// round is half-to-even, so 341 wide gives round(58.5) = 58 but 455 wide
// gives round(115.5) = 116.
func CenterCropOffset(w, h, size int) (x, y int) {
	x = int(math.RoundToEven(float64(w-size) / 2.0))
	y = int(math.RoundToEven(float64(h-size) / 2.0))
	return x, y
}

// Preprocessor turns a decoded RGB frame into the model's input exactly as
// PaddleVideo's ppTSM_Inference_helper does: Scale(ShortSide) with Pillow
// bilinear resampling, CenterCrop(CropSize), then per channel
// (v/255 - Mean) / Std in float32, laid out planar R, G, B.
type Preprocessor struct {
	ShortSide, CropSize int
	Mean, Std           [3]float32
}

// NewPreprocessor returns the preprocessing that model m expects.
func NewPreprocessor(m models.Manifest) Preprocessor {
	return Preprocessor{ShortSide: m.ShortSide, CropSize: m.InputSize, Mean: m.Mean, Std: m.Std}
}

// FrameSize is the number of float32 values Frame writes: 3·CropSize².
func (p Preprocessor) FrameSize() int { return 3 * p.CropSize * p.CropSize }

// Frame preprocesses img into dst, which must hold exactly FrameSize values
// (one [3, CropSize, CropSize] slice of the model's input tensor). Only the
// cropped part of the scaled frame is computed; it is byte-identical to
// scaling the whole frame first.
func (p Preprocessor) Frame(img *Image, dst []float32) error {
	return p.frame(img, dst, new(resizeScratch))
}

// frame is Frame with the resizing's buffers in s, which a caller that
// preprocesses frame after frame keeps, so that it allocates nothing.
func (p Preprocessor) frame(img *Image, dst []float32, s *resizeScratch) error {
	if p.ShortSide <= 0 || p.CropSize <= 0 {
		return fmt.Errorf("preprocess frame: short side %d and crop size %d must be positive", p.ShortSide, p.CropSize)
	}
	if len(dst) != p.FrameSize() {
		return fmt.Errorf("preprocess frame: destination holds %d values, need 3×%d×%d = %d", len(dst), p.CropSize, p.CropSize, p.FrameSize())
	}
	if img == nil {
		return fmt.Errorf("preprocess frame: no image")
	}
	if img.W <= 0 || img.H <= 0 {
		return fmt.Errorf("preprocess frame: empty %dx%d image", img.W, img.H)
	}
	if len(img.Pix) != img.W*img.H*3 {
		return fmt.Errorf("preprocess frame: %dx%d image holds %d bytes, want %d", img.W, img.H, len(img.Pix), img.W*img.H*3)
	}
	sw, sh := ScaleSize(img.W, img.H, p.ShortSide)
	if sw < p.CropSize || sh < p.CropSize {
		// PaddleVideo's CenterCrop asserts the same.
		return fmt.Errorf("preprocess frame: %v scales to %dx%d, smaller than the %dx%d crop", img, sw, sh, p.CropSize, p.CropSize)
	}
	x, y := CenterCropOffset(sw, sh, p.CropSize)
	crop := s.resize(img, sw, sh, x, y, p.CropSize, p.CropSize)

	// numpy computes v/255.0 - mean, then / std, each step rounded to
	// float32 (the Python float 255.0 becomes float32 255). The same three
	// float32 operations keep the tensor bit-identical; folding them into a
	// multiply-add would not. The result depends only on the byte, so a
	// 256-entry table per channel replaces two divisions per value.
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			x := float32(v) / 255
			x -= p.Mean[c]
			lut[c][v] = x / p.Std[c]
		}
	}
	plane := p.CropSize * p.CropSize
	r, g, b := dst[:plane], dst[plane:2*plane], dst[2*plane:]
	for i := range r {
		px := crop.Pix[i*3 : i*3+3]
		r[i], g[i], b[i] = lut[0][px[0]], lut[1][px[1]], lut[2][px[2]]
	}
	return nil
}
