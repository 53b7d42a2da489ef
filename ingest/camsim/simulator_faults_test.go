package camsim

import (
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
)

// AddMJPEGScene: a camera that sends Motion JPEG, which ffprobe reads; the stream says which codec it got and
// which it reads, and keeps retrying with a growing backoff rather than
// hammering the camera.
func TestSimulatorMJPEG(t *testing.T) {
	t.Parallel()
	sim := NewSimulator(SimulatorConfig{Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err := sim.AddMJPEGScene("mjpeg", Scene{Width: 160, Height: 120, FPS: 10, Duration: time.Second, Direction: Right}); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddMJPEGScene("odd", Scene{Width: 162, Height: 120, FPS: 10, Duration: time.Second, Direction: Right}); err == nil ||
		!strings.Contains(err.Error(), "multiples of 8") {
		t.Errorf("162x120 Motion JPEG: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	if err := sim.SwitchSceneSequence("mjpeg", 160, 120, 10, []SceneSegment{{Right, time.Second}}); err == nil {
		t.Error("a Motion JPEG path switched to H.264")
	}
	streams, err := ffprobe(t, sim.URL("mjpeg"), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || streams[0].CodecName != "mjpeg" {
		t.Errorf("ffprobe sees %+v, want one mjpeg stream", streams)
	}
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("mjpeg"), BackoffMin: 20 * time.Millisecond, BackoffMax: 40 * time.Millisecond}, nil)
	st := waitStatus(t, s, 10*time.Second, "retrying", func(st ingest.Status) bool { return st.State == ingest.StateRetrying })
	want := "connect " + sim.URL("mjpeg") + ": unsupported codec: the stream offers M-JPEG; H.264 and H.265 video are supported"
	if st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}
	if st.FramesDecoded != 0 || st.AccessUnits != 0 {
		t.Errorf("decoded %d frames of %d access units from Motion JPEG", st.FramesDecoded, st.AccessUnits)
	}
	// The JPEG pictures are whole: ffprobe reads the scene's size.
	if len(streams) == 1 && (streams[0].Width != 160 || streams[0].Height != 120) {
		t.Errorf("ffprobe sees %dx%d, want 160x120", streams[0].Width, streams[0].Height)
	}
}

// 5% packet loss over UDP on a slow stream (10 fps, about 15 packets a
// second): gortsplib holds the packets after each lost one until 64 more
// have come, seconds here, so access units stop for longer than the read
// timeout while packets keep arriving. The stream must stay connected and
// keep making windows (it reconnected every few seconds before source.silence
// looked at the bytes arriving too).
func TestStreamPacketLossSlowUDP(t *testing.T) {
	t.Parallel()
	sim := NewSimulator(SimulatorConfig{Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err := sim.AddSceneSequence("cam", 160, 120, 10, []SceneSegment{{Right, 4 * time.Second}, {Left, 4 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("cam"), Transport: ingest.TransportUDP, Window: 1600 * time.Millisecond,
		Stride: 400 * time.Millisecond, ReadTimeout: 2 * time.Second}, nil)
	nextWindow(t, s, 20*time.Second)
	if err := sim.SetPacketLoss("cam", 0.05); err != nil {
		t.Fatal(err)
	}
	var last ingest.Window
	for range 20 { // 8 s of stride
		last = nextWindow(t, s, 20*time.Second)
	}
	st := s.Status()
	t.Logf("last %v; status %+v", &last, st)
	if st.State != ingest.StatePlaying || st.Reconnects != 0 || st.Transport != "UDP" || st.LastError != "" {
		t.Errorf("during the loss: %s over %s after %d reconnects (%s)", st.State, st.Transport, st.Reconnects, st.LastError)
	}
	if st.PacketsLost == 0 || sim.Stats("cam").PacketsDropped == 0 {
		t.Errorf("lost %d packets, the simulator dropped %d", st.PacketsLost, sim.Stats("cam").PacketsDropped)
	}
}

// A still picture full of detail, as a camera encoding a still scene at a
// fixed bitrate sends it: every key frame is one burst of about 150
// datagrams (the P-frames between them are nearly empty), more than
// Linux's default UDP receive buffer holds. Over UDP the stream must lose
// none of them: the source asks for a larger buffer.
func TestStreamUDPKeyFrameBurst(t *testing.T) {
	t.Parallel()
	const w, h, fps = 640, 360, 10
	img := ingest.NewImage(w, h)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	clip, err := sceneClip(w, h, fps, fps, 0, func(int) *ingest.Image { return img })
	if err != nil {
		t.Fatal(err)
	}
	key := 0
	for _, n := range clip.aus[0] {
		key += len(n)
	}
	if key < 180_000 {
		t.Fatalf("the key frame is %d bytes: too small to test a burst", key)
	}
	sim := NewSimulator(SimulatorConfig{Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err := sim.addClip("still", clip, slog.String("clip", "noise")); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("still"), Transport: ingest.TransportUDP, Window: 1600 * time.Millisecond,
		Stride: 400 * time.Millisecond}, nil)
	// Five key frames (one a loop) after the first window.
	// (Access units before the first key frame are skipped by design.)
	nextWindow(t, s, 20*time.Second)
	st0, loops := s.Status(), sim.Stats("still").Loops
	for sim.Stats("still").Loops < loops+5 {
		nextWindow(t, s, 20*time.Second)
	}
	st := s.Status()
	t.Logf("key frame %d bytes; status %+v", key, st)
	lost, skipped := st.PacketsLost-st0.PacketsLost, st.SkippedAUs-st0.SkippedAUs
	if st.Transport != "UDP" || lost != 0 || skipped != 0 || st.DecodeErrors != 0 {
		t.Errorf("over %s: %d packets lost, %d access units skipped, %d decode errors; want UDP and none",
			st.Transport, lost, skipped, st.DecodeErrors)
	}
}
