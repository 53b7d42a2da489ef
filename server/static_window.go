package server

import "math"

// Thresholds of skip_static (staticWindow).
const (
	// StaticPixelThreshold is the mean absolute difference, in the
	// model's normalised input ((value/255 - mean) / std, std about
	// 0.226), under which a frame counts as the same picture as the one it
	// follows: 0.01 is about 0.6 grey levels of 255 on average over the
	// picture. A still scene from an encoder that codes unchanged blocks
	// as skipped stays far below it; the test scene's disk, a sixth of the
	// picture's height moving 2.5 pixels of 160 per slot, is at about
	// 0.02. A camera whose sensor noise survives its encoder may never
	// count as static.
	StaticPixelThreshold = 0.01
	// StaticFeatureThreshold is the same with the feature cache on, where
	// the window holds the front's features: the mean absolute difference
	// relative to the features' mean magnitude. The front amplifies small
	// changes: with PP-TSMv2's front, a still 720p picture re-encoded at
	// 2 Mbit/s measured 0.01–0.04 (its pixels 0.001–0.009), real footage
	// of people moving 0.55–0.76.
	StaticFeatureThreshold = 0.1
)

// staticWindow says whether the frames a window added barely differ from
// the one they follow: each of the last strideSlots slots (the ones new
// since the window before) is compared with the slot before them, and the
// largest mean absolute difference must be under the threshold. tensor is
// [segments, frame]; features says it holds the front's features rather
// than pixels.
func staticWindow(tensor []float32, segments, strideSlots int, features bool) bool {
	d, ok := staticDifference(tensor, segments, strideSlots, features)
	if !ok {
		return false
	}
	if features {
		return d < StaticFeatureThreshold
	}
	return d < StaticPixelThreshold
}

// staticDifference is the largest difference staticWindow compares with
// its threshold: the mean absolute difference, relative to the mean
// magnitude for features. ok is false for a tensor of no such shape.
func staticDifference(tensor []float32, segments, strideSlots int, features bool) (d float64, ok bool) {
	if segments < 2 || len(tensor)%segments != 0 || strideSlots < 1 {
		return 0, false
	}
	frame := len(tensor) / segments
	first := max(1, segments-strideSlots)
	prev := tensor[(first-1)*frame : first*frame]
	var mag float64
	for _, v := range prev {
		mag += math.Abs(float64(v))
	}
	mag /= float64(frame)
	for k := first; k < segments; k++ {
		var diff float64
		for i, v := range tensor[k*frame : (k+1)*frame] {
			diff += math.Abs(float64(v - prev[i]))
		}
		mad := diff / float64(frame)
		if features && mag > 0 {
			mad /= mag
		}
		d = max(d, mad)
	}
	return d, true
}
