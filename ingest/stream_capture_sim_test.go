package ingest_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testenv"
)

func TestCaptureWindowErrors(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	silent := silentListener(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name    string
		url     string
		cfg     ingest.StreamConfig
		ctx     time.Duration
		want    string // the whole message, or its start when it ends with "..."
		is      error
		atLeast time.Duration
	}{
		{name: "no answer", url: "rtsp://admin:hunter22@" + silent + "/x", cfg: ingest.StreamConfig{ConnectTimeout: 300 * time.Millisecond},
			want: "connect rtsp://***@" + silent + "/x: no answer within 300ms", is: ingest.ErrNoAnswer, atLeast: 300 * time.Millisecond},
		{name: "refused", url: "rtsp://" + refused + "/x",
			want: "connect rtsp://" + refused + "/x: dial tcp " + refused + ": connect: connection refused"},
		{name: "no such path", url: sim.URL("nope"),
			want: "connect " + sim.URL("nope") + ": camera answered 404 Not Found"},
		{name: "not rtsp", url: "http://admin:hunter22@cam/x",
			want: "stream \"http://***@cam/x\": 'url' must start with rtsp:// or rtsps://, got http://***@cam/x"},
		{name: "window not filled in time", url: sim.URL("cam"), cfg: ingest.StreamConfig{Window: 10 * time.Second}, ctx: 1500 * time.Millisecond,
			want: "capture a window from " + sim.URL("cam") + ": context deadline exceeded after ...", is: context.DeadlineExceeded, atLeast: 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.ctx
			if d == 0 {
				d = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			start := time.Now()
			_, err := ingest.CaptureWindow(ctx, tt.url, tt.cfg, liveModel(), nil)
			took := time.Since(start)
			t.Logf("%v after %v", err, took.Round(time.Millisecond))
			switch {
			case err == nil:
				t.Fatal("no error")
			case strings.HasSuffix(tt.want, "..."):
				if !strings.HasPrefix(err.Error(), strings.TrimSuffix(tt.want, "...")) {
					t.Errorf("error %q, want %q", err, tt.want)
				}
			case err.Error() != tt.want:
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error is not %v", tt.is)
			}
			// The context's deadline catches a hang; no upper bound on a
			// shared machine's wall clock.
			if took < tt.atLeast {
				t.Errorf("gave up after %v, before the %v it was given", took, tt.atLeast)
			}
		})
	}
}

// publish runs ffmpeg publishing a test pattern to url until the test ends.
func publish(t *testing.T, url string, codecArgs ...string) {
	t.Helper()
	ffmpeg := needTool(t, "ffmpeg")
	ctx, cancel := context.WithCancel(context.Background())
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15"},
		codecArgs...)
	args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", url)
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait() //nolint:errcheck // killed
	})
}

// H.265 from a real encoder (ffmpeg with libx265, publishing to the
// simulator) plays like H.264.
func TestStreamH265(t *testing.T) {
	testenv.FFmpegEncoder(t, "libx265")
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	publish(t, sim.URL("h265"), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:keyint=15:bframes=0")
	s := startStream(t, ingest.StreamConfig{URL: sim.URL("h265"), Transport: ingest.TransportTCP, Window: 2 * time.Second,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, nil)
	w := nextWindow(t, s, 30*time.Second)
	st := s.Status()
	t.Logf("%v; status %+v", &w, st)
	if st.Codec != ingest.CodecH265 || st.Width != 320 || st.Height != 240 || w.FramesSeen < 29 || w.FramesSeen > 31 {
		t.Errorf("%s %dx%d, %d frames in 2s at 15 fps", st.Codec, st.Width, st.Height, w.FramesSeen)
	}
}

// A stream without H.264 or H.265 fails with an error that says what it
// offers.
func TestCaptureWindowUnsupportedCodec(t *testing.T) {
	t.Parallel()
	sim := liveSim(t, camsim.SimulatorConfig{})
	publish(t, sim.URL("mjpeg"), "-c:v", "mjpeg", "-q:v", "5")
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		_, err = capture(t, sim.URL("mjpeg"), ingest.StreamConfig{})
		if err == nil || !strings.Contains(err.Error(), "404") {
			break // published by now
		}
	}
	t.Log(err)
	if !errors.Is(err, ingest.ErrUnsupportedCodec) || !strings.Contains(err.Error(), "the stream offers M-JPEG") {
		t.Errorf("error %v", err)
	}
}
