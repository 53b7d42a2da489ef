package camsim

import (
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
