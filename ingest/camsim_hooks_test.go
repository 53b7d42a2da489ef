package ingest

import (
	"time"
)

// ingest's own (white-box) tests encode and decode synthetic scenes, whose
// generator and H.264 encoder are in camsim; they cannot import it (camsim
// imports ingest), so camsim_hooks_ext_test.go (package ingest_test, in the
// same test binary) sets NewScene and EncodeH264 to camsim's, and
// testScene stands for camsim.Scene here.

// SceneLike is what the tests use of a camsim.Scene.
type SceneLike interface {
	Frame(i int) *Image
	Frames() int
	Centre(i int) (x, y float64)
	WriteFile(path string) error
}

// NewScene makes camsim.Scene{w, h, fps, d, direction, seed}; set by
// camsim_hooks_ext_test.go.
var NewScene func(w, h, fps int, d time.Duration, direction string, seed int64) SceneLike

// EncodedAU is one access unit of camsim's H.264 encoder (Annex B), its
// presentation time in frames.
type EncodedAU struct {
	Data []byte
	PTS  int64
	Key  bool
}

// EncodeH264 encodes n frames (w x h at fps) with camsim's H.264 encoder,
// SPS and PPS in band before every key frame, as a camera sends them, and
// flushes it; set by camsim_hooks_ext_test.go.
var EncodeH264 func(w, h, fps, n int, frame func(i int) *Image) ([]EncodedAU, error)

// testScene is camsim.Scene's fields; its methods are the camsim scene's.
type testScene struct {
	Width, Height int
	FPS           int
	Duration      time.Duration
	Direction     string
	Seed          int64
}

// The directions of camsim's scenes.
const (
	Left  = "left"
	Right = "right"
	Up    = "up"
	Down  = "down"
	Still = "still"
)

func (s testScene) scene() SceneLike {
	return NewScene(s.Width, s.Height, s.FPS, s.Duration, s.Direction, s.Seed)
}

func (s testScene) Frame(i int) *Image          { return s.scene().Frame(i) }
func (s testScene) Frames() int                 { return s.scene().Frames() }
func (s testScene) Centre(i int) (x, y float64) { return s.scene().Centre(i) }
func (s testScene) WriteFile(path string) error { return s.scene().WriteFile(path) }
