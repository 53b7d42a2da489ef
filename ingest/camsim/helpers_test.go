package camsim

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/internal/testenv"
	"github.com/actiond/actiond/models"
)

// Test helpers of ingest's own tests, which camsim's tests cannot import
// (ingest's tests of the live path import camsim).

// liveModel is the input layout of PP-TSMv2 and the motion model.
func liveModel() models.Manifest {
	return models.Manifest{
		Segments: 16, InputSize: 224, ShortSide: 256,
		Mean: models.ImageNetMean, Std: models.ImageNetStd,
	}
}

// startStream starts a stream and closes it at the test's end.
func startStream(t *testing.T, cfg ingest.StreamConfig, log *slog.Logger) *ingest.Stream {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cam"
	}
	s, err := ingest.NewStream(cfg, liveModel(), log)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// nextWindow waits for the stream's next window.
func nextWindow(t *testing.T, s *ingest.Stream, timeout time.Duration) ingest.Window {
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
func waitStatus(t *testing.T, s *ingest.Stream, timeout time.Duration, what string, cond func(ingest.Status) bool) ingest.Status {
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

func sharedClip(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test media missing: %v", err)
	}
	return p
}

// needTool returns the path of an FFmpeg command-line tool, the real peer
// that decoding is checked against.
func needTool(t testing.TB, name string) string {
	t.Helper()
	return testenv.Tool(t, name)
}

// that the disk's anti-aliased edge counts in proportion.
func brightCentroid(img *ingest.Image) (x, y, weight float64) {
	var sx, sy float64
	for py := range img.H {
		for px := range img.W {
			r, g, b := img.At(px, py)
			w := (float64(r)+float64(g)+float64(b))/3 - 128
			if w <= 0 {
				continue
			}
			sx += w * (float64(px) + 0.5)
			sy += w * (float64(py) + 0.5)
			weight += w
		}
	}
	if weight == 0 {
		return math.NaN(), math.NaN(), 0
	}
	return sx / weight, sy / weight, weight
}
