package camsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
)

// testScene is small and short, so that encoding it costs little.
var testScene = Scene{Width: 320, Height: 240, FPS: 15, Duration: 2 * time.Second, Direction: Right}

// testLogger sends a component's logs to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startSim starts a simulator on a free port serving testScene at "scene";
// the test's cleanup closes it.
func startSim(t *testing.T, cfg SimulatorConfig) *Simulator {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	sim := NewSimulator(cfg)
	if err := sim.AddScene("scene", testScene); err != nil {
		t.Fatalf("AddScene: %v", err)
	}
	if err := sim.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// runTool runs an FFmpeg tool with a deadline and returns its stdout and
// stderr.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, needTool(t, name), args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), errOut.String(), err
}

// probedStream is what ffprobe says about a stream.
type probedStream struct {
	CodecName string `json:"codec_name"`
	CodecType string `json:"codec_type"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// ffprobe reads url with ffprobe over transport and returns its streams.
func ffprobe(t *testing.T, url, transport string) ([]probedStream, error) {
	t.Helper()
	stdout, stderr, err := runTool(t, 15*time.Second, "ffprobe", "-v", "error",
		"-rtsp_transport", transport, "-show_streams", "-of", "json", url)
	if err != nil {
		return nil, errors.Join(err, errors.New(strings.TrimSpace(stderr)))
	}
	var res struct{ Streams []probedStream }
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		return nil, err
	}
	return res.Streams, nil
}

// wantVideo checks that streams is one H.264 video stream of w x h.
func wantVideo(t *testing.T, streams []probedStream, w, h int) {
	t.Helper()
	if len(streams) != 1 {
		t.Fatalf("ffprobe found %d streams, want 1: %+v", len(streams), streams)
	}
	if s := streams[0]; s.CodecType != "video" || s.CodecName != "h264" || s.Width != w || s.Height != h {
		t.Errorf("ffprobe: %s %s %dx%d, want video h264 %dx%d", s.CodecType, s.CodecName, s.Width, s.Height, w, h)
	}
}

// waitFor polls cond every 20ms until it holds or d passes.
var waitFor = testenv.WaitFor

func TestSimulatorFFprobe(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			streams, err := ffprobe(t, sim.URL("scene"), transport)
			if err != nil {
				t.Fatalf("ffprobe over %s: %v", transport, err)
			}
			wantVideo(t, streams, testScene.Width, testScene.Height)
		})
	}
	t.Run("unknown path", func(t *testing.T) {
		_, err := ffprobe(t, sim.URL("nothing"), "tcp")
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("ffprobe of an unknown path: %v, want a 404", err)
		}
	})
}

// ffmpegFrames returns the frame count in ffmpeg's -progress output.
func ffmpegFrames(progress string) int {
	m := regexp.MustCompile(`(?m)^frame=(\d+)$`).FindAllStringSubmatch(progress, -1)
	if len(m) == 0 {
		return -1
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func TestSimulatorFFmpegReadsLive(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	const seconds = 3
	start := time.Now()
	stdout, stderr, err := runTool(t, 20*time.Second, "ffmpeg", "-nostdin", "-v", "error", "-nostats",
		"-progress", "pipe:1", "-rtsp_transport", "tcp", "-i", sim.URL("scene"),
		"-t", strconv.Itoa(seconds), "-f", "null", "-")
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr)
	}
	// A reader that joins between key frames (one a second) decodes
	// nothing until the next one, but -t counts from the first packet.
	fps := testScene.FPS
	if got := ffmpegFrames(stdout); got < fps*(seconds-1) || got > fps*seconds+2 {
		t.Errorf("ffmpeg decoded %d frames in %ds of stream, want %d..%d (%d fps)",
			got, seconds, fps*(seconds-1), fps*seconds, fps)
	}
	// Paced like a camera, 3 s of stream cannot arrive much faster than
	// in 3 s; a simulator that sent its clip in a burst would.
	if elapsed < seconds*time.Second*8/10 {
		t.Errorf("%ds of stream arrived in %v: not paced in real time", seconds, elapsed)
	}
	if got := sim.Stats("scene").PacketsDropped; got != 0 {
		t.Errorf("%d packets dropped without a fault", got)
	}
}

// ffprobeTimestamps returns the pts of the video packets of a file.
func ffprobeTimestamps(t *testing.T, path string) []int64 {
	t.Helper()
	stdout, stderr, err := runTool(t, 15*time.Second, "ffprobe", "-v", "error", "-select_streams", "v",
		"-show_entries", "packet=pts", "-of", "csv=p=0", path)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, stderr)
	}
	var pts []int64
	for _, line := range strings.Fields(stdout) {
		v, err := strconv.ParseInt(strings.TrimSuffix(line, ","), 10, 64)
		if err != nil {
			t.Fatalf("ffprobe printed %q: %v", line, err)
		}
		pts = append(pts, v)
	}
	return pts
}

func TestSimulatorFile(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	// MPEG-4 Part 2 in AVI, 25 fps, 131 frames (5.24 s): re-encoded to H.264.
	if err := sim.AddFile("archery", sharedClip(t, "archery.avi")); err != nil {
		t.Fatalf("AddFile: %v", err)
	}
	streams, err := ffprobe(t, sim.URL("archery"), "tcp")
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	wantVideo(t, streams, 320, 240)

	// 6 s of stream hold at least one loop boundary, wherever the clip
	// is when ffmpeg joins.
	loops := sim.Stats("archery").Loops
	out := filepath.Join(t.TempDir(), "archery.ts")
	if _, stderr, err := runTool(t, 20*time.Second, "ffmpeg", "-nostdin", "-v", "error",
		"-rtsp_transport", "tcp", "-i", sim.URL("archery"), "-t", "6", "-c", "copy", "-f", "mpegts", out); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, stderr)
	}
	if got := sim.Stats("archery").Loops; got <= loops {
		t.Errorf("the clip did not loop during the recording (loops %d, then %d)", loops, got)
	}
	pts := ffprobeTimestamps(t, out)
	if len(pts) < 5*25 {
		t.Fatalf("recorded %d frames, want about 150", len(pts))
	}
	const frame = 90000 / 25
	for i := 1; i < len(pts); i++ {
		// Every frame is one frame period after the one before: no
		// jump back at the loop, and no hole.
		if d := pts[i] - pts[i-1]; d < frame-2 || d > frame+2 {
			t.Errorf("pts %d -> %d at packet %d: step %d, want %d", pts[i-1], pts[i], i, d, frame)
		}
	}
}

func TestSimulatorPublish(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Looped, so that it publishes for as long as the checks take; "q" on
	// its stdin ends it the normal way (TEARDOWN), as -t would.
	var pubErr bytes.Buffer
	pub := exec.CommandContext(ctx, needTool(t, "ffmpeg"), "-v", "error", "-re", "-stream_loop", "-1",
		"-i", sharedClip(t, "arm_wrestling.mp4"), "-c", "copy", "-f", "rtsp", sim.URL("pub"))
	pub.Stderr = &pubErr
	stdin, err := pub.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-pubDone
	})

	waitFor(t, 10*time.Second, "the publisher", func() bool { return sim.Stats("pub").Published })
	streams, err := ffprobe(t, sim.URL("pub"), "tcp")
	if err != nil {
		t.Fatalf("ffprobe of the published path: %v", err)
	}
	wantVideo(t, streams, 340, 256)

	t.Run("jump timestamps", func(t *testing.T) {
		r := playRTP(t, sim.URL("pub"), gortsplib.TransportTCP)
		waitFor(t, 5*time.Second, "relayed packets", func() bool { return r.stats().packets >= 10 })
		if err := sim.JumpTimestamps("pub", 0); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 3*time.Second, "a timestamp going back", func() bool { return r.stats().backJumps > 0 })
	})

	t.Run("served paths are not publishable", func(t *testing.T) {
		_, stderr, err := runTool(t, 10*time.Second, "ffmpeg", "-nostdin", "-v", "error", "-re",
			"-i", sharedClip(t, "arm_wrestling.mp4"), "-t", "1", "-c", "copy", "-f", "rtsp", sim.URL("scene"))
		if err == nil || !strings.Contains(stderr, "403") {
			t.Errorf("publishing to a served path: %v, want a 403 (%s)", err, stderr)
		}
	})

	r := playRTP(t, sim.URL("pub"), gortsplib.TransportTCP)
	if _, err := stdin.Write([]byte("q")); err != nil {
		t.Fatalf("tell ffmpeg to stop: %v", err)
	}
	select {
	case err := <-pubDone:
		pubDone <- err // for the cleanup
		if err != nil {
			t.Fatalf("publisher: %v\n%s", err, &pubErr)
		}
	case <-ctx.Done():
		t.Fatal("the publisher did not finish")
	}
	waitFor(t, 5*time.Second, "the path to go away", func() bool { return !sim.Stats("pub").Published })
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Error("a reader of the path was still connected 5s after the publisher left")
	}
	if _, err := ffprobe(t, sim.URL("pub"), "tcp"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("ffprobe after the publisher left: %v, want a 404", err)
	}
}

// rtpStats is what an rtpReader has seen.
type rtpStats struct {
	packets   int
	lost      int // sequence numbers skipped
	backJumps int // timestamps lower than the one before
	ntpSkew   []time.Duration
}

// rtpReader is a gortsplib client playing one path, as a camera client
// would, and counting what arrives.
type rtpReader struct {
	c    *gortsplib.Client
	done chan struct{}
	err  error

	mu      sync.Mutex
	st      rtpStats
	started bool
	seq     uint16
	ts      uint32
}

// playRTP plays url over transport until the test ends.
func playRTP(t *testing.T, url string, transport gortsplib.Transport) *rtpReader {
	t.Helper()
	u, err := base.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	r := &rtpReader{done: make(chan struct{})}
	r.c = &gortsplib.Client{
		Scheme:        u.Scheme,
		Host:          u.Host,
		Transport:     &transport,
		ReadTimeout:   10 * time.Second, // longer than the stalls the tests make
		OnPacketsLost: func(uint64) {},  // counted below; gortsplib would log
		OnDecodeError: func(err error) { t.Logf("client: %v", err) },
	}
	if err := r.c.Start2(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.c.Close()
		<-r.done
	})
	go func() {
		r.err = r.c.Wait()
		close(r.done)
	}()
	desc, _, err := r.c.Describe(u)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if err := r.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatalf("setup: %v", err)
	}
	r.c.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		ntp, haveNTP := r.c.PacketNTP(medi, pkt)
		now := time.Now()
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.started {
			r.st.lost += int(pkt.SequenceNumber - r.seq - 1)
			if int32(pkt.Timestamp-r.ts) < 0 {
				r.st.backJumps++
			}
		}
		r.started, r.seq, r.ts = true, pkt.SequenceNumber, pkt.Timestamp
		r.st.packets++
		if haveNTP && len(r.st.ntpSkew) < 1000 {
			r.st.ntpSkew = append(r.st.ntpSkew, now.Sub(ntp))
		}
	})
	if _, err := r.c.Play(nil); err != nil {
		t.Fatalf("play: %v", err)
	}
	return r
}

func (r *rtpReader) stats() rtpStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.ntpSkew = append([]time.Duration(nil), st.ntpSkew...)
	return st
}

func TestSimulatorSenderReports(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	r := playRTP(t, sim.URL("scene"), gortsplib.TransportTCP)
	// Reports come every second; a client can then tell each frame's
	// capture time, which is when the simulator sent it.
	waitFor(t, 5*time.Second, "packets with an absolute time", func() bool { return len(r.stats().ntpSkew) >= 10 })
	// No frame arrives before its capture time; the quickest arrives at
	// about it (a loaded machine delays some frames, never all of them, so
	// the least skew is the one that tells a wrong mapping).
	skews := r.stats().ntpSkew
	least := slices.Min(skews)
	for _, skew := range skews {
		if skew < -50*time.Millisecond {
			t.Fatalf("a frame arrived %v before its capture time per the sender report", -skew)
		}
	}
	if least > 250*time.Millisecond {
		t.Fatalf("the quickest frame arrived %v after its capture time per the sender report, want about 0", least)
	}
}

func TestSimulatorDropConnections(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stdout, stderr testenv.Buffer
			cmd := exec.CommandContext(ctx, needTool(t, "ffmpeg"), "-nostdin", "-v", "error", "-nostats",
				"-progress", "pipe:1", "-stats_period", "0.1",
				"-rtsp_transport", transport, "-i", sim.URL("scene"), "-f", "null", "-")
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				cancel()
				<-done
			}()
			waitFor(t, 10*time.Second, "ffmpeg to decode", func() bool { return ffmpegFrames(stdout.String()) > 0 })
			if got := sim.Stats("scene").Readers; got != 1 {
				t.Fatalf("%d readers, want 1", got)
			}
			if err := sim.DropConnections("scene"); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				done <- err
				t.Logf("ffmpeg ended (%v): %s", err, strings.TrimSpace(stderr.String()))
			case <-time.After(10 * time.Second):
				t.Fatal("ffmpeg still reading 10s after the connection was dropped")
			}
			waitFor(t, 3*time.Second, "no readers", func() bool { return sim.Stats("scene").Readers == 0 })
		})
	}
}

func TestSimulatorStall(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	r := playRTP(t, sim.URL("scene"), gortsplib.TransportTCP)
	waitFor(t, 5*time.Second, "packets", func() bool { return r.stats().packets >= 10 })

	dropped0 := sim.Stats("scene").PacketsDropped
	if err := sim.Stall("scene", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// The simulator counts the packets the stall holds back: once it has
	// held back a few, what was on its way before has landed; a few more
	// and the stall has shown it sends nothing (it lasts much longer).
	stalled := func(n uint64) func() bool {
		return func() bool { return sim.Stats("scene").PacketsDropped >= dropped0+n }
	}
	waitFor(t, 10*time.Second, "the stall to hold back packets", stalled(5))
	before, sent := r.stats(), sim.Stats("scene").PacketsSent
	waitFor(t, 10*time.Second, "the stall to hold back more packets", stalled(15))
	during := r.stats()
	if during.packets != before.packets {
		t.Errorf("%d packets arrived during the stall", during.packets-before.packets)
	}
	if got := sim.Stats("scene").PacketsSent; got != sent {
		t.Errorf("the simulator sent %d packets during the stall", got-sent)
	}
	waitFor(t, 15*time.Second, "packets after the stall", func() bool { return r.stats().packets > during.packets })
	// The session stayed; what the stall swallowed shows as lost.
	if got := sim.Stats("scene").Readers; got != 1 {
		t.Errorf("%d readers after the stall, want the same 1", got)
	}
	if lost := r.stats().lost; lost == 0 {
		t.Errorf("no sequence gap after the stall: packets were delayed, not dropped")
	}
	select {
	case <-r.done:
		t.Fatalf("client ended: %v", r.err)
	default:
	}
}

func TestSimulatorPacketLoss(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	if err := sim.AddFile("archery", sharedClip(t, "archery.avi")); err != nil {
		t.Fatalf("AddFile: %v", err)
	}
	if err := sim.SetPacketLoss("archery", 0.05); err != nil {
		t.Fatal(err)
	}
	before := sim.Stats("archery")
	readers := map[string]*rtpReader{
		"tcp": playRTP(t, sim.URL("archery"), gortsplib.TransportTCP),
		"udp": playRTP(t, sim.URL("archery"), gortsplib.TransportUDP),
	}
	const n = 350
	waitFor(t, 20*time.Second, "packets", func() bool {
		return readers["tcp"].stats().packets >= n && readers["udp"].stats().packets >= n
	})
	after := sim.Stats("archery")
	sent, dropped := after.PacketsSent-before.PacketsSent, after.PacketsDropped-before.PacketsDropped
	if share := float64(dropped) / float64(sent+dropped); share < 0.02 || share > 0.10 {
		t.Errorf("simulator dropped %d of %d packets (%.1f%%), want about 5%%", dropped, sent+dropped, 100*share)
	}
	for name, r := range readers {
		st := r.stats()
		if share := float64(st.lost) / float64(st.packets+st.lost); share < 0.02 || share > 0.10 {
			t.Errorf("%s reader lost %d of %d packets (%.1f%%), want about 5%%", name, st.lost, st.packets+st.lost, 100*share)
		}
	}
	if err := sim.SetPacketLoss("archery", 1.5); err == nil {
		t.Error("SetPacketLoss(1.5) did not fail")
	}
}

func TestSimulatorJumpTimestamps(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	r := playRTP(t, sim.URL("scene"), gortsplib.TransportTCP)
	waitFor(t, 5*time.Second, "packets", func() bool { return r.stats().packets >= 20 })
	if st := r.stats(); st.backJumps != 0 {
		t.Fatalf("timestamps went back %d times before the jump", st.backJumps)
	}
	if err := sim.JumpTimestamps("scene", 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "a timestamp going back", func() bool { return r.stats().backJumps > 0 })
	// After the jump, time runs forward again from the new origin.
	n := r.stats().packets
	waitFor(t, 3*time.Second, "more packets", func() bool { return r.stats().packets >= n+20 })
	if got := r.stats().backJumps; got != 1 {
		t.Errorf("timestamps went back %d times, want once", got)
	}
}

func TestSimulatorCredentials(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	sim.SetCredentials("user", "s3cret")
	withUser := func(userinfo string) string {
		return strings.Replace(sim.URL("scene"), "rtsp://", "rtsp://"+userinfo+"@", 1)
	}
	if _, err := ffprobe(t, sim.URL("scene"), "tcp"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("ffprobe without credentials: %v, want a 401", err)
	}
	if _, err := ffprobe(t, withUser("user:wrong"), "tcp"); err == nil {
		t.Error("ffprobe with a wrong password succeeded")
	}
	streams, err := ffprobe(t, withUser("user:s3cret"), "tcp")
	if err != nil {
		t.Fatalf("ffprobe with credentials: %v", err)
	}
	wantVideo(t, streams, testScene.Width, testScene.Height)

	sim.SetCredentials("", "")
	if _, err := ffprobe(t, sim.URL("scene"), "tcp"); err != nil {
		t.Errorf("ffprobe after authentication was turned off: %v", err)
	}
}

func TestSimulatorErrors(t *testing.T) {
	sim := NewSimulator(SimulatorConfig{Listen: "127.0.0.1:0", Logger: testLogger(t)})
	defer sim.Close()
	if err := sim.AddFile("missing", filepath.Join(t.TempDir(), "missing.mp4")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	for _, name := range []string{"", "/cam", "cam/", "a b", "x?y"} {
		if err := sim.AddScene(name, testScene); err == nil {
			t.Errorf("AddScene(%q) accepted a bad path name", name)
		}
	}
	if err := sim.AddScene("bad", Scene{Width: 15, Height: 16, FPS: 1, Duration: time.Second, Direction: Left}); err == nil {
		t.Error("AddScene accepted an odd width")
	}
	short := Scene{Width: 64, Height: 48, FPS: 5, Duration: time.Second, Direction: Left}
	if err := sim.AddScene("cam", short); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddScene("cam", short); err == nil {
		t.Error("AddScene reused a path name")
	}
	if err := sim.Stall("nothing", time.Second); !errors.Is(err, ErrSimPathNotFound) {
		t.Errorf("Stall of an unknown path: %v, want ErrSimPathNotFound", err)
	}
	if err := sim.AddSceneSequence("seq", 64, 48, 5, []SceneSegment{{Right, time.Second}, {Right, time.Second}}); err == nil {
		t.Error("AddSceneSequence accepted a path that leaves the picture")
	}
}

// TestSimulatorClose runs alone (not in parallel), so that the goroutine
// count is its own.
func TestSimulatorClose(t *testing.T) {
	before := runtime.NumGoroutine()
	// Registered first, so it runs last: after the clients' cleanups.
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
	sim := NewSimulator(SimulatorConfig{Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err := sim.AddScene("scene", testScene); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	// Readers over both transports, so that every kind of session and
	// listener has work to wind down.
	for _, tr := range []gortsplib.Transport{gortsplib.TransportTCP, gortsplib.TransportUDP} {
		r := playRTP(t, sim.URL("scene"), tr)
		waitFor(t, 5*time.Second, "packets", func() bool { return r.stats().packets > 0 })
	}
	tcpAddr, udpAddrs := sim.Addr(), []string{sim.server.UDPRTPAddress, sim.server.UDPRTCPAddress}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sim.Wait(); err != nil {
		t.Errorf("Wait after Close: %v", err)
	}
	if err := sim.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := sim.AddScene("late", testScene); err == nil {
		t.Error("AddScene after Close succeeded")
	}

	ln, err := net.Listen("tcp", tcpAddr)
	if err != nil {
		t.Errorf("the RTSP port is still in use after Close: %v", err)
	} else {
		ln.Close()
	}
	for _, a := range udpAddrs {
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Errorf("UDP port %s still in use after Close: %v", a, err)
			continue
		}
		pc.Close()
	}
}

// With Bitrate set, a served file is encoded to that rate (what a
// benchmark's "2 Mbit/s camera" relies on), and the same file on a second
// path reuses the encoding instead of paying for it again.
func TestSimulatorBitrate(t *testing.T) {
	t.Parallel()
	const target = 300_000
	sim := startSim(t, SimulatorConfig{Bitrate: target})
	file := sharedClip(t, "archery.avi")
	for _, name := range []string{"a", "b"} {
		if err := sim.AddFile(name, file); err != nil {
			t.Fatalf("AddFile %s: %v", name, err)
		}
	}
	a, b := sim.path("a").clip, sim.path("b").clip
	if a != b {
		t.Errorf("the second path encoded the file again")
	}
	rate := sim.Stats("b").Bitrate
	t.Logf("%d frames at %.0f fps, %d bytes: %.0f bit/s", len(a.aus), a.fps, a.bytes, rate)
	if rate < 0.7*target || rate > 1.3*target {
		t.Errorf("encoded at %.0f bit/s, want about %d", rate, target)
	}
	streams, err := ffprobe(t, sim.URL("b"), "tcp")
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	wantVideo(t, streams, 320, 240)
}
