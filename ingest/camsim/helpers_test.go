package camsim

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// decodeAll decodes the given indices of path and returns the images.
func decodeAll(t *testing.T, path string, indices []int) []*ingest.Image {
	t.Helper()
	f, err := ingest.OpenVideoFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var imgs []*ingest.Image
	err = f.Decode(indices, func(_ int, _ time.Duration, img *ingest.Image) error {
		imgs = append(imgs, img)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// ffprobeVideo returns what ffprobe says about a file's first video stream
// (codec_name, width, height, nb_read_frames, pix_fmt) and its container
// (format_name).
func ffprobeVideo(t *testing.T, path string) map[string]string {
	t.Helper()
	cmd := exec.Command(needTool(t, "ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames,pix_fmt:format=format_name",
		"-of", "default=noprint_wrappers=1", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	kv := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}
