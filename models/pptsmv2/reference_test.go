package pptsmv2

import (
	"math"
	"strconv"

	"github.com/actiond/actiond/models/paddle"
)

// This file is an independent reference forward pass of PP-TSMv2 in its
// training form, written from pptsm_v2.py (PPTSMV2.md §1) without the
// package's architecture table or folding: every ConvBN is a conv then a
// BatchNorm with running statistics, rep blocks sum their separate
// branches, weights are read straight from the checkpoint tensors (kernel
// sizes and widths from their shapes), and everything is float64 with naive
// loops.

// refConfig is NET_CONFIG, hand-copied: per stage the depth, whether the
// depthwise conv is multi-branch (rep), SE, split pointwise, shortcut.
var refConfig = []struct {
	depth                      int
	rep, se, splitPW, shortcut bool
}{
	{depth: 2},
	{depth: 2},
	{depth: 6, rep: true, se: true, splitPW: true},
	{depth: 2, rep: true, shortcut: true},
}

// act is a batch of feature maps [n, c, h, w].
type act struct {
	n, c, h, w int
	d          []float64
}

func newAct(n, c, h, w int) act { return act{n, c, h, w, make([]float64, n*c*h*w)} }

func (a act) plane(n, c int) []float64 { return a.d[(n*a.c+c)*a.h*a.w:][:a.h*a.w] }

// reference runs the training-form network on checkpoint tensors given by
// relative key.
type reference struct {
	t map[string]paddle.Tensor
}

func (r reference) has(name string) bool { _, ok := r.t[name]; return ok }

func (r reference) get(name string) ([]float64, []int) {
	t, ok := r.t[name]
	if !ok {
		panic("reference: no tensor " + name)
	}
	v := make([]float64, len(t.Data))
	for i, x := range t.Data {
		v[i] = float64(x)
	}
	return v, t.Shape
}

// conv is Conv2D with symmetric padding (k-1)/2 from the weight
// [out, in/groups, k, k] named path+".weight", plus path+".bias" if bias.
func (r reference) conv(x act, path string, stride, groups int, bias bool) act {
	w, shape := r.get(path + ".weight")
	cout, cinG, k := shape[0], shape[1], shape[2]
	pad := (k - 1) / 2
	oh, ow := (x.h+2*pad-k)/stride+1, (x.w+2*pad-k)/stride+1
	out := newAct(x.n, cout, oh, ow)
	coutG := cout / groups
	var b []float64
	if bias {
		b, _ = r.get(path + ".bias")
	}
	if k == 1 && stride == 1 && groups == 1 {
		pointwise(x, w, b, out)
		return out
	}
	for n := range x.n {
		for o := range cout {
			dst := out.plane(n, o)
			if b != nil {
				for i := range dst {
					dst[i] = b[o]
				}
			}
			g := o / coutG
			for ci := range cinG {
				src := x.plane(n, g*cinG+ci)
				for ky := range k {
					for kx := range k {
						wv := w[((o*cinG+ci)*k+ky)*k+kx]
						for y := range oh {
							iy := y*stride + ky - pad
							if iy < 0 || iy >= x.h {
								continue
							}
							row, drow := src[iy*x.w:][:x.w], dst[y*ow:][:ow]
							for xx := range ow {
								if ix := xx*stride + kx - pad; ix >= 0 && ix < x.w {
									drow[xx] += wv * row[ix]
								}
							}
						}
					}
				}
			}
		}
	}
	return out
}

// pointwise is a 1×1 conv as dot products over the input channels of each
// pixel: the same sums as the general loop, only faster.
func pointwise(x act, w, b []float64, out act) {
	hw := x.h * x.w
	pix := make([]float64, x.c)
	for n := range x.n {
		for p := range hw {
			for c := range x.c {
				pix[c] = x.d[(n*x.c+c)*hw+p]
			}
			for o := range out.c {
				var s float64
				if b != nil {
					s = b[o]
				}
				for c, wv := range w[o*x.c:][:x.c] {
					s += wv * pix[c]
				}
				out.d[(n*out.c+o)*hw+p] = s
			}
		}
	}
}

// bn is BatchNorm2D at inference with running statistics, eps 1e-5.
func (r reference) bn(x act, path string) act {
	gamma, _ := r.get(path + ".weight")
	beta, _ := r.get(path + ".bias")
	mean, _ := r.get(path + "._mean")
	variance, _ := r.get(path + "._variance")
	for n := range x.n {
		for c := range x.c {
			p := x.plane(n, c)
			for i := range p {
				p[i] = (p[i]-mean[c])/math.Sqrt(variance[c]+1e-5)*gamma[c] + beta[c]
			}
		}
	}
	return x
}

func relu(x act) act {
	for i, v := range x.d {
		x.d[i] = max(v, 0)
	}
	return x
}

// convBN is ConvBNLayer: conv without bias, then BatchNorm.
func (r reference) convBN(x act, path string, stride, groups int) act {
	return r.bn(r.conv(x, path+".conv", stride, groups, false), path+".bn")
}

func add(a, b act) act {
	out := newAct(a.n, a.c, a.h, a.w)
	for i := range a.d {
		out.d[i] = a.d[i] + b.d[i]
	}
	return out
}

func avgPool(x act) act {
	out := newAct(x.n, x.c, 1, 1)
	for n := range x.n {
		for c := range x.c {
			var s float64
			for _, v := range x.plane(n, c) {
				s += v
			}
			out.d[n*x.c+c] = s / float64(x.h*x.w)
		}
	}
	return out
}

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// block is RepDepthwiseSeparable.forward.
func (r reference) block(x act, path string, stride int, rep, se, splitPW, shortcut bool) act {
	var y act
	if rep {
		// The branches dw_conv_list.0, .1, ... that the checkpoint has,
		// summed without activation, then ReLU.
		for j := 0; r.has(path + ".dw_conv_list." + strconv.Itoa(j) + ".conv.weight"); j++ {
			br := r.convBN(x, path+".dw_conv_list."+strconv.Itoa(j), stride, x.c)
			if j == 0 {
				y = br
			} else {
				y = add(y, br)
			}
		}
		y = relu(y)
	} else {
		y = relu(r.convBN(x, path+".dw_conv", stride, x.c))
	}
	if se {
		g := r.conv(avgPool(y), path+".se.conv1", 1, 1, true)
		g = r.conv(relu(g), path+".se.conv2", 1, 1, true)
		for n := range y.n {
			for c := range y.c {
				s := sigmoid(g.d[n*y.c+c])
				p := y.plane(n, c)
				for i := range p {
					p[i] *= s
				}
			}
		}
	}
	if splitPW {
		y = relu(r.convBN(y, path+".pw_conv_1", 1, 1))
		y = relu(r.convBN(y, path+".pw_conv_2", 1, 1))
	} else {
		y = relu(r.convBN(y, path+".pw_conv", 1, 1))
	}
	if shortcut && stride == 1 && x.c == y.c {
		y = add(y, x)
	}
	return y
}

// lta is GlobalAttention: per clip, m = mean of each frame's activations,
// a = sigmoid(m·W + b), frame t scaled by a[t].
func (r reference) lta(x act) act {
	w, _ := r.get("global_attention.fc.weight")
	b, _ := r.get("global_attention.fc.bias")
	const t = 16
	per := x.c * x.h * x.w
	for clip := range x.n / t {
		var m [t]float64
		for f := range t {
			var s float64
			for _, v := range x.d[(clip*t+f)*per:][:per] {
				s += v
			}
			m[f] = s / float64(per)
		}
		for j := range t {
			z := b[j]
			for i := range t {
				z += m[i] * w[i*t+j]
			}
			a := sigmoid(z)
			for k := range per {
				x.d[(clip*t+j)*per+k] *= a
			}
		}
	}
	return x
}

// temporalShift is Paddle's temporal_shift(x, seg_num=16, shift_ratio=1/16).
func temporalShift(x act) act {
	const t = 16
	c1, c2 := x.c/16, x.c/8
	out := newAct(x.n, x.c, x.h, x.w)
	for clip := range x.n / t {
		for f := range t {
			for c := range x.c {
				src := f
				switch {
				case c < c1:
					src = f - 1
				case c < c2:
					src = f + 1
				}
				if src < 0 || src >= t {
					continue // zero
				}
				copy(out.plane(clip*t+f, c), x.plane(clip*t+src, c))
			}
		}
	}
	return out
}

// forward returns the logits [n, classes] for clips [n, 16, 3, s, s].
func (r reference) forward(clips []float32, n, s int) []float64 {
	x := newAct(n*16, 3, s, s)
	for i, v := range clips {
		x.d[i] = float64(v)
	}
	x = relu(r.convBN(x, "stem.0", 2, 1))
	x = r.block(x, "stem.1", 1, false, false, false, false)
	for si, st := range refConfig {
		if si == 2 {
			if r.has("global_attention.fc.weight") {
				x = r.lta(x)
			}
			x = temporalShift(x)
		}
		for i := range st.depth {
			stride := 1
			if i == 0 {
				stride = 2
			}
			x = r.block(x, "stages."+strconv.Itoa(si)+"."+strconv.Itoa(i), stride, st.rep, st.se, st.splitPW, st.shortcut)
		}
	}
	x = relu(r.conv(avgPool(x), "last_conv", 1, 1, false))
	for i := range x.d {
		x.d[i] *= 0.8 // Dropout(p=0.2, mode="downscale_in_infer") at inference
	}
	w, shape := r.get("fc.weight") // [in, out]
	b, _ := r.get("fc.bias")
	in, classes := shape[0], shape[1]
	logits := make([]float64, n*classes)
	for clip := range n {
		feat := make([]float64, in)
		for f := range 16 {
			for c := range in {
				feat[c] += x.d[(clip*16+f)*in+c] / 16
			}
		}
		for j := range classes {
			z := b[j]
			for i := range in {
				z += feat[i] * w[i*classes+j]
			}
			logits[clip*classes+j] = z
		}
	}
	return logits
}

// rms is the root mean square, for checking activation scales.
func rms(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s / float64(len(v)))
}
