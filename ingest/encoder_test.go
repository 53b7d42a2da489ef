package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// testEncoder maps a test frame [3,4,4] to 2 features: its first red value
// (which names the frame) and the sum of its green plane, and counts calls.
type testEncoder struct {
	calls int
	fail  error
}

func (e *testEncoder) FeatureSize() int { return 2 }

func (e *testEncoder) Encode(frame, dst []float32) error {
	e.calls++
	if e.fail != nil {
		return e.fail
	}
	if len(frame) != 3*4*4 || len(dst) != 2 {
		return errors.New("bad sizes")
	}
	var g float32
	for _, v := range frame[16:32] {
		g += v
	}
	dst[0], dst[1] = frame[0], g
	return nil
}

// With an encoder, each window holds per slot the encoding of the frame the
// pixel window holds there, and each kept frame is encoded once, however
// many slots and windows it fills.
func TestWindowEncodesKeptFrames(t *testing.T) {
	// 7 fps: some frames fill two slots; stride 2: each frame is in up to 8
	// windows.
	pts := evenly(7, 30*time.Second)
	pix := feed(t, newWindow("test", testGrid(2)), newTestPics(t), pts)

	enc := &testEncoder{}
	grid := testGrid(2)
	grid.enc = enc
	ps := newTestPics(t)
	w := newWindow("test", grid)
	wins := feed(t, w, ps, pts)
	if len(wins) != len(pix) || len(wins) < 10 {
		t.Fatalf("%d windows with the encoder, %d without", len(wins), len(pix))
	}
	const frame = 3 * 4 * 4
	for n, win := range wins {
		if len(win.Tensor) != 16*2 {
			t.Fatalf("window %d: %d values, want 16 slots of 2", n, len(win.Tensor))
		}
		for s := range 16 {
			want := make([]float32, 2)
			if err := (&testEncoder{}).Encode(pix[n].Tensor[s*frame:(s+1)*frame], want); err != nil {
				t.Fatal(err)
			}
			if got := win.Tensor[2*s : 2*s+2]; got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("window %d slot %d: %v, want %v", n, s, got, want)
			}
		}
		if win.MediaStart != pix[n].MediaStart || win.FramesKept != pix[n].FramesKept {
			t.Errorf("window %d: %v, without the encoder %v", n, &win, &pix[n])
		}
	}
	if enc.calls != int(w.converted) || enc.calls > len(pts) {
		t.Errorf("%d encodings for %d frames converted (%d pushed)", enc.calls, w.converted, len(pts))
	}
	// The ring holds features; pixels only for the frame being encoded.
	if fp, want := w.footprint(), 16*2*4+frame*4; fp < want || fp > want+1<<12 {
		t.Errorf("footprint %d bytes, want about %d: 16 slots of features and one frame of pixels", fp, want)
	}
	w.close()
	ps.checkReleased()
}

func TestWindowEncoderError(t *testing.T) {
	grid := testGrid(2)
	grid.enc = &testEncoder{fail: errors.New("session is closed")}
	ps := newTestPics(t)
	w := newWindow("test", grid)
	start := time.Now()
	var err error
	for i, p := range evenly(25, 2*time.Second) {
		if _, _, err = w.push(frameMeta{pts: p, conn: 1, recv: start.Add(p)}, ps.pic(i)); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "encode frame: session is closed") {
		t.Fatalf("error %v, want the encoder's", err)
	}
	w.close()
	ps.checkReleased()
}
