package pptsmv2

import (
	"math"
	"testing"

	"github.com/actiond/actiond/models/onnx"
)

// clipsModel wraps a sub-graph that maps clips x [N, 16, c, h, w] to an
// output of the same shape into a model.
func clipsModel(c, h, w int, sub func(b *graphBuilder) string) *onnx.Model {
	b := &graphBuilder{}
	out := b.node("Identity", []string{sub(b)}, "out")
	shape := []onnx.Dim{{Param: "N"}, {Value: Segments}, {Value: int64(c)}, {Value: int64(h)}, {Value: int64(w)}}
	b.g.Name = "test"
	b.g.Inputs = []onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, Shape: shape}}
	b.g.Outputs = []onnx.ValueInfo{{Name: out, ElemType: onnx.Float, Shape: shape}}
	return &onnx.Model{OpsetImports: []onnx.OpsetID{{Version: opset}}, Graph: b.g}
}

// The temporal shift on hand-made clips: every value says where it came
// from, 1 + clip·100000 + frame·1000 + channel, so the output shows which
// channel of which frame of which clip landed where.
func TestTemporalShift(t *testing.T) {
	const n, c, h, w = 2, 256, 2, 3
	at := func(clip, f, ch int) int { return ((clip*Segments+f)*c + ch) * h * w }
	x := make([]float32, n*Segments*c*h*w)
	for clip := range n {
		for f := range Segments {
			for ch := range c {
				for p := range h * w {
					x[at(clip, f, ch)+p] = float32(1 + clip*100000 + f*1000 + ch)
				}
			}
		}
	}
	m := clipsModel(c, h, w, func(b *graphBuilder) string { return b.temporalShift("x", c) })
	y := runModel(t, m, x, n)
	// source is the value at (clip, frame, channel) of the output, or 0.
	source := func(clip, f, ch int) float32 {
		v := y[at(clip, f, ch)]
		for p := range h * w {
			if y[at(clip, f, ch)+p] != v {
				t.Fatalf("clip %d frame %d channel %d is not uniform", clip, f, ch)
			}
		}
		return v
	}
	from := func(clip, f, ch int) float32 { return float32(1 + clip*100000 + f*1000 + ch) }

	for _, tc := range []struct {
		name        string
		clip, f, ch int
		want        float32
	}{
		{"channel 3 of frame 5 moves to frame 6", 0, 6, 3, from(0, 5, 3)},
		{"channel 20 of frame 5 moves to frame 4", 0, 4, 20, from(0, 5, 20)},
		{"channel 40 stays", 0, 5, 40, from(0, 5, 40)},
		{"channel 15 moves later", 1, 9, 15, from(1, 8, 15)},
		{"channel 16 moves earlier", 1, 9, 16, from(1, 10, 16)},
		{"channel 31 moves earlier", 1, 14, 31, from(1, 15, 31)},
		{"channel 32 stays", 1, 0, 32, from(1, 0, 32)},
		{"channel 255 stays", 1, 15, 255, from(1, 15, 255)},
		{"frame 0 channel 0 is zero", 1, 0, 0, 0},
		{"frame 0 channel 15 is zero", 0, 0, 15, 0},
		{"frame 15 channel 16 is zero", 1, 15, 16, 0},
		{"frame 15 channel 31 is zero", 0, 15, 31, 0},
		{"clip 1 frame 0 does not take clip 0 frame 15", 1, 0, 3, 0},
		{"clip 0 frame 15 does not take clip 1 frame 0", 0, 15, 20, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := source(tc.clip, tc.f, tc.ch); got != tc.want {
				t.Errorf("clip %d frame %d channel %d holds %v, want %v", tc.clip, tc.f, tc.ch, got, tc.want)
			}
		})
	}
	t.Run("zero at the clip ends, no crossing between clips", func(t *testing.T) {
		for clip := range n {
			for f := range Segments {
				for ch := range c {
					var want float32
					switch {
					case ch < 16 && f > 0:
						want = from(clip, f-1, ch)
					case ch >= 16 && ch < 32 && f < Segments-1:
						want = from(clip, f+1, ch)
					case ch >= 32:
						want = from(clip, f, ch)
					}
					if got := source(clip, f, ch); got != want {
						t.Fatalf("clip %d frame %d channel %d holds %v, want %v", clip, f, ch, got, want)
					}
				}
			}
		}
	})
}

// LTA on hand-made clips: frame t of clip n is scaled by sigmoid(m·W + b)[t],
// m being the frames' means.
func TestLTA(t *testing.T) {
	const n, c, h, w = 2, 3, 2, 2
	per := c * h * w
	x := make([]float32, n*Segments*per)
	for i := range x {
		// Frame means differ: a per-frame level plus a zero-mean pattern.
		frame, k := i/per, i%per
		x[i] = float32(frame%Segments)/8 - float32(frame/Segments) + float32(k%4-1)*0.25 - 0.125
	}
	weight := make([]float32, Segments*Segments) // [in, out]
	bias := make([]float32, Segments)
	for i := range Segments {
		for j := range Segments {
			weight[i*Segments+j] = float32(math.Sin(float64(3*i+j))) * 0.5
		}
		bias[i] = float32(i)/8 - 1
	}
	m := clipsModel(c, h, w, func(b *graphBuilder) string {
		b.floats(ltaPath+".weight", []int{Segments, Segments}, weight)
		b.floats(ltaPath+".bias", []int{Segments}, bias)
		return b.lta("x")
	})
	y := runModel(t, m, x, n)

	var maxDiff float64
	for clip := range n {
		var mean [Segments]float64
		for f := range Segments {
			for k := range per {
				mean[f] += float64(x[(clip*Segments+f)*per+k]) / float64(per)
			}
		}
		for j := range Segments {
			z := float64(bias[j])
			for i := range Segments {
				z += mean[i] * float64(weight[i*Segments+j])
			}
			scale := 1 / (1 + math.Exp(-z))
			for k := range per {
				idx := (clip*Segments+j)*per + k
				maxDiff = max(maxDiff, math.Abs(float64(y[idx])-float64(x[idx])*scale))
			}
		}
	}
	t.Logf("max |ORT - expected| = %.2g", maxDiff)
	if maxDiff > 1e-6 {
		t.Errorf("max difference %.3g > 1e-6", maxDiff)
	}
}
