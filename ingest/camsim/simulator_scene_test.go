package camsim

import (
	"math"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
)

func TestSceneSequenceContinuous(t *testing.T) {
	tests := []struct {
		name     string
		segments []SceneSegment
	}{
		{"bounce", []SceneSegment{{ingest.Right, 2 * time.Second}, {ingest.Left, 2 * time.Second}}},
		{"square", []SceneSegment{{ingest.Right, time.Second}, {ingest.Down, time.Second}, {ingest.Left, time.Second}, {ingest.Up, time.Second}}},
		{"uneven", []SceneSegment{{ingest.Left, 3 * time.Second}, {ingest.Still, time.Second}, {ingest.Right, time.Second}}},
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
		Segments: []SceneSegment{{ingest.Right, 4 * time.Second}, {ingest.Left, 4 * time.Second}}}
	for _, tt := range []struct {
		at   time.Duration
		want ingest.Direction
	}{
		{0, ingest.Right}, {3900 * time.Millisecond, ingest.Right}, {4 * time.Second, ingest.Left},
		{7900 * time.Millisecond, ingest.Left}, {8 * time.Second, ingest.Right}, {13 * time.Second, ingest.Left},
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
		if got := x1 - x0; (want == ingest.Right) != (got > 0) {
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
		{"bounce", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{ingest.Right, time.Second}, {ingest.Left, time.Second}}}, true},
		{"no segments", SceneSequence{Width: 64, Height: 48, FPS: 5}, false},
		{"off the picture", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{ingest.Up, time.Second}, {ingest.Up, time.Second}}}, false},
		{"empty segment", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{ingest.Right, time.Millisecond}}}, false},
		{"bad direction", SceneSequence{Width: 64, Height: 48, FPS: 5, Segments: []SceneSegment{{"sideways", time.Second}}}, false},
		{"odd size", SceneSequence{Width: 63, Height: 48, FPS: 5, Segments: []SceneSegment{{ingest.Right, time.Second}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.q.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
