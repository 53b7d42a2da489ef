package motion_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/motion"
)

const (
	frames = 16
	size   = 224
	square = 30
)

// scene is a bright square on a dark textured background whose top-left
// corner moves linearly from `from` to `to` (pixels) over the clip.
type scene struct {
	name     string
	from, to [2]int
	dark     bool // no square at all
	want     string
}

// clip renders the scene normalised the ImageNet way, [16, 3, 224, 224].
func (s scene) clip(rng *rand.Rand) []float32 {
	mean, std := models.ImageNetMean, models.ImageNetStd
	out := make([]float32, frames*3*size*size)
	for f := range frames {
		x0, y0 := s.corner(f)
		for c := range 3 {
			plane := out[(f*3+c)*size*size:][:size*size]
			for y := range size {
				for x := range size {
					p := 0.1 + 0.3*rng.Float32()
					if !s.dark && x >= x0 && x < x0+square && y >= y0 && y < y0+square {
						p = 1
					}
					plane[y*size+x] = (p - mean[c]) / std[c]
				}
			}
		}
	}
	return out
}

func (s scene) corner(f int) (x, y int) {
	lerp := func(a, b int) int { return int(math.Round(float64(a) + float64(b-a)*float64(f)/(frames-1))) }
	return lerp(s.from[0], s.to[0]), lerp(s.from[1], s.to[1])
}

// wantLogits computes what the model should answer, from the square's
// centroids (pixel centres over the frame size) and their least-squares
// slope.
func (s scene) wantLogits() []float64 {
	var dx, dy float64
	if !s.dark {
		const tMean = (frames - 1) / 2.0
		var ss, sx, sy float64
		for f := range frames {
			x0, y0 := s.corner(f)
			cx, cy := (float64(x0)+square/2)/size, (float64(y0)+square/2)/size
			w := float64(f) - tMean
			ss += w * w
			sx += w * cx
			sy += w * cy
		}
		dx, dy = sx/ss*(frames-1), sy/ss*(frames-1)
	}
	const g = 200 // the model's gain
	return []float64{-g * dx, g * dx, -g * dy, g * dy, g * 0.04}
}

func TestMotionThroughONNXRuntime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motion.onnx")
	if err := motion.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	sess, err := engine.Open(path, engine.Options{Threads: 2})
	if err != nil {
		t.Fatalf("open motion model (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	t.Cleanup(func() { sess.Close() })

	// The square moves by half the frame; "still" and "dark" do not move.
	scenes := []scene{
		{name: "left", from: [2]int{150, 97}, to: [2]int{38, 97}, want: "moving_left"},
		{name: "right", from: [2]int{38, 97}, to: [2]int{150, 97}, want: "moving_right"},
		{name: "up", from: [2]int{97, 150}, to: [2]int{97, 38}, want: "moving_up"},
		{name: "down", from: [2]int{97, 38}, to: [2]int{97, 150}, want: "moving_down"},
		{name: "still", from: [2]int{97, 97}, to: [2]int{97, 97}, want: "still"},
		{name: "dark", dark: true, want: "still"},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var batch []float32
	for _, s := range scenes {
		batch = append(batch, s.clip(rng)...)
	}
	out, err := sess.Run(batch, len(scenes))
	if err != nil {
		t.Fatal(err)
	}
	n := len(motion.Labels)
	if len(out) != len(scenes)*n {
		t.Fatalf("got %d outputs, want %d", len(out), len(scenes)*n)
	}
	for i, s := range scenes {
		t.Run(s.name, func(t *testing.T) {
			logits := out[i*n : (i+1)*n]
			probs := engine.Softmax(logits)
			top := 0
			for j := range probs {
				if probs[j] > probs[top] {
					top = j
				}
			}
			// Still is softmax(0, 0, 0, 0, 8): 0.9987; moving by half the frame is ~1.
			if got := motion.Labels[top]; got != s.want || probs[top] < 0.99 {
				t.Errorf("top label %s (%.3f), want %s; logits %v", got, probs[top], s.want, logits)
			}
			for j, want := range s.wantLogits() {
				if math.Abs(float64(logits[j])-want) > 0.1 {
					t.Errorf("logit %s = %.4f, want %.4f", motion.Labels[j], logits[j], want)
				}
			}
		})
	}
}
