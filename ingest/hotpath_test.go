package ingest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/actiond/actiond/models"
)

// The live hot path: an access unit off the network goes through the
// decoder, the window's push and, for the frames a slot keeps, RGB
// conversion and preprocessing. It runs once per frame per stream, so in
// steady state it must not allocate: garbage per frame turns into GC work
// that grows with the number of cameras.

// hotPath is a stream's pipeline fed from memory: a real H.264 stream (our
// encoder), the real libav decoder, the real window with PP-TSMv2's
// preprocessing. next feeds the clip over and over, timestamps running on.
type hotPath struct {
	p       *pipeline
	dec     *decoder
	aus     []accessUnit
	clipDur time.Duration
	i       int
	windows int
	base    time.Time
}

func newHotPath(tb testing.TB) *hotPath {
	tb.Helper()
	scene := testScene{Width: 320, Height: 240, FPS: 25, Duration: 4 * time.Second, Direction: Right}
	aus := encodeScene(tb, scene, scene.Frames())
	set := streamSettings{
		StreamConfig: StreamConfig{Name: "hot"},
		grid: windowGrid{
			segments:    16,
			slot:        625 * time.Millisecond,
			strideSlots: 16,
			maxJump:     20 * time.Second,
			pre:         Preprocessor{ShortSide: 256, CropSize: 224, Mean: models.ImageNetMean, Std: models.ImageNetStd},
		},
	}
	h := &hotPath{
		aus:     aus,
		clipDur: scene.Duration,
		base:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	h.p = newPipeline(set, slog.New(slog.NewTextHandler(io.Discard, nil)), &sourceCounters{}, &streamCounters{})
	h.p.onWindow = func(Window) { h.windows++ }
	dec, err := newDecoder(CodecH264, &h.p.conv)
	if err != nil {
		tb.Fatal(err)
	}
	h.dec = dec
	tb.Cleanup(func() {
		h.dec.close()
		h.p.close()
	})
	return h
}

// next feeds one access unit.
func (h *hotPath) next() {
	au := h.aus[h.i%len(h.aus)]
	shift := time.Duration(h.i/len(h.aus)) * h.clipDur
	au.pts += shift
	au.recv = h.base.Add(au.pts)
	h.i++
	h.p.decode(h.dec, au)
}

// BenchmarkLiveHotPath is one frame of a live stream, in steady state:
// decode, window push, and for about one frame in 16 (a 10 s window of 16
// slots at 25 fps) RGB conversion and Scale/CenterCrop/normalise. Windows
// complete every 250 frames; their tensor is the receiver's copy, the one
// allocation by design (about 1 per 250 ops).
//
//	go test ./ingest -run '^$' -bench LiveHotPath -benchmem
func BenchmarkLiveHotPath(b *testing.B) {
	h := newHotPath(b)
	for range 2 * 250 { // two windows: every buffer and pool at its size
		h.next()
	}
	b.ReportAllocs()
	for b.Loop() {
		h.next()
	}
	b.ReportMetric(float64(h.p.ctr.converted.Load())/float64(h.p.ctr.frames.Load()), "kept/frame")
}

// In steady state the hot path allocates nothing per frame: measured over
// the frames between two window ends (windows themselves allocate the
// receiver's tensor), which include kept frames that are converted and
// preprocessed.
func TestLiveHotPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	h := newHotPath(t)
	for range 2 * 250 {
		h.next()
	}
	// The third window ends at frame 750; 200 frames from 510 on stay
	// clear of it (and of the held-back frame that completes it).
	for h.i < 510 {
		h.next()
	}
	conv0, wins0 := h.p.win.converted, h.windows
	allocs := testing.AllocsPerRun(200, h.next)
	if h.windows != wins0 {
		t.Fatalf("a window completed during the measurement")
	}
	kept := h.p.win.converted - conv0
	if kept < 10 {
		t.Fatalf("only %d frames were kept and preprocessed in 200", kept)
	}
	if allocs != 0 {
		t.Errorf("%.2f allocations per frame (%d of the frames kept), want 0", allocs, kept)
	}
}
