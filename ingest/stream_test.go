package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/ingest/internal/ingesttest"
	"github.com/actiond/actiond/internal/testenv"
)

// The stream tests run against the RTSP Simulator on loopback: a real
// gortsplib server, real RTP, real libavcodec.

// liveScene is small and short, so that rendering and encoding it costs
// little; it loops every 2s.
var liveScene = camsim.Scene{Width: 160, Height: 120, FPS: 25, Duration: 2 * time.Second, Direction: camsim.Left}

// liveSim starts a simulator on a free loopback port serving liveScene at
// "cam"; the test's cleanup closes it.
func liveSim(t *testing.T, cfg camsim.SimulatorConfig) *camsim.Simulator {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	sim := camsim.NewSimulator(cfg)
	if err := sim.AddScene("cam", liveScene); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// Helpers shared with ingest's own tests (helpers_test.go).
var (
	liveModel    = ingesttest.LiveModel
	newLogBuffer = ingesttest.NewLogBuffer
	startStream  = ingest.StartStream
	nextWindow   = ingesttest.NextWindow[ingest.Window, ingest.Status]
	waitStatus   = ingesttest.WaitStatus[ingest.Status]
	sharedClip   = ingesttest.SharedClip
	needTool     = testenv.Tool
	rssBytes     = ingesttest.RSS
	cHeapInUse   = ingest.CHeapInUse
	capture      = ingest.Capture
	nalType      = ingest.NALType
)

// A 28 fps file served live: the window sees 280 frames in 10s, samples
// 16 of them, converts about one frame per slot, and times itself by the
// camera's sender reports.
func TestStreamReadsH264(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	if err := sim.AddFile("arm", sharedClip(t, "arm_wrestling.mp4")); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("arm"), Transport: ingest.TransportTCP}, nil)
	w0 := nextWindow(t, s, 30*time.Second)
	w1 := nextWindow(t, s, 5*time.Second)
	st := s.Status()
	t.Logf("%v\n%v\nstatus %+v", &w0, &w1, st)

	if w0.MediaStart != 0 || w0.MediaEnd != 10*time.Second || w1.MediaStart != 1250*time.Millisecond || w1.MediaEnd != 11250*time.Millisecond {
		t.Errorf("windows span %v..%v and %v..%v, want 0s..10s and 1.25s..11.25s", w0.MediaStart, w0.MediaEnd, w1.MediaStart, w1.MediaEnd)
	}
	for _, w := range []ingest.Window{w0, w1} {
		if w.FramesSeen < 279 || w.FramesSeen > 281 || math.Abs(w.FPS-28) > 0.2 {
			t.Errorf("window %d saw %d frames (%.2f fps), want 280 (28 fps)", w.Seq, w.FramesSeen, w.FPS)
		}
		if w.FramesKept != 16 || len(w.Tensor) != 16*3*224*224 || w.Epoch != 1 || w.Stream != "cam" {
			t.Errorf("window %d: %d frames kept, tensor %d, epoch %d, stream %q", w.Seq, w.FramesKept, len(w.Tensor), w.Epoch, w.Stream)
		}
		// The simulator sends sender reports every second, stamped with
		// its send schedule: capture time is about when we connected.
		if w.Clock != ingest.ClockRTCP || w.AbsEnd.Sub(w.AbsStart) != 10*time.Second {
			t.Errorf("window %d: %s clock, %v long", w.Seq, w.Clock, w.AbsEnd.Sub(w.AbsStart))
		}
		if d := w.AbsStart.Sub(began) - w.MediaStart; d.Abs() > 2*time.Second {
			t.Errorf("window %d starts %v after the test began, want about %v", w.Seq, w.AbsStart.Sub(began), w.MediaStart)
		}
	}
	if w0.Seq != 0 || w1.Seq != 1 {
		t.Errorf("seq %d, %d", w0.Seq, w1.Seq)
	}
	if st.State != ingest.StatePlaying || st.Codec != ingest.CodecH264 || st.Transport != "TCP" || st.Width != 340 || st.Height != 256 {
		t.Errorf("status %s %s %s %dx%d", st.State, st.Codec, st.Transport, st.Width, st.Height)
	}
	// Only frames nearest a slot centre are converted: 18 slots settled
	// for two windows, against ~320 frames decoded.
	if st.FramesConverted > 20 || st.FramesDecoded < 300 {
		t.Errorf("%d frames converted of %d decoded, want about one per slot", st.FramesConverted, st.FramesDecoded)
	}
	if st.Window != 10*time.Second || st.Stride != 1250*time.Millisecond || st.Slot != 625*time.Millisecond {
		t.Errorf("effective window %v stride %v slot %v", st.Window, st.Stride, st.Slot)
	}
	if st.DecodeErrors != 0 || st.DroppedAUs != 0 || st.PacketsLost != 0 {
		t.Errorf("trouble on a clean loopback stream: %+v", st)
	}
}

// Every transport plays; auto falls back to TCP when the camera offers no
// UDP.
func TestStreamTransports(t *testing.T) {
	t.Parallel()
	withUDP := liveSim(t, camsim.SimulatorConfig{})
	tcpOnly := liveSim(t, camsim.SimulatorConfig{DisableUDP: true})
	tests := []struct {
		sim       *camsim.Simulator
		transport ingest.Transport
		want      string
	}{
		{withUDP, ingest.TransportAuto, "UDP"},
		{withUDP, ingest.TransportUDP, "UDP"},
		{withUDP, ingest.TransportTCP, "TCP"},
		{tcpOnly, ingest.TransportAuto, "TCP"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s→%s", tt.transport, tt.want), func(t *testing.T) {
			t.Parallel()
			s := startStream(t, ingest.StreamConfig{URL: tt.sim.URL("cam"), Transport: tt.transport, Window: 2 * time.Second}, nil)
			w := nextWindow(t, s, 20*time.Second)
			st := s.Status()
			if st.Transport != tt.want {
				t.Errorf("transport %q, want %q", st.Transport, tt.want)
			}
			if w.MediaEnd-w.MediaStart != 2*time.Second || w.FramesSeen < 45 {
				t.Errorf("%v", &w)
			}
		})
	}
}

// A camera that drops the connection is reconnected; the window starts a
// new epoch and media time goes on.
func TestStreamReconnectsAfterDrop(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("cam"), Transport: ingest.TransportTCP, Window: 2 * time.Second,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, nil)
	w0 := nextWindow(t, s, 20*time.Second)
	if err := sim.DropConnections("cam"); err != nil {
		t.Fatal(err)
	}
	var states []ingest.State
	var w ingest.Window
	deadline := time.After(20 * time.Second)
	for w.Epoch < 2 {
		select {
		case st := <-s.StatusChanges():
			states = append(states, st.State)
			if st.State == ingest.StateRetrying {
				t.Logf("retrying: %s", st.LastError)
			}
		case w = <-s.Windows():
		case <-deadline:
			t.Fatalf("no window of a second epoch; status %+v", s.Status())
		}
	}
	st := s.Status()
	t.Logf("states %v; %v; status %+v", states, &w, st)
	if !strings.Contains(fmt.Sprint(states), "retrying connecting playing") {
		t.Errorf("states %v, want retrying, connecting, playing", states)
	}
	if st.Reconnects != 1 || st.Epoch != 2 || st.EpochReason != "reconnected" || st.LastError == "" {
		t.Errorf("reconnects %d, epoch %d (%s), last error %q", st.Reconnects, st.Epoch, st.EpochReason, st.LastError)
	}
	if w.MediaStart <= w0.MediaEnd || w.Seq <= w0.Seq {
		t.Errorf("window after the reconnect %v is not after %v", &w, &w0)
	}
}

// A connection that stays open but sends nothing is lost after the read
// timeout, and the stream comes back when the camera does.
func TestStreamStallReadTimeout(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	// The read timeout is longer than the camera's key frame interval
	// (1s), which a reader joining mid-way waits for.
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("cam"), Transport: ingest.TransportTCP, Window: 2 * time.Second,
		ReadTimeout: 1200 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, nil)
	waitStatus(t, s, 20*time.Second, "decoding", func(st ingest.Status) bool { return st.FramesDecoded > 10 })
	if err := sim.Stall("cam", 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var seen []string
	deadline := time.After(20 * time.Second)
	for {
		select {
		case st := <-s.StatusChanges():
			seen = append(seen, string(st.State))
			if st.State == ingest.StateRetrying {
				seen = append(seen, "("+st.LastError+")")
				if !strings.Contains(st.LastError, "read timeout: no video for") {
					t.Errorf("retrying because %q, want a read timeout", st.LastError)
				}
			}
		case <-deadline:
			t.Fatalf("no recovery; changes %v, status %+v", seen, s.Status())
		}
		if n := len(seen); n > 3 && seen[n-1] == string(ingest.StatePlaying) && strings.Contains(strings.Join(seen, " "), "read timeout") {
			break
		}
	}
	t.Logf("changes: %v", seen)
	// Decoding resumes.
	n := s.Status().FramesDecoded
	waitStatus(t, s, 10*time.Second, "decoding again", func(st ingest.Status) bool { return st.FramesDecoded > n+10 })
}

// A camera whose clock jumps starts a new epoch, back or forward, without
// reconnecting.
func TestStreamTimestampJump(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("cam"), Transport: ingest.TransportTCP, Window: 2 * time.Second}, nil)
	w0 := nextWindow(t, s, 20*time.Second)
	for i, jump := range []struct {
		to     time.Duration
		reason string
	}{{0, "timestamp jumped back"}, {time.Hour, "timestamp jumped forward"}} {
		if err := sim.JumpTimestamps("cam", jump.to); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, s, 10*time.Second, "in a new epoch", func(st ingest.Status) bool { return st.Epoch == uint64(i+2) })
		if !strings.HasPrefix(st.EpochReason, jump.reason) || st.Reconnects != 0 {
			t.Errorf("epoch %d: %q after %d reconnects, want %q", st.Epoch, st.EpochReason, st.Reconnects, jump.reason)
		}
		w := nextWindow(t, s, 10*time.Second)
		for w.Epoch != uint64(i+2) {
			w = nextWindow(t, s, 10*time.Second)
		}
		t.Logf("%s: %v", st.EpochReason, &w)
		if w.MediaStart < w0.MediaEnd || w.MediaEnd-w.MediaStart != 2*time.Second {
			t.Errorf("window of epoch %d: %v", w.Epoch, &w)
		}
		w0 = w
	}
}

// Lost packets are counted, decoding resumes at the next key frame, and
// windows keep coming.
func TestStreamPacketLoss(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("cam"), Transport: ingest.TransportUDP, Window: 2 * time.Second,
		Stride: 500 * time.Millisecond}, nil)
	nextWindow(t, s, 20*time.Second)
	if err := sim.SetPacketLoss("cam", 0.02); err != nil {
		t.Fatal(err)
	}
	before := s.Status()
	var wins []ingest.Window
	for len(wins) < 12 { // 6s
		wins = append(wins, nextWindow(t, s, 10*time.Second))
	}
	st := s.Status()
	t.Logf("during 2%% loss: %d windows, last %v; status %+v", len(wins), &wins[len(wins)-1], st)
	if st.PacketsLost == 0 || st.SkippedAUs == 0 {
		t.Errorf("lost %d packets, skipped %d access units: loss not seen", st.PacketsLost, st.SkippedAUs)
	}
	if decoded, arrived := st.FramesDecoded-before.FramesDecoded, st.AccessUnits-before.AccessUnits; decoded >= arrived {
		t.Errorf("decoded %d frames of %d access units despite the loss", decoded, arrived)
	}
	if st.State != ingest.StatePlaying || st.Reconnects != 0 {
		t.Errorf("state %s after %d reconnects", st.State, st.Reconnects)
	}
	if err := sim.SetPacketLoss("cam", 0); err != nil {
		t.Fatal(err)
	}
}

// Credentials in the URL work and never show: not in status, errors or
// logs.
func TestStreamCredentials(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	sim.SetCredentials("viewer", "s3cr3t-pw")
	withCreds := strings.Replace(sim.URL("cam"), "rtsp://", "rtsp://viewer:s3cr3t-pw@", 1)
	wrong := strings.Replace(sim.URL("cam"), "rtsp://", "rtsp://viewer:wr0ng-pw@", 1)

	logs, log := newLogBuffer(t)
	good := startStream(t, ingest.StreamConfig{Name: "good", URL: withCreds, Window: 2 * time.Second}, log)
	bad := startStream(t, ingest.StreamConfig{Name: "bad", URL: wrong, BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, log)
	none := startStream(t, ingest.StreamConfig{Name: "none", URL: sim.URL("cam"), BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond}, log)
	nextWindow(t, good, 20*time.Second)
	stBad := waitStatus(t, bad, 10*time.Second, "refused", func(st ingest.Status) bool { return st.Reconnects >= 2 })
	stNone := waitStatus(t, none, 10*time.Second, "refused", func(st ingest.Status) bool { return st.Reconnects >= 2 })
	t.Logf("wrong password: %s\nnone: %s", stBad.LastError, stNone.LastError)
	for _, want := range []struct {
		st   ingest.Status
		text string
	}{{stBad, "unauthorized: the camera refused the credentials"}, {stNone, "unauthorized: the camera wants credentials"}} {
		if !strings.Contains(want.st.LastError, want.text) {
			t.Errorf("%s: last error %q, want %q", want.st.Stream, want.st.LastError, want.text)
		}
	}
	good.Close()
	bad.Close()
	for _, st := range []ingest.Status{good.Status(), bad.Status(), stBad} {
		text := fmt.Sprintf("%+v", st)
		if strings.Contains(text, "s3cr3t") || strings.Contains(text, "wr0ng") || strings.Contains(text, "viewer") {
			t.Errorf("status shows credentials: %s", text)
		}
		if !strings.HasPrefix(st.URL, "rtsp://***@127.0.0.1:") {
			t.Errorf("status URL %q", st.URL)
		}
	}
	if text := logs.String(); strings.Contains(text, "s3cr3t") || strings.Contains(text, "wr0ng") || strings.Contains(text, "viewer:") {
		t.Errorf("logs show credentials:\n%s", text)
	}
}

// A camera that accepts the connection but never answers fails within the
// connect timeout, with an error that says so and hides the credentials;
// one that refuses fails at once.
func TestStreamNoAnswer(t *testing.T) {
	t.Parallel()
	ln := silentListener(t)
	url := "rtsp://admin:hunter22@" + ln + "/x"
	// The deadline only catches a stream that never gives up; the
	// message says it waited the connect timeout.
	s := startStream(t, ingest.StreamConfig{URL: url, ConnectTimeout: 300 * time.Millisecond, BackoffMin: time.Hour, BackoffMax: time.Hour}, nil)
	st := waitStatus(t, s, 20*time.Second, "retrying", func(st ingest.Status) bool { return st.State == ingest.StateRetrying })
	want := "connect rtsp://***@" + ln + "/x: no answer within 300ms"
	if st.LastError != want {
		t.Errorf("last error %q, want %q", st.LastError, want)
	}
}

// silentListener accepts connections and never says a word; it returns its
// address.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// 200 forced reconnects leave no goroutine, file descriptor or memory
// behind.
func TestStreamReconnectCyclesDoNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("200 reconnects")
	}
	sim := liveSim(t, camsim.SimulatorConfig{})
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("cam"), Transport: ingest.TransportTCP, Window: 2 * time.Second,
		BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}, nil)
	cycles := 0
	cycle := func() {
		n := s.Status().Reconnects
		if err := sim.DropConnections("cam"); err != nil {
			t.Fatal(err)
		}
		st := waitStatus(t, s, 10*time.Second, "playing again", func(st ingest.Status) bool {
			return st.Reconnects > n && st.State == ingest.StatePlaying
		})
		if cycles++; cycles%25 == 0 {
			// Now and then decode too (the first key frame can be a
			// second away), so that connections end with frames in
			// the decoder and the window.
			waitStatus(t, s, 10*time.Second, "decoding", func(now ingest.Status) bool { return now.FramesDecoded > st.FramesDecoded+2 })
		}
	}
	waitStatus(t, s, 10*time.Second, "decoding", func(st ingest.Status) bool { return st.FramesDecoded > 0 })
	measure := func() (goroutines, fds int, heap, rss int64) {
		time.Sleep(50 * time.Millisecond) // let closed connections' goroutines finish
		runtime.GC()
		entries, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return runtime.NumGoroutine(), len(entries), cHeapInUse(), rssBytes(t)
	}
	for range 20 {
		cycle()
	}
	g0, fd0, heap0, rss0 := measure()
	start := time.Now()
	const n = 200
	for range n {
		cycle()
	}
	g1, fd1, heap1, rss1 := measure()
	st := s.Status()
	t.Logf("%d reconnects in %v: goroutines %d → %d, fds %d → %d, C heap %.2f → %.2f MiB, RSS %.1f → %.1f MiB; %d frames decoded",
		n, time.Since(start).Round(time.Millisecond), g0, g1, fd0, fd1, float64(heap0)/(1<<20), float64(heap1)/(1<<20),
		float64(rss0)/(1<<20), float64(rss1)/(1<<20), st.FramesDecoded)
	if g1 > g0+3 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if fd1 > fd0+3 {
		t.Errorf("file descriptors grew from %d to %d", fd0, fd1)
	}
	if heap1-heap0 > 2<<20 {
		t.Errorf("C heap grew by %.1f MiB", float64(heap1-heap0)/(1<<20))
	}
	if rss1-rss0 > 32<<20 {
		t.Errorf("RSS grew by %.1f MiB", float64(rss1-rss0)/(1<<20))
	}
}

// Closing a stream stops it: a final "stopped" status, both channels
// closed, and no goroutine left.
func TestStreamCloseStops(t *testing.T) {
	sim := liveSim(t, camsim.SimulatorConfig{})
	g0 := runtime.NumGoroutine()
	s, err := ingest.NewStream(ingest.StreamConfig{Name: "cam", URL: sim.URL("cam"), Window: 2 * time.Second}, liveModel(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	waitStatus(t, s, 20*time.Second, "decoding", func(st ingest.Status) bool { return st.FramesDecoded > 5 })
	s.Close()
	s.Close()
	var last ingest.Status
	for st := range s.StatusChanges() {
		last = st
	}
	for range s.Windows() {
	}
	if last.State != ingest.StateStopped || s.Status().State != ingest.StateStopped {
		t.Errorf("last status %s", last.State)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0 {
		t.Errorf("%d goroutines after close, %d before start", g, g0)
	}
	// Never started: Close still returns.
	s2, _ := ingest.NewStream(ingest.StreamConfig{Name: "x", URL: "rtsp://127.0.0.1:1/x"}, liveModel(), nil)
	s2.Close()
}

// A standard RTSP peer as the camera: ffmpeg publishes a shared clip into
// the simulator in real time and the stream reads it back; a window holds
// 10 s of the 28 fps clip.
func TestStreamReadsFFmpegPublisher(t *testing.T) {
	t.Parallel()
	ffmpeg := needTool(t, "ffmpeg")
	sim := liveSim(t, camsim.SimulatorConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	pub := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-re", "-stream_loop", "-1",
		"-i", sharedClip(t, "arm_wrestling.mp4"), "-c", "copy", "-f", "rtsp", "-rtsp_transport", "tcp", sim.URL("pub"))
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); pub.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for !sim.Stats("pub").Published {
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg did not start publishing within 15s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("pub"), Transport: ingest.TransportTCP}, nil)
	w := nextWindow(t, s, 40*time.Second)
	if w.MediaEnd-w.MediaStart != 10*time.Second || w.FramesKept != 16 {
		t.Errorf("window %v..%v with %d frames kept, want 10 s and 16", w.MediaStart, w.MediaEnd, w.FramesKept)
	}
	if w.FramesSeen < 278 || w.FramesSeen > 282 || math.Abs(w.FPS-28) > 0.3 {
		t.Errorf("window saw %d frames (%.2f fps), want 280 (28 fps)", w.FramesSeen, w.FPS)
	}
	if st := s.Status(); st.Codec != ingest.CodecH264 || st.Width != 340 || st.Height != 256 || st.DecodeErrors != 0 {
		t.Errorf("status %s %dx%d, %d decode errors", st.Codec, st.Width, st.Height, st.DecodeErrors)
	}
}
