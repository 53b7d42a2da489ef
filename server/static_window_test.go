package server

import "testing"

// A window counts as static when the frames it added (the last stride
// slots) barely differ from the one before them: a still picture does, a
// 24-pixel square moving 6 pixels a frame does not, whatever came before
// the new frames.
func TestStaticWindow(t *testing.T) {
	// 16 slots of 100 features of 1, the last one's scaled by last.
	features := func(last float32) []float32 {
		f := make([]float32, 16*100)
		for i := range f {
			f[i] = 1
			if i >= 15*100 {
				f[i] = last
			}
		}
		return f
	}
	still, moving := motionClip(0), motionClip(6)
	const frame = 3 * 224 * 224
	// Moving for 14 slots, then still for the 2 new ones.
	settled := append(append([]float32(nil), moving[:15*frame]...), moving[14*frame:15*frame]...)
	// Still, then one new slot with the square elsewhere.
	jumped := append(append([]float32(nil), still[:15*frame]...), moving[15*frame:]...)
	for _, c := range []struct {
		name     string
		tensor   []float32
		stride   int
		features bool
		want     bool
	}{
		{"still picture", still, 2, false, true},
		{"moving square", moving, 2, false, false},
		{"moving, then still new frames", settled, 1, false, true},
		{"still, then a new frame that moved", jumped, 1, false, false},
		{"features 5% off", features(1.05), 1, true, true},
		{"features 50% off", features(1.5), 1, true, false},
		{"stride past the window: every slot new", moving, 20, false, false},
	} {
		if got := staticWindow(c.tensor, 16, c.stride, c.features); got != c.want {
			d, _ := staticDifference(c.tensor, 16, c.stride, c.features)
			t.Errorf("%s: static %t (difference %.4f), want %t", c.name, got, d, c.want)
		}
	}
}
