package ingest_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/models/motion"
)

// End to end through a real RTSP peer, the decoder, the window and the
// motion model on ONNX Runtime: the label is what the scene showed during
// the window's time range.

func motionSession(t *testing.T) *engine.Session {
	t.Helper()
	path := filepath.Join(t.TempDir(), "motion.onnx")
	if err := motion.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	sess, err := engine.Open(path, engine.Options{Threads: 1})
	if err != nil {
		t.Fatalf("open motion model (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// classify returns the motion model's top label for one window.
func classify(t *testing.T, sess *engine.Session, tensor []float32) (string, float32) {
	t.Helper()
	logits, err := sess.Run(tensor, 1)
	if err != nil {
		t.Fatal(err)
	}
	top := engine.TopK(engine.Softmax(logits), 1)[0]
	return motion.Labels[top.Index], top.Score
}

func startSimulator(t *testing.T, add func(*camsim.Simulator) error) (sim *camsim.Simulator, started time.Time) {
	t.Helper()
	sim = camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := add(sim); err != nil {
		t.Fatal(err)
	}
	started = time.Now()
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, started
}

// A one-shot capture of a disk moving right, as `actionctl classify
// rtsp://...` does it: a full 10s window from the stream's first frame.
func TestCaptureWindowMotion(t *testing.T) {
	t.Parallel()
	sess := motionSession(t)
	// 20s of motion, so that the 10s window (which starts at the first
	// key frame after connecting) never spans the loop's jump back.
	scene := camsim.Scene{Width: 160, Height: 120, FPS: 12, Duration: 20 * time.Second, Direction: camsim.Right, Seed: 3}
	sim, _ := startSimulator(t, func(sim *camsim.Simulator) error { return sim.AddScene("right", scene) })

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	clip, err := ingest.CaptureWindow(ctx, sim.URL("right"), ingest.StreamConfig{}, motion.Manifest(), nil)
	if err != nil {
		t.Fatal(err)
	}
	label, score := classify(t, sess, clip.Tensor)
	t.Logf("%v: %s (%.3f); %s over %s, %dx%d, %d frames", &clip.Window, label, score, clip.Codec, clip.Transport, clip.Width, clip.Height, clip.Frames)
	if label != "moving_right" {
		t.Errorf("label %s (%.3f), want moving_right", label, score)
	}
	if clip.MediaStart != 0 || clip.MediaEnd != 10*time.Second || clip.Clock != ingest.ClockRTCP {
		t.Errorf("window %v..%v by the %s clock, want 0s..10s by rtcp", clip.MediaStart, clip.MediaEnd, clip.Clock)
	}
	if clip.FramesSeen < 119 || clip.FramesSeen > 121 || clip.Codec != ingest.CodecH264 || clip.Width != 160 {
		t.Errorf("%d frames seen (want 120), %s %dx%d", clip.FramesSeen, clip.Codec, clip.Width, clip.Height)
	}
}

// A live stream of a disk going right for 4s, then left for 4s, looped:
// each window gets the label of what the camera showed during the window's
// capture time range, and media time agrees with capture time.
func TestStreamMotionLabelsFollowTheScene(t *testing.T) {
	t.Parallel()
	sess := motionSession(t)
	const leg = 4 * time.Second
	sim, began := startSimulator(t, func(sim *camsim.Simulator) error {
		return sim.AddSceneSequence("seq", 160, 120, 12, []camsim.SceneSegment{
			{Direction: camsim.Right, Duration: leg}, {Direction: camsim.Left, Duration: leg},
		})
	})
	s, err := ingest.NewStream(ingest.StreamConfig{Name: "seq", URL: sim.URL("seq"), Transport: ingest.TransportTCP,
		Window: 2 * time.Second, Stride: time.Second}, motion.Manifest(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer s.Close()

	var (
		checked int
		offset  time.Duration // capture time minus media time, from the first window
	)
	deadline := time.After(40 * time.Second)
	for checked < 6 {
		var w ingest.Window
		select {
		case w = <-s.Windows():
		case <-deadline:
			t.Fatalf("only %d windows checked; status %+v", checked, s.Status())
		}
		if w.Clock != ingest.ClockRTCP {
			continue // before the first sender report
		}
		if offset == 0 {
			offset = w.AbsStart.Sub(began) - w.MediaStart
		} else if d := w.AbsStart.Sub(began) - w.MediaStart - offset; d.Abs() > 5*time.Millisecond {
			t.Errorf("%v: capture time and media time drift apart by %v", &w, d)
		}
		// Where the scene was during the window: its schedule started
		// with the simulator, within a few milliseconds of began.
		const slack = 50 * time.Millisecond
		from := w.AbsStart.Sub(began) % (2 * leg)
		if from > 2*leg-slack {
			from -= 2 * leg
		}
		to := from + w.Duration()
		want := ""
		switch {
		case from >= -slack && to <= leg+slack:
			want = "moving_right"
		case from >= leg-slack && to <= 2*leg+slack:
			want = "moving_left"
		}
		label, score := classify(t, sess, w.Tensor)
		t.Logf("%v: scene %v..%v: %s (%.3f), want %q", &w, from, to, label, score, want)
		if want == "" {
			continue // spans a turn
		}
		if label != want {
			t.Errorf("window %d (scene %v..%v): %s, want %s", w.Seq, from, to, label, want)
		}
		checked++
	}
}
