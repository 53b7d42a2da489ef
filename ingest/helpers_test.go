package ingest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/models"
)

// Helpers of ingest's tests. The tests that use the RTSP simulator are
// external (package ingest_test: camsim imports ingest); they reach these
// through the exported names below.
var (
	LiveModel    = liveModel
	NewLogBuffer = newLogBuffer
	StartStream  = startStream
	NextWindow   = nextWindow
	WaitStatus   = waitStatus
	SharedClip   = sharedClip
	NeedTool     = needTool
	RSSBytes     = rssBytes
	CHeapInUse   = cHeapInUse
	Capture      = capture
	NALType      = nalType
)

// H.264 NAL unit types, for the external tests.
const (
	H264NALIDR = h264NALIDR
	H264NALSPS = h264NALSPS
	H264NALPPS = h264NALPPS
)

// liveModel is the input layout of PP-TSMv2 and the motion model.
func liveModel() models.Manifest {
	return models.Manifest{
		Segments: 16, InputSize: 224, ShortSide: 256,
		Mean: models.ImageNetMean, Std: models.ImageNetStd,
	}
}

// logBuffer collects a component's logs, for tests that check what they
// say (and do not say).
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   testing.TB
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if testing.Verbose() {
		b.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newLogBuffer(t testing.TB) (*logBuffer, *slog.Logger) {
	b := &logBuffer{t: t}
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startStream starts a stream and closes it at the test's end.
func startStream(t *testing.T, cfg StreamConfig, log *slog.Logger) *Stream {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cam"
	}
	s, err := NewStream(cfg, liveModel(), log)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// nextWindow waits for the stream's next window.
func nextWindow(t *testing.T, s *Stream, timeout time.Duration) Window {
	t.Helper()
	select {
	case w, ok := <-s.Windows():
		if !ok {
			t.Fatalf("windows closed; status %+v", s.Status())
		}
		return w
	case <-time.After(timeout):
		t.Fatalf("no window within %v; status %+v", timeout, s.Status())
	}
	panic("unreachable")
}

// waitStatus polls the stream's status until cond holds.
func waitStatus(t *testing.T, s *Stream, timeout time.Duration, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %v; status %+v", what, timeout, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
