package camsim

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
)

func TestParseDirection(t *testing.T) {
	tests := []struct {
		in      string
		want    Direction
		wantErr bool
	}{
		{"left", Left, false},
		{"Right", Right, false},
		{" UP ", Up, false},
		{"down", Down, false},
		{"still", Still, false},
		{"", "", true},
		{"sideways", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseDirection(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseDirection(%q) = %q, %v; want %q (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "want left, right, up, down or still") {
				t.Errorf("error %q does not list the directions", err)
			}
		})
	}
}

// brightCentroid returns the centroid of the pixels brighter than the
// background (which never exceeds 110), weighted by how much brighter, so
// that the disk's anti-aliased edge counts in proportion.
func brightCentroid(img *ingest.Image) (x, y, weight float64) {
	var sx, sy float64
	for py := range img.H {
		for px := range img.W {
			r, g, b := img.At(px, py)
			w := (float64(r)+float64(g)+float64(b))/3 - 128
			if w <= 0 {
				continue
			}
			sx += w * (float64(px) + 0.5)
			sy += w * (float64(py) + 0.5)
			weight += w
		}
	}
	if weight == 0 {
		return math.NaN(), math.NaN(), 0
	}
	return sx / weight, sy / weight, weight
}

func TestSceneFrame(t *testing.T) {
	for _, d := range []Direction{Left, Right, Up, Down, Still} {
		t.Run(string(d), func(t *testing.T) {
			// 4:3, so the central-60% promise matters for a 224 crop.
			s := Scene{Width: 320, Height: 240, FPS: 5, Duration: 2 * time.Second, Direction: d, Seed: 7}
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
			for i := range s.Frames() {
				img := s.Frame(i)
				cx, cy := s.Centre(i)
				x, y, _ := brightCentroid(img)
				if math.Abs(x-cx) > 0.05 || math.Abs(y-cy) > 0.05 {
					t.Errorf("frame %d: bright centroid (%.2f, %.2f), want the disk's centre (%.2f, %.2f)", i, x, y, cx, cy)
				}
				if r, g, b := img.At(int(cx), int(cy)); r != 255 || g != 255 || b != 255 {
					t.Errorf("frame %d: centre pixel (%d, %d, %d), want white", i, r, g, b)
				}
				// Disk radius is 240/12 = 20: everything bright stays in
				// the central 60% (x 64..256, y 48..192).
				for py := range img.H {
					for px := range img.W {
						r, _, _ := img.At(px, py)
						if r > 110 && (px < 64 || px >= 256 || py < 48 || py >= 192) {
							t.Fatalf("frame %d: bright pixel at (%d, %d), outside the central 60%%", i, px, py)
						}
					}
				}
			}
		})
	}
}

func TestSceneBackground(t *testing.T) {
	s := Scene{Width: 96, Height: 64, FPS: 10, Duration: time.Second, Direction: Right, Seed: 1}
	a, b := s.Frame(3), s.Frame(3)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("the same frame rendered twice differs")
	}
	other := s
	other.Seed = 2
	if bytes.Equal(a.Pix, other.Frame(3).Pix) {
		t.Error("seeds 1 and 2 give the same picture")
	}
	// Far from the disk: only background, 20..110 (under ~45% of white).
	lo, hi := 255, 0
	for y := range s.Height {
		for x := range 16 {
			r, g, b := a.At(x, y)
			lo = min(lo, int(r), int(g), int(b))
			hi = max(hi, int(r), int(g), int(b))
		}
	}
	t.Logf("background values %d..%d", lo, hi)
	if lo < 20 || hi > 110 || hi-lo < 40 {
		t.Errorf("background values %d..%d, want textured within 20..110", lo, hi)
	}
}

func TestSceneValidate(t *testing.T) {
	ok := Scene{Width: 64, Height: 48, FPS: 10, Duration: 2 * time.Second, Direction: Right}
	tests := []struct {
		name    string
		edit    func(*Scene)
		wantMsg string
	}{
		{"odd width", func(s *Scene) { s.Width = 63 }, "size must be even and at least 16x16, got 63x48"},
		{"zero fps", func(s *Scene) { s.FPS = 0 }, "fps must be positive, got 0"},
		{"too short", func(s *Scene) { s.Duration = 10 * time.Millisecond }, "duration 10ms holds no frame at 10 fps"},
		{"bad direction", func(s *Scene) { s.Direction = "north" }, `unknown direction "north"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.edit(&s)
			err := s.WriteFile(filepath.Join(t.TempDir(), "x.mp4"))
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("WriteFile = %v, want an error containing %q", err, tt.wantMsg)
			}
		})
	}
}

// A scene written to a file and decoded back shows its motion: the bright
// shape's centroid moves the named way, by the planned 40% of the frame.
func TestSceneWriteFileMotion(t *testing.T) {
	tests := []struct {
		dir    Direction
		dx, dy float64 // planned total movement, pixels
	}{
		{Right, 0.4 * 64, 0},
		{Left, -0.4 * 64, 0},
		{Down, 0, 0.4 * 48},
		{Up, 0, -0.4 * 48},
		{Still, 0, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.dir), func(t *testing.T) {
			s := Scene{Width: 64, Height: 48, FPS: 10, Duration: 2 * time.Second, Direction: tt.dir, Seed: 42}
			path := filepath.Join(t.TempDir(), "scene.mp4")
			if err := s.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			probe := ffprobeVideo(t, path)
			if probe["codec_name"] != "h264" || probe["nb_read_frames"] != "20" || probe["width"] != "64" || probe["height"] != "48" {
				t.Fatalf("ffprobe says %v, want h264, 20 frames, 64x48", probe)
			}

			all := make([]int, 20)
			for i := range all {
				all[i] = i
			}
			imgs := decodeAll(t, path, all)
			xs, ys := make([]float64, len(imgs)), make([]float64, len(imgs))
			for i, img := range imgs {
				var w float64
				xs[i], ys[i], w = brightCentroid(img)
				if w == 0 {
					t.Fatalf("frame %d: no bright shape", i)
				}
				cx, cy := s.Centre(i)
				if math.Abs(xs[i]-cx) > 0.5 || math.Abs(ys[i]-cy) > 0.5 {
					t.Errorf("frame %d: centroid (%.2f, %.2f), planned (%.2f, %.2f)", i, xs[i], ys[i], cx, cy)
				}
			}
			t.Logf("centroid x %s", fmtFloats(xs))
			t.Logf("centroid y %s", fmtFloats(ys))

			// Each step goes the planned way (1.35 px a frame across, 1.01
			// down): decoding noise is far smaller.
			stepX, stepY := tt.dx/19, tt.dy/19
			for i := 1; i < len(xs); i++ {
				gx, gy := xs[i]-xs[i-1], ys[i]-ys[i-1]
				if math.Abs(gx-stepX) > 0.4 || math.Abs(gy-stepY) > 0.4 {
					t.Errorf("frame %d: centroid moved (%+.2f, %+.2f), want (%+.2f, %+.2f)", i, gx, gy, stepX, stepY)
				}
			}
			if gx, gy := xs[19]-xs[0], ys[19]-ys[0]; math.Abs(gx-tt.dx) > 1 || math.Abs(gy-tt.dy) > 1 {
				t.Errorf("centroid moved (%+.2f, %+.2f) in all, want (%+.2f, %+.2f)", gx, gy, tt.dx, tt.dy)
			}
		})
	}
}

func fmtFloats(v []float64) string {
	s := make([]string, len(v))
	for i, f := range v {
		s[i] = strconv.FormatFloat(f, 'f', 1, 64)
	}
	return fmt.Sprint(s)
}
