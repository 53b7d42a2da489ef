package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
)

// startSim runs `actiond sim` and waits until it serves.
func startSim(t *testing.T, args ...string) string {
	t.Helper()
	addr := testenv.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, actiond, append([]string{"sim", "--listen", addr, "--size", "160x120", "--fps", "10"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "publish with") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(90 * time.Second):
		t.Fatal("actiond sim did not start serving within 90s")
	}
	return "rtsp://" + addr
}

func TestClassifyLiveSimulatorScenes(t *testing.T) {
	model := buildMotion(t)
	base := startSim(t, "--scene", "r=right", "--scene", "u=up", "--user", "admin", "--pass", "s3cret")
	for _, c := range []struct{ path, want string }{{"r", "moving_right"}, {"u", "moving_up"}} {
		t.Run(c.path, func(t *testing.T) {
			url := strings.Replace(base, "rtsp://", "rtsp://admin:s3cret@", 1) + "/" + c.path
			start := time.Now()
			r := runActiond(t, nil, "classify", "--model", model, "--json", "--window", "5s", "--transport", "tcp", url)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "s3cret") {
				t.Errorf("the password leaked into the output:\n%s%s", r.stdout, r.stderr)
			}
			var got struct {
				clipJSON
				Window struct {
					MediaStart float64   `json:"media_start_s"`
					MediaEnd   float64   `json:"media_end_s"`
					AbsStart   time.Time `json:"abs_start"`
					AbsEnd     time.Time `json:"abs_end"`
					Clock      string    `json:"clock"`
					FPS        float64   `json:"fps"`
					Width      int       `json:"width"`
					Height     int       `json:"height"`
					Codec      string    `json:"codec"`
				} `json:"window"`
			}
			if err := jsonUnmarshal(r.stdout, &got); err != nil {
				t.Fatal(err)
			}
			if got.Top[0].Label != c.want {
				t.Errorf("label %q (%.3f), want %q", got.Top[0].Label, got.Top[0].Score, c.want)
			}
			if !strings.HasPrefix(got.File, "rtsp://***@127.0.0.1:") {
				t.Errorf("file = %q, want the URL with credentials removed", got.File)
			}
			w := got.Window
			if w.MediaStart != 0 || w.MediaEnd != 5 || w.Clock != "rtcp" || w.FPS < 9 || w.FPS > 11 {
				t.Errorf("window %+v: want media 0–5 s, rtcp clock, 10 fps", w)
			}
			if w.Width != 160 || w.Height != 120 || w.Codec != "H264" {
				t.Errorf("stream %dx%d %s, want 160x120 H264", w.Width, w.Height, w.Codec)
			}
			if d := w.AbsEnd.Sub(w.AbsStart); d != 5*time.Second {
				t.Errorf("absolute range %v, want 5s", d)
			}
			if w.AbsStart.Before(start.Add(-2*time.Second)) || w.AbsEnd.After(time.Now().Add(2*time.Second)) {
				t.Errorf("absolute range %v–%v lies outside the capture (%v–%v)", w.AbsStart, w.AbsEnd, start, time.Now())
			}
			if got.FramesTotal < 45 || got.FramesTotal > 55 {
				t.Errorf("frames_total %d, want about 50 (5 s at 10 fps)", got.FramesTotal)
			}
		})
	}
	r := runActiond(t, nil, "classify", "--model", model, "--timeout", "5s", base+"/r")
	if r.code != 1 || !strings.Contains(r.stderr, "credentials") {
		t.Errorf("no credentials: exit %d, stderr %q", r.code, r.stderr)
	}
}

// An ordinary RTSP peer: ffmpeg publishes an encoded scene into the
// simulator, which relays it as any RTSP server would.
func TestClassifyLiveFromFFmpegPublisher(t *testing.T) {
	model := buildMotion(t)
	dir := t.TempDir()
	scene := filepath.Join(dir, "left.mp4")
	mustRun(t, "scene", "--direction", "left", "--size", "320x240", "--fps", "25", "--duration", "12s", "--out", scene)
	base := startSim(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re", "-i", scene, "-c", "copy", "-f", "rtsp", base+"/pub")
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); pub.Wait() }()
	var r result
	for range 20 { // the path exists once ffmpeg has announced it
		r = runActiond(t, nil, "classify", "--model", model, "--json", "--window", "5s", base+"/pub")
		if r.code == 0 || !strings.Contains(r.stderr, "404") {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	got := decodeLines(t, r.stdout)[0]
	if got.Top[0].Label != "moving_left" {
		t.Errorf("label %q, want moving_left", got.Top[0].Label)
	}
}

func TestClassifyLiveNoAnswer(t *testing.T) {
	model := buildMotion(t)
	// A server that accepts the connection and never says a word.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	r := runActiond(t, nil, "classify", "--model", model, "--timeout", "1s", "rtsp://cam:pw@"+l.Addr().String()+"/x")
	if r.code != 1 || !strings.Contains(r.stderr, "no answer within 1s") || strings.Contains(r.stderr, "pw@") {
		t.Errorf("exit %d, stderr %q; want a clear no-answer error without credentials", r.code, r.stderr)
	}
}
