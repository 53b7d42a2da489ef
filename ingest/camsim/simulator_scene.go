package camsim

import (
	"errors"
	"fmt"
	"time"

	"github.com/actiond/actiond/ingest"
)

// SceneSegment is one leg of a SceneSequence: the disk moves in Direction
// (or stays, for Still) for Duration.
type SceneSegment struct {
	Direction Direction
	Duration  time.Duration
}

// SceneSequence is a Scene whose motion changes direction: the disk follows
// the segments in turn, each one starting where the last one ended, so its
// position never jumps. A moving segment covers 40% of the width or height,
// as a whole Scene does, whatever its duration; the disk starts where the
// first horizontal and the first vertical segment need it (30% or 70%, else
// the centre) and must stay within 30%..70% of the picture. A sequence that
// ends where it started (right then left) loops without a jump, which is
// what the first-run demo camera shows: a disk bouncing back and forth.
type SceneSequence struct {
	Width, Height int
	FPS           int
	Segments      []SceneSegment
	Seed          int64 // varies the background texture
}

// sequenceTravel is how far a moving segment takes the disk, as a share of
// the width or height: the same as a whole Scene.
const sequenceTravel = 0.4

// Validate reports a sequence that cannot be rendered or encoded, or whose
// path leaves the centre of the picture.
func (q SceneSequence) Validate() error {
	base := Scene{Width: q.Width, Height: q.Height, FPS: q.FPS, Duration: time.Second, Direction: Still}
	var errs []error
	if err := base.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(q.Segments) == 0 {
		errs = append(errs, errors.New("scene sequence: no segments"))
	}
	for i, seg := range q.Segments {
		if _, err := ParseDirection(string(seg.Direction)); err != nil {
			errs = append(errs, fmt.Errorf("scene sequence: segment %d: %w", i, err))
			continue
		}
		if q.FPS > 0 && q.segmentFrames(i) < 1 {
			errs = append(errs, fmt.Errorf("scene sequence: segment %d: duration %v holds no frame at %d fps",
				i, seg.Duration, q.FPS))
		}
	}
	if len(errs) == 0 {
		x, y := q.start()
		for i, seg := range q.Segments {
			dx, dy := segmentStep(seg.Direction)
			x, y = x+dx, y+dy
			if x < 0.3-1e-9 || x > 0.7+1e-9 || y < 0.3-1e-9 || y > 0.7+1e-9 {
				errs = append(errs, fmt.Errorf("scene sequence: segment %d (%s) takes the disk out of the centre of the picture",
					i, seg.Direction))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// segmentFrames returns the frame count of segment i: its duration times
// FPS, rounded, as Scene.Frames.
func (q SceneSequence) segmentFrames(i int) int {
	return Scene{FPS: q.FPS, Duration: q.Segments[i].Duration}.Frames()
}

// Frames returns the number of frames of one pass through the segments.
func (q SceneSequence) Frames() int {
	n := 0
	for i := range q.Segments {
		n += q.segmentFrames(i)
	}
	return n
}

// Duration returns the length of one pass through the segments.
func (q SceneSequence) Duration() time.Duration {
	if q.FPS <= 0 {
		return 0
	}
	return time.Duration(q.Frames()) * time.Second / time.Duration(q.FPS)
}

// start returns where the disk is in frame 0, as shares of width and height.
func (q SceneSequence) start() (x, y float64) {
	x, y = -1, -1
	for _, seg := range q.Segments {
		switch {
		case seg.Direction == Right && x < 0:
			x = 0.3
		case seg.Direction == Left && x < 0:
			x = 0.7
		case seg.Direction == Down && y < 0:
			y = 0.3
		case seg.Direction == Up && y < 0:
			y = 0.7
		}
	}
	if x < 0 {
		x = 0.5
	}
	if y < 0 {
		y = 0.5
	}
	return x, y
}

// segmentStep returns how far a whole segment moves the disk.
func segmentStep(d Direction) (dx, dy float64) {
	switch d {
	case Left:
		return -sequenceTravel, 0
	case Right:
		return sequenceTravel, 0
	case Up:
		return 0, -sequenceTravel
	case Down:
		return 0, sequenceTravel
	}
	return 0, 0
}

// locate returns the segment that frame i belongs to and i's position in it
// (i clamped to 0..Frames()-1).
func (q SceneSequence) locate(i int) (seg, k int) {
	i = max(min(i, q.Frames()-1), 0)
	for seg = range q.Segments {
		n := q.segmentFrames(seg)
		if i < n {
			return seg, i
		}
		i -= n
	}
	return len(q.Segments) - 1, q.segmentFrames(len(q.Segments)-1) - 1
}

// Centre returns where the disk's centre is in frame i, in pixels. Within a
// segment of n frames, frame k is k/n of the way along it, so that the first
// frame of the next segment (or of the next loop, for a closed path) is one
// even step further: the speed does not change at a turn.
func (q SceneSequence) Centre(i int) (x, y float64) {
	if len(q.Segments) == 0 {
		return 0.5 * float64(q.Width), 0.5 * float64(q.Height)
	}
	seg, k := q.locate(i)
	x, y = q.start()
	for j := range seg {
		dx, dy := segmentStep(q.Segments[j].Direction)
		x, y = x+dx, y+dy
	}
	dx, dy := segmentStep(q.Segments[seg].Direction)
	t := float64(k) / float64(max(q.segmentFrames(seg), 1))
	return (x + dx*t) * float64(q.Width), (y + dy*t) * float64(q.Height)
}

// DirectionAt returns the direction the disk moves in at time t after the
// start of a pass (t wraps around, as the simulator loops the sequence).
func (q SceneSequence) DirectionAt(t time.Duration) Direction {
	n := q.Frames()
	if n == 0 {
		return Still
	}
	i := int(t * time.Duration(q.FPS) / time.Second)
	seg, _ := q.locate(((i % n) + n) % n)
	return q.Segments[seg].Direction
}

// Frame renders frame i (0 <= i < Frames(); others are clamped to the ends)
// with the same drawing as Scene.
func (q SceneSequence) Frame(i int) *ingest.Image {
	cx, cy := q.Centre(i)
	return Scene{Width: q.Width, Height: q.Height, Seed: q.Seed}.Render(cx, cy)
}

// Bounce is the demo camera's motion, looped: right for 4 s, then left for
// 4 s. A window that spans a turn gets the label of the direction it sees
// the longer.
var Bounce = []SceneSegment{
	{Direction: Right, Duration: 4 * time.Second},
	{Direction: Left, Duration: 4 * time.Second},
}

// BounceWindow and BounceStride: Bounce's disk turns every 4 s, so a window
// must be shorter than that to see one direction at a time, and long
// enough for the disk to move well past the motion model's threshold (4%
// of the frame) within it. 2.5 s of 16 slots, a window every 4 slots
// (0.625 s): each leg gives 5 or 6 windows whose majority moves its way,
// so moving_right and moving_left take turns, each starting about 1.25 s
// after its leg begins (2 windows in a row).
const (
	BounceWindow = 2500 * time.Millisecond
	BounceStride = 625 * time.Millisecond
)
