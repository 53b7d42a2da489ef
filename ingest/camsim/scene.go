package camsim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/actiond/actiond/ingest"
)

// Direction is where the bright shape of a synthetic Scene moves. The values
// are the motion model's labels without the "moving_" prefix.
type Direction string

// Directions a Scene can show.
const (
	Left  Direction = "left"
	Right Direction = "right"
	Up    Direction = "up"
	Down  Direction = "down"
	Still Direction = "still"
)

// ParseDirection parses a direction name, ignoring case and surrounding
// space.
func ParseDirection(s string) (Direction, error) {
	switch d := Direction(strings.ToLower(strings.TrimSpace(s))); d {
	case Left, Right, Up, Down, Still:
		return d, nil
	}
	return "", fmt.Errorf("unknown direction %q (want left, right, up, down or still)", s)
}

// Scene is a synthetic clip whose motion is known: a bright white disk
// moving across a static, darker textured background. Tests and the demo
// use it to check labels end to end. Frames are a pure function of the
// fields, so the same Scene always gives the same pixels.
//
// The disk's centre travels from 70% to 30% of the width (Left), 30% to 70%
// (Right), likewise over the height (Up, Down) at mid width, or stays at the
// centre (Still); its diameter is a sixth of the short side. It stays inside
// the central 60% of the picture, so that a 4:3 frame scaled to a short side
// of 256 and centre-cropped to 224 still shows all of it.
type Scene struct {
	Width, Height int
	FPS           int
	Duration      time.Duration
	Direction     Direction
	Seed          int64 // varies the background texture
}

// Validate reports a Scene that cannot be rendered or encoded.
func (s Scene) Validate() error {
	var errs []error
	if s.Width < 16 || s.Height < 16 || s.Width%2 != 0 || s.Height%2 != 0 {
		errs = append(errs, fmt.Errorf("size must be even and at least 16x16, got %dx%d", s.Width, s.Height))
	}
	if s.FPS <= 0 {
		errs = append(errs, fmt.Errorf("fps must be positive, got %d", s.FPS))
	}
	if s.Frames() < 1 {
		errs = append(errs, fmt.Errorf("duration %v holds no frame at %d fps", s.Duration, s.FPS))
	}
	if _, err := ParseDirection(string(s.Direction)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("scene: %w", err)
	}
	return nil
}

// Frames returns the number of frames: Duration times FPS, rounded.
func (s Scene) Frames() int {
	if s.FPS <= 0 || s.Duration <= 0 {
		return 0
	}
	return int((s.Duration*time.Duration(s.FPS) + time.Second/2) / time.Second)
}

// Centre returns where the disk's centre is in frame i, in pixels.
func (s Scene) Centre(i int) (x, y float64) {
	t := 0.0 // progress through the scene, 0..1
	if n := s.Frames(); n > 1 {
		t = math.Min(math.Max(float64(i)/float64(n-1), 0), 1)
	}
	from, to := 0.5, 0.5
	switch s.Direction {
	case Left, Up:
		from, to = 0.7, 0.3
	case Right, Down:
		from, to = 0.3, 0.7
	}
	p := from + (to-from)*t
	x, y = 0.5*float64(s.Width), 0.5*float64(s.Height)
	switch s.Direction {
	case Left, Right:
		x = p * float64(s.Width)
	case Up, Down:
		y = p * float64(s.Height)
	}
	return x, y
}

// Frame renders frame i (0 <= i < Frames(); others are clamped to the ends).
func (s Scene) Frame(i int) *ingest.Image {
	return s.Render(s.Centre(i))
}

// Render draws the disk centred at (cx, cy) over the background. Only the
// size and the seed of s matter; SceneSequence draws its frames with it too.
func (s Scene) Render(cx, cy float64) *ingest.Image {
	img := ingest.NewImage(s.Width, s.Height)
	r := float64(min(s.Width, s.Height)) / 12
	for y := range s.Height {
		for x := range s.Width {
			bg := s.background(x, y)
			// Coverage of the pixel by the disk, anti-aliased over one
			// pixel so that the centroid moves smoothly, not in steps.
			d := math.Hypot(float64(x)+0.5-cx, float64(y)+0.5-cy)
			a := math.Min(math.Max(r+0.5-d, 0), 1)
			var px [3]uint8
			for c := range px {
				px[c] = uint8(math.Round(float64(bg[c])*(1-a) + 255*a))
			}
			img.Set(x, y, px[0], px[1], px[2])
		}
	}
	return img
}

// background returns the texture at (x, y): a soft checker (cells of an
// eighth of the short side) plus seeded per-pixel noise, 20..110 per
// channel, so that it never competes with the white disk.
func (s Scene) background(x, y int) [3]uint8 {
	cell := float64(max(min(s.Width, s.Height)/8, 2))
	// checker is -1..1, v 37..87, noise -15..15.
	checker := math.Sin(math.Pi*float64(x)/cell) * math.Sin(math.Pi*float64(y)/cell)
	v := 62 + 25*checker
	noise := float64(hash3(s.Seed, x, y)%31) - 15
	base := v + noise
	clamp := func(f float64) uint8 { return uint8(math.Round(math.Min(math.Max(f, 20), 110))) }
	// A slight tint so that the picture is not grey; still 20..110.
	return [3]uint8{clamp(base + 6), clamp(base), clamp(base - 6)}
}

// hash3 mixes a seed and a position into 64 bits (splitmix64's finaliser);
// a hash rather than a random stream so that any pixel can be computed
// without the ones before it.
func hash3(seed int64, x, y int) uint64 {
	z := uint64(seed) ^ uint64(x)*0x9E3779B97F4A7C15 ^ uint64(y)*0xC2B2AE3D27D4EB4F
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// WriteFile renders the scene and encodes it as H.264 into path (container
// from the extension, as CreateH264File).
func (s Scene) WriteFile(path string) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("write scene %q: %w", path, err)
	}
	w, err := CreateH264File(path, s.Width, s.Height, s.FPS)
	if err != nil {
		return err
	}
	for i := range s.Frames() {
		if err := w.WriteFrame(s.Frame(i)); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}
