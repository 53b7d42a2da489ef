package camsim

import (
	"log/slog"
	"testing"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/internal/ingesttest"
	"github.com/actiond/actiond/internal/testenv"
)

// Helpers shared with ingest's tests (ingest/internal/ingesttest).
var (
	nextWindow   = ingesttest.NextWindow[ingest.Window, ingest.Status]
	waitStatus   = ingesttest.WaitStatus[ingest.Status]
	sharedClip   = ingesttest.SharedClip
	ffprobeVideo = ingesttest.FFprobeVideo
	needTool     = testenv.Tool
)

// startStream starts a stream (named "cam" unless cfg names it) and closes
// it at the test's end.
func startStream(t *testing.T, cfg ingest.StreamConfig, log *slog.Logger) *ingest.Stream {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cam"
	}
	return ingesttest.StartStream(t, ingest.NewStream, cfg, log)
}

// decodeAll decodes the given indices of path and returns the images.
func decodeAll(t *testing.T, path string, indices []int) []*ingest.Image {
	t.Helper()
	return ingesttest.DecodeAll(t, ingest.OpenVideoFile, path, indices)
}
