package server

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/internal/openwatch"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// An HLS playlist or an ffconcat list, by uri inside classify.allowed_dirs
// or uploaded, that points at a real clip outside the allowed directories
// is INVALID_ARGUMENT naming its container, and the clip is never opened
// (inotify on its directory): the answer tells nothing about other files.
func TestClassifyRefusesPlaylists(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	b, err := os.ReadFile("../testdata/arm_wrestling.mp4")
	if err != nil {
		t.Fatal(err)
	}
	clip := filepath.Join(outside, "clip.mp4")
	if err := os.WriteFile(clip, b, 0o644); err != nil {
		t.Fatal(err)
	}
	allowed, temp := t.TempDir(), t.TempDir()
	// The concat demuxer follows plain relative names only: a link in the
	// list's directory leads out of it.
	for _, d := range []string{allowed, temp} {
		if err := os.Symlink(outside, filepath.Join(d, "sub")); err != nil {
			t.Fatal(err)
		}
	}
	hls := "#EXTM3U\n#EXT-X-TARGETDURATION:11\n#EXTINF:10.0,\n" + clip + "\n#EXT-X-ENDLIST\n"
	concat := "ffconcat version 1.0\nfile 'sub/clip.mp4'\n"
	for name, content := range map[string]string{"p.m3u8": hls, "list.ffconcat": concat} {
		if err := os.WriteFile(filepath.Join(allowed, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ts := startServer(t, Config{Classify: ClassifyConfig{AllowedDirs: []string{allowed}, TempDir: temp}})
	ctx := ctxT(t, 60*time.Second)
	for _, tc := range []struct {
		what      string
		req       *actiondv1.ClassifyRequest
		container string
	}{
		{"HLS by uri", &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + allowed + "/p.m3u8"}}, "hls"},
		{"ffconcat by uri", &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + allowed + "/list.ffconcat"}}, "concat"},
		{"HLS uploaded", &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: []byte(hls)}, FileName: "p.m3u8"}, "hls"},
		{"HLS uploaded as .mp4", &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: []byte(hls)}, FileName: "clip.mp4"}, "hls"},
		{"ffconcat uploaded", &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: []byte(concat)}, FileName: "list.ffconcat"}, "concat"},
	} {
		w, err := openwatch.Start(outside)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ts.recog.Classify(ctx, tc.req)
		opened, werr := w.Opened()
		if werr != nil {
			t.Fatal(werr)
		}
		if slices.Contains(opened, "clip.mp4") {
			t.Errorf("%s: the server opened %s (answer %v, %v)", tc.what, clip, r, err)
		}
		wantCode(t, tc.what, err, codes.InvalidArgument, "container not allowed: the file is "+tc.container+" (",
			"actiond reads only single-file containers: MP4/MOV, Matroska/WebM, AVI, MPEG-TS, FLV, raw H.264, raw H.265")
	}
}

// classify.max_concurrent calls decode, as many more wait, and the rest
// are RESOURCE_EXHAUSTED at once. A waiting upload is not written to
// classify.temp_dir until its call has a place.
func TestClassifyQueueIsBounded(t *testing.T) {
	t.Parallel()
	clip, err := os.ReadFile(archery)
	if err != nil {
		t.Fatal(err)
	}
	temp := t.TempDir()
	ts := startServer(t, Config{Classify: ClassifyConfig{MaxConcurrent: 2, TempDir: temp}})
	gate := ts.core.Load().classifyGate
	// Both places taken, as by two long decodes.
	gate.slots <- struct{}{}
	gate.slots <- struct{}{}
	ctx := ctxT(t, 60*time.Second)
	// A call waits for a place until its deadline, then gives up its
	// place in the queue.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = ts.recog.Classify(short, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: clip}, FileName: "archery.avi"})
	cancel()
	wantCode(t, "a call that waits past its deadline", err, codes.DeadlineExceeded)
	for gate.waiting.Load() != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d calls still wait after their deadline", gate.waiting.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	answers := make(chan error, 6)
	for range 6 {
		go func() {
			call, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := ts.recog.Classify(call, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: clip}, FileName: "archery.avi"})
			answers <- err
		}()
	}
	for i := range 4 {
		err := <-answers
		wantCode(t, "a call beyond the queue", err, codes.ResourceExhausted,
			"too many Classify calls: 2 Classify calls are decoding and 2 more are waiting (classify.max_concurrent); retry later")
		if t.Failed() {
			t.Fatalf("answer %d of the 4 beyond the queue", i+1)
		}
	}
	if files, _ := os.ReadDir(temp); len(files) != 0 {
		t.Errorf("%d uploads written while their calls wait for a place", len(files))
	}
	<-gate.slots
	<-gate.slots
	for range 2 {
		if err := <-answers; err != nil {
			t.Errorf("a queued call once the places are free: %v", err)
		}
	}
	if files, _ := os.ReadDir(temp); len(files) != 0 {
		t.Errorf("%d uploads left in classify.temp_dir", len(files))
	}
}

// max_concurrent_streams bounds the calls open on one connection: with 1,
// a Subscribe holds the connection's only stream and a call beside it on
// the same connection waits (here until its deadline); another connection
// is served.
func TestMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxConcurrentStreams: 1})
	ctx := ctxT(t, 30*time.Second)
	sub, cancelSub := context.WithCancel(ctx)
	defer cancelSub()
	subscribe(t, sub, ts.recog, &actiondv1.SubscribeRequest{})
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := ts.recog.GetModel(short, &actiondv1.GetModelRequest{})
	wantCode(t, "a second call on the connection", err, codes.DeadlineExceeded)
	other, err := grpc.NewClient(ts.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := actiondv1.NewRecognitionServiceClient(other).GetModel(ctx, &actiondv1.GetModelRequest{}); err != nil {
		t.Errorf("a call on another connection: %v", err)
	}
	cancelSub()
	if _, err := ts.recog.GetModel(ctx, &actiondv1.GetModelRequest{}); err != nil {
		t.Errorf("a call on the first connection once the subscription ended: %v", err)
	}
}

// ingest.max_frame_pixels holds for files and cameras alike: an 8200x4400
// clip (ffmpeg lavfi) is INVALID_ARGUMENT with the default 8192x4320, and
// a 160x120 camera against "100x100" goes RETRYING, both naming the size
// and the key. A cancelled call stops decoding with the call's error.
func TestFrameSizeLimit(t *testing.T) {
	t.Parallel()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg is needed to make the large clip: ", err)
	}
	big := filepath.Join(t.TempDir(), "big.mkv")
	if out, err := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=8200x4400:d=0.2:r=5",
		"-c:v", "mjpeg", "-pix_fmt", "yuvj420p", big).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	content, err := os.ReadFile(big)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{Ingest: IngestConfig{MaxFramePixels: 100 * 100, BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}})
	deflt := startServer(t, Config{})
	ctx := ctxT(t, 60*time.Second)
	_, err = deflt.recog.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: content}, FileName: "big.mkv"})
	wantCode(t, "an 8200x4400 clip", err, codes.InvalidArgument,
		`open video "big.mkv": frame too large: 8200x4400 is 36080000 pixels, over ingest.max_frame_pixels (35389440)`)

	// The classifier stops when its context ends, with the context's error.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := deflt.core.Load().classifier.ClassifyFile(cancelled, archery, classify.ClassifyOptions{}); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreadableClip) {
		t.Errorf("ClassifyFile with a cancelled context: %v, want %v", err, context.Canceled)
	}

	sim, _ := startCamera(t, "", "")
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: sim.URL("bounce"),
		Options: &actiondv1.StreamOptions{Transport: actiondv1.Transport_TRANSPORT_TCP}}); err != nil {
		t.Fatal(err)
	}
	last := waitLastError(t, ctx, ts, "cam", "max_frame_pixels")
	for _, want := range []string{"frame too large: 160x120 is 19200 pixels, over ingest.max_frame_pixels (10000)"} {
		if !strings.Contains(last, want) {
			t.Errorf("last_error %q lacks %q", last, want)
		}
	}
}

// waitLastError polls GetStream until the stream is RETRYING with a
// last_error that contains want, and returns it.
func waitLastError(t *testing.T, ctx context.Context, ts *testServer, name, want string) string {
	t.Helper()
	var last *actiondv1.Stream
	for {
		r, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: name})
		if err != nil {
			t.Fatalf("GetStream %s: %v", name, err)
		}
		last = r.GetStream()
		if st := last.GetStatus(); st.GetState() == actiondv1.StreamState_STREAM_STATE_RETRYING && strings.Contains(st.GetLastError(), want) {
			return st.GetLastError()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s never RETRYING with %q in last_error; last %v (%v)", name, want, last, status.Code(ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}
