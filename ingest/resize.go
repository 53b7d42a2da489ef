package ingest

import (
	"fmt"
	"math"
)

// The resampler below reproduces Pillow's Image.resize(size, BILINEAR) for
// RGB images bit for bit (src/libImaging/Resample.c: precompute_coeffs,
// normalize_coeffs_8bpc, ImagingResampleHorizontal_8bpc/Vertical_8bpc,
// ImagingResampleInner). PP-TSMv2 was evaluated on frames scaled by Pillow,
// and Pillow's BILINEAR is an antialiasing convolution whose kernel widens
// when downscaling, not 2-tap interpolation, so any other resampler feeds
// the model visibly different pixels. See PPTSMV2.md §3.4.
//
// The floating-point steps are written in the same order as the C code and
// never as a*b+c, so that the Go compiler cannot fuse them into an FMA and
// round differently from Pillow's build.

// precisionBits is Pillow's PRECISION_BITS: coefficients are fixed point
// with 22 fractional bits for 8-bit images.
const precisionBits = 22

// coeffs holds the fixed-point filter of one axis: output o is the sum over
// j < n[o] of input[start[o]+j] * k[o*ksize+j]. Entries of k past n[o] are 0,
// as in Pillow's buffer.
type coeffs struct {
	ksize int
	start []int
	n     []int
	k     []int32
}

// triangle is Pillow's bilinear_filter: the tent function with support 1.
func triangle(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}

// bilinearCoeffs computes Pillow's coefficients for resampling an axis of
// length in to length out (both positive) over the whole input (box 0..in).
func bilinearCoeffs(in, out int) coeffs {
	scale := float64(in) / float64(out)
	filterscale := max(scale, 1.0)
	support := 1.0 * filterscale // bilinear support is 1 input pixel, stretched when downscaling
	ksize := int(math.Ceil(support))*2 + 1
	ss := 1.0 / filterscale // Pillow multiplies by the reciprocal; dividing could round differently

	c := coeffs{
		ksize: ksize,
		start: make([]int, out),
		n:     make([]int, out),
		k:     make([]int32, out*ksize),
	}
	w := make([]float64, ksize)
	for o := range out {
		center := (float64(o) + 0.5) * scale
		// Go's int() truncates toward zero exactly like C's (int) cast.
		lo := max(int(center-support+0.5), 0)
		hi := min(int(center+support+0.5), in)
		n := hi - lo
		var sum float64
		for j := range n {
			w[j] = triangle((float64(j+lo) - center + 0.5) * ss)
			sum += w[j]
		}
		k := c.k[o*ksize : o*ksize+n]
		for j := range n {
			v := w[j]
			if sum != 0 {
				v /= sum
			}
			// normalize_coeffs_8bpc: round half away from zero, then (int).
			if v < 0 {
				k[j] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[j] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[o] = lo
		c.n[o] = n
	}
	return c
}

// clip8 turns an accumulator into a byte like Pillow's clip8.
func clip8(acc int32) uint8 {
	v := acc >> precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizeBilinear returns src resized to w×h exactly as Pillow's
// Image.resize((w, h), Image.BILINEAR) resizes an RGB image. The result is a
// new image even when the size is unchanged. It panics if w or h is not
// positive or src is empty, as these are caller bugs.
func ResizeBilinear(src *Image, w, h int) *Image {
	return resizeBilinearRect(src, w, h, 0, 0, w, h)
}

// resizeBilinearRect returns the cw×ch rectangle at (x0, y0) of
// ResizeBilinear(src, w, h), computing only what that rectangle needs. Every
// output pixel depends only on its own row and column coefficients, so the
// result is byte-identical to resizing everything and cropping afterwards.
func resizeBilinearRect(src *Image, w, h, x0, y0, cw, ch int) *Image {
	return new(resizeScratch).resize(src, w, h, x0, y0, cw, ch)
}

// resizeScratch is what resizing needs besides the pixels: the filter
// taps and the intermediate buffers. Kept from frame to frame (a live
// stream's frames all have one size), it makes resizing allocate nothing.
// The zero value is ready; it is not safe for concurrent use.
type resizeScratch struct {
	key    [7]int // src W, H, w, h, x0, cw and ch the taps were made for
	vc     coeffs
	offs   []int     // per output column: byte offset of its first tap in a row
	taps   [][]int32 // per output column: its taps
	needH  bool
	needV  bool
	tmp    []uint8
	acc    []int32
	result Image // the returned rectangle; overwritten by the next resize
}

// resize is resizeBilinearRect into s's buffers: the image it returns is
// valid until the next call.
func (s *resizeScratch) resize(src *Image, w, h, x0, y0, cw, ch int) *Image {
	if src == nil || src.W <= 0 || src.H <= 0 || len(src.Pix) != src.W*src.H*3 {
		panic(fmt.Sprintf("ingest: resize of an invalid image %v", src))
	}
	if w <= 0 || h <= 0 || x0 < 0 || y0 < 0 || cw <= 0 || ch <= 0 || x0+cw > w || y0+ch > h {
		panic(fmt.Sprintf("ingest: resize %v to %dx%d, rectangle %dx%d at (%d,%d) is invalid", src, w, h, cw, ch, x0, y0))
	}
	if key := [7]int{src.W, src.H, w, h, x0, cw, ch}; key != s.key {
		s.setup(src, w, h, x0, cw)
		s.key = key
	}
	out := &s.result
	out.W, out.H = cw, ch
	out.Pix = grow(out.Pix, cw*ch*3)
	switch {
	case !s.needH && !s.needV:
		for y := range ch {
			i := ((y0+y)*src.W + x0) * 3
			copy(out.Pix[y*cw*3:(y+1)*cw*3], src.Pix[i:i+cw*3])
		}
	case s.needH && !s.needV:
		horizontalPass(out.Pix, src, y0, ch, s.offs, s.taps)
	case !s.needH && s.needV:
		s.acc = grow(s.acc, cw*3)
		verticalPass(out.Pix, src.Pix[x0*3:], src.W*3, s.acc, s.vc, 0, y0, ch)
	default:
		vc := s.vc
		// Both ends of the tap windows grow with the output index, so the
		// rows the rectangle needs are those from the first output row's
		// window start to the last one's window end.
		first := vc.start[y0]
		last := vc.start[y0+ch-1] + vc.n[y0+ch-1]
		// Pillow stores the horizontal result as 8-bit pixels before the
		// vertical pass; so does this.
		s.tmp = grow(s.tmp, (last-first)*cw*3)
		s.acc = grow(s.acc, cw*3)
		horizontalPass(s.tmp, src, first, last-first, s.offs, s.taps)
		verticalPass(out.Pix, s.tmp, cw*3, s.acc, vc, first, y0, ch)
	}
	return out
}

// setup computes the taps for resizing src to w×h, output columns
// [x0, x0+cw).
func (s *resizeScratch) setup(src *Image, w, h, x0, cw int) {
	// Pillow skips the pass of an axis whose size does not change; its
	// coefficients would be the identity anyway.
	s.needH, s.needV = w != src.W, h != src.H
	s.offs, s.taps = nil, nil
	if s.needH {
		// Resolve each output column's taps once, not once per row.
		c := bilinearCoeffs(src.W, w)
		s.offs = make([]int, cw)
		s.taps = make([][]int32, cw)
		for x := range cw {
			o := x0 + x
			s.offs[x] = c.start[o] * 3
			s.taps[x] = c.k[o*c.ksize : o*c.ksize+c.n[o]]
		}
	}
	s.vc = coeffs{}
	if s.needV {
		s.vc = bilinearCoeffs(src.H, h)
	}
}

// grow returns b with length n, reusing its array when it is large enough.
func grow[T any](b []T, n int) []T {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]T, n)
}

// horizontalPass resamples rows [row0, row0+rows) of src along x into dst,
// which holds rows×len(taps) pixels; offs and taps give each output
// column's first input byte and taps.
func horizontalPass(dst []uint8, src *Image, row0, rows int, offs []int, taps [][]int32) {
	cw := len(taps)
	stride := src.W * 3
	for r := range rows {
		horizontalRow(dst[r*cw*3:(r+1)*cw*3], src.Pix[(row0+r)*stride:(row0+r+1)*stride], offs, taps)
	}
}

// horizontalRow resamples one row; kept apart from the row loop so that few
// values are live in the hot loop.
func horizontalRow(d, line []uint8, offs []int, taps [][]int32) {
	d = d[:len(taps)*3]
	for x, k := range taps {
		o := offs[x]
		p := line[o : o+3*len(k)]
		acc0, acc1, acc2 := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
		// Four taps a step, then two, then one: a quarter of the loop
		// overhead and one bounds check per step. The integer sums are
		// exact, so their order does not change the result.
		j := 0
		for ; j+3 < len(k); j += 4 {
			q := p[3*j : 3*j+12 : 3*j+12]
			k0, k1, k2, k3 := k[j], k[j+1], k[j+2], k[j+3]
			acc0 += int32(q[0])*k0 + int32(q[3])*k1 + int32(q[6])*k2 + int32(q[9])*k3
			acc1 += int32(q[1])*k0 + int32(q[4])*k1 + int32(q[7])*k2 + int32(q[10])*k3
			acc2 += int32(q[2])*k0 + int32(q[5])*k1 + int32(q[8])*k2 + int32(q[11])*k3
		}
		for ; j+1 < len(k); j += 2 {
			q := p[3*j : 3*j+6 : 3*j+6]
			k0, k1 := k[j], k[j+1]
			acc0 += int32(q[0])*k0 + int32(q[3])*k1
			acc1 += int32(q[1])*k0 + int32(q[4])*k1
			acc2 += int32(q[2])*k0 + int32(q[5])*k1
		}
		if j < len(k) {
			q := p[3*j : 3*j+3 : 3*j+3]
			kj := k[j]
			acc0 += int32(q[0]) * kj
			acc1 += int32(q[1]) * kj
			acc2 += int32(q[2]) * kj
		}
		px := d[x*3 : x*3+3]
		px[0], px[1], px[2] = clip8(acc0), clip8(acc1), clip8(acc2)
	}
}

// verticalPass resamples along y into dst (ch rows of len(acc)/3 pixels):
// output rows [y0, y0+ch) of the full-height result; acc is scratch. src
// holds rows of that many pixels (stride bytes apart) starting at input
// row row0. The bilinear weights are
// non-negative and sum to 2^22 give or take rounding, so the int32
// accumulators cannot overflow and the order of the integer sums does not
// change the result: accumulating whole rows keeps memory access sequential.
func verticalPass(dst, src []uint8, stride int, acc []int32, c coeffs, row0, y0, ch int) {
	for y := range ch {
		o := y0 + y
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		start := c.start[o] - row0
		for j, kj := range c.k[o*c.ksize : o*c.ksize+c.n[o]] {
			line := src[(start+j)*stride : (start+j)*stride+len(acc)]
			a := acc[:len(line)] // same length; lets the compiler drop the bounds checks
			for i, v := range line {
				a[i] += int32(v) * kj
			}
		}
		d := dst[y*len(acc) : (y+1)*len(acc)]
		d = d[:len(acc)]
		for i, a := range acc {
			d[i] = clip8(a)
		}
	}
}
