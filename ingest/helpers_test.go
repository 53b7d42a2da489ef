package ingest

import (
	"log/slog"
	"testing"

	"github.com/actiond/actiond/ingest/internal/ingesttest"
	"github.com/actiond/actiond/internal/testenv"
)

// Helpers of ingest's tests, from ingesttest, which camsim's tests share.
var (
	liveModel    = ingesttest.LiveModel
	newLogBuffer = ingesttest.NewLogBuffer
	nextWindow   = ingesttest.NextWindow[Window, Status]
	sharedClip   = ingesttest.SharedClip
	rssBytes     = ingesttest.RSS
	// needTool returns the path of an FFmpeg command-line tool, the real
	// peer that decoding is checked against.
	needTool = testenv.Tool
)

// startStream starts a stream (named "cam" unless cfg names it) and closes
// it at the test's end.
func startStream(t *testing.T, cfg StreamConfig, log *slog.Logger) *Stream {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "cam"
	}
	return ingesttest.StartStream(t, NewStream, cfg, log)
}

// decodeAll decodes the given indices of path and returns the images.
func decodeAll(t *testing.T, path string, indices []int) []*Image {
	t.Helper()
	return ingesttest.DecodeAll(t, OpenVideoFile, path, indices)
}

// The tests that use the RTSP simulator are external (package ingest_test:
// camsim imports ingest); they reach these internals through the exported
// names below.
var (
	StartStream = startStream
	CHeapInUse  = cHeapInUse
	Capture     = capture
	NALType     = nalType
)

// H.264 NAL unit types, for the external tests.
const (
	H264NALIDR = h264NALIDR
	H264NALSPS = h264NALSPS
	H264NALPPS = h264NALPPS
)
