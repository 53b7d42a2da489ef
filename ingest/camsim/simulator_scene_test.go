package camsim

import (
	"math"
	"testing"
	"time"
)

func TestSceneSequenceContinuous(t *testing.T) {
	tests := []struct {
		name     string
		segments []SceneSegment
	}{
		{"bounce", []SceneSegment{{Right, 2 * time.Second}, {Left, 2 * time.Second}}},
		{"square", []SceneSegment{{Right, time.Second}, {Down, time.Second}, {Left, time.Second}, {Up, time.Second}}},
		{"uneven", []SceneSegment{{Left, 3 * time.Second}, {Still, time.Second}, {Right, time.Second}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := SceneSequence{Width: 320, Height: 240, FPS: 10, Segments: tt.segments}
			if err := q.Validate(); err != nil {
				t.Fatal(err)
			}
			n := q.Frames()
			// The fastest leg (40% of the width in its duration) bounds
			// every step, the wrap from the last frame to the first
			// included: a looped closed path never jumps.
			var maxStep float64
			for i := range q.Segments {
				maxStep = max(maxStep, 0.4*float64(q.Width)/float64(q.segmentFrames(i)))
			}
			for i := range n {
				x0, y0 := q.Centre(i)
				x1, y1 := q.Centre((i + 1) % n)
				if d := math.Hypot(x1-x0, y1-y0); d > maxStep+1e-9 {
					t.Errorf("frame %d -> %d: the disk moves %.2f px, more than %.2f", i, (i+1)%n, d, maxStep)
				}
				if x0 < 0.3*float64(q.Width)-1e-9 || x0 > 0.7*float64(q.Width)+1e-9 ||
					y0 < 0.3*float64(q.Height)-1e-9 || y0 > 0.7*float64(q.Height)+1e-9 {
					t.Errorf("frame %d: disk at (%.1f, %.1f), outside the centre", i, x0, y0)
				}
			}
		})
	}
}

func TestSceneSequenceDirection(t *testing.T) {
	q := SceneSequence{Width: 320, Height: 240, FPS: 10,
		Segments: []SceneSegment{{Right, 4 * time.Second}, {Left, 4 * time.Second}}}
	for _, tt := range []struct {
		at   time.Duration
		want Direction
	}{
		{0, Right}, {3900 * time.Millisecond, Right}, {4 * time.Second, Left},
		{7900 * time.Millisecond, Left}, {8 * time.Second, Right}, {13 * time.Second, Left},
	} {
		if got := q.DirectionAt(tt.at); got != tt.want {
			t.Errorf("DirectionAt(%v) = %s, want %s", tt.at, got, tt.want)
		}
	}
	// The disk does move that way: the bright centroid of the pixels.
	for _, i := range []int{5, 45} {
		x0, _, _ := brightCentroid(q.Frame(i))
		x1, _, _ := brightCentroid(q.Frame(i + 10))
		want := q.DirectionAt(time.Duration(i) * time.Second / 10)
		if got := x1 - x0; (want == Right) != (got > 0) {
			t.Errorf("frames %d..%d: centroid moved %.1f px, want %s", i, i+10, got, want)
		}
		cx, cy := q.Centre(i)
		if x, y, _ := brightCentroid(q.Frame(i)); math.Hypot(x-cx, y-cy) > 1 {
			t.Errorf("frame %d: disk drawn at (%.1f, %.1f), Centre says (%.1f, %.1f)", i, x, y, cx, cy)
		}
	}
	if got, want := q.Duration(), 8*time.Second; got != want {
		t.Errorf("Duration() = %v, want %v", got, want)
	}
}

func TestSceneSequenceValidate(t *testing.T) {
	tests := []struct {
		name string
		q    SceneSequence
		ok   bool
	}{
		{"bounce", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{Right, time.Second}, {Left, time.Second}}}, true},
		{"no segments", SceneSequence{Width: 64, Height: 48, FPS: 5}, false},
		{"off the picture", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{Up, time.Second}, {Up, time.Second}}}, false},
		{"empty segment", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{Right, time.Millisecond}}}, false},
		{"bad direction", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{"sideways", time.Second}}}, false},
		{"odd size", SceneSequence{Width: 63, Height: 48, FPS: 5, Segments: []SceneSegment{{Right, time.Second}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.q.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
