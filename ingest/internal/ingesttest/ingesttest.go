// Package ingesttest holds the helpers that ingest's tests, internal and
// external, and ingest/camsim's tests share: the live model's layout, a
// stream started for a test, its next window or status, a video file's
// decoded frames, the repository's test clips, ffprobe's view of a file, a
// logger the test reads, the process's RSS.
//
// It must not import ingest: ingest's internal tests import it. The
// helpers that work on a stream or a video file take it through a small
// interface instead, with ingest's types as its type arguments. Tests
// only.
package ingesttest

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/procstat"
	"github.com/actiond/actiond/internal/testenv"
	"github.com/actiond/actiond/models"
)

// LiveModel is the input layout of PP-TSMv2 and the motion model.
func LiveModel() models.Manifest {
	return models.Manifest{
		Segments: 16, InputSize: 224, ShortSide: 256,
		Mean: models.ImageNetMean, Std: models.ImageNetStd,
	}
}

// StartStream makes a stream with newStream (ingest.NewStream) for cfg
// and the live model, starts it, and closes it at the test's end.
func StartStream[C any, S interface {
	Start()
	Close()
}](t testing.TB, newStream func(C, models.Manifest, *slog.Logger) (S, error), cfg C, log *slog.Logger) S {
	t.Helper()
	s, err := newStream(cfg, LiveModel(), log)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// NextWindow waits for the stream's next window.
func NextWindow[W, St any](t testing.TB, s interface {
	Windows() <-chan W
	Status() St
}, timeout time.Duration) W {
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

// WaitStatus polls the stream's status until cond holds.
func WaitStatus[St any](t testing.TB, s interface{ Status() St }, timeout time.Duration, what string, cond func(St) bool) St {
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

// DecodeAll opens path with open (ingest.OpenVideoFile), decodes the
// frames with the given indices and returns their images.
func DecodeAll[F interface {
	Decode(want []int, fn func(index int, pts time.Duration, img I) error) error
	Close() error
}, I any](t testing.TB, open func(string) (F, error), path string, indices []int) []I {
	t.Helper()
	f, err := open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var imgs []I
	err = f.Decode(indices, func(_ int, _ time.Duration, img I) error {
		imgs = append(imgs, img)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imgs
}

// SharedClip returns the path of a clip in the repository's testdata/,
// relative to the test's folder.
func SharedClip(t testing.TB, name string) string {
	t.Helper()
	dir := "."
	for range 8 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		dir = filepath.Join(dir, "..")
	}
	p := filepath.Join(dir, "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test media missing: %v", err)
	}
	return p
}

// FFprobeVideo returns what ffprobe says about a file's first video stream
// (codec_name, width, height, nb_read_frames, pix_fmt) and its container
// (format_name).
func FFprobeVideo(t testing.TB, path string) map[string]string {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_frames",
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

// LogBuffer collects a component's logs, for tests that check what they
// say (and do not say); with -v the test's log shows them too.
type LogBuffer struct {
	testenv.Buffer
	t testing.TB
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	if testing.Verbose() {
		b.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return b.Buffer.Write(p)
}

// NewLogBuffer returns a LogBuffer and a logger, at debug level, that
// writes to it.
func NewLogBuffer(t testing.TB) (*LogBuffer, *slog.Logger) {
	b := &LogBuffer{t: t}
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// RSS is this process's resident set size in bytes.
func RSS(t testing.TB) int64 {
	t.Helper()
	b, err := procstat.RSS(os.Getpid())
	if err != nil {
		testenv.Missing(t, "cannot read this process's RSS: %v", err)
	}
	return b
}
