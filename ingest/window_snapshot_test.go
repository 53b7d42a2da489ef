package ingest

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// Each window carries the frame at its centre (the frame kept for slot 8
// of 16), scaled to at most snapshotWidth, with that frame's media time;
// without snapshotWidth none. Whatever the stride, also one longer than
// the window.
func TestWindowSnapshotIsTheCentreFrame(t *testing.T) {
	pts := evenly(25, 30*time.Second)
	for _, stride := range []int{1, 2, 4, 16, 20} {
		for _, width := range []int{0, 2, 8} {
			grid := testGrid(stride)
			grid.snapshotWidth = width
			ps := newTestPics(t)
			w := newWindow("cam", grid)
			wins := feed(t, w, ps, pts)
			w.close()
			if len(wins) < 2 {
				t.Fatalf("stride %d: %d windows", stride, len(wins))
			}
			for n, win := range wins {
				if width == 0 {
					if win.Snapshot != nil {
						t.Fatalf("stride %d, no snapshot width: window %d has a snapshot", stride, n)
					}
					continue
				}
				centre := n*stride + 8
				want := nearest(pts, centre, centre+1)[0]
				img := win.Snapshot
				if img == nil {
					t.Fatalf("stride %d width %d: window %d has no snapshot", stride, width, n)
				}
				r, g, _ := img.At(img.W/2, img.H/2)
				if got := int(r) | int(g)<<8; got != want || win.SnapshotMedia != pts[want] {
					t.Fatalf("stride %d width %d: window %d's snapshot is frame %d at %v, want frame %d at %v",
						stride, width, n, got, win.SnapshotMedia, want, pts[want])
				}
				if wantW := min(4, width); img.W != wantW || img.H != wantW {
					t.Fatalf("stride %d width %d: snapshot %v, want %dx%d", stride, width, img, wantW, wantW)
				}
			}
			ps.checkReleased()
		}
	}
}

// A snapshot is the frame resized as ResizeBilinear resizes it, byte for
// byte, whether its height splits into equal bands of rows or not (53 is
// prime), and the second snapshot of a size reuses the first's scratch.
func TestWindowSnapshotMatchesResizeBilinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 13))
	for _, c := range []struct{ w, h, width int }{
		{1280, 720, 640}, // 640x360, bands of 45 rows
		{300, 159, 100},  // 100x53: bands of one row
		{64, 48, 640},    // narrower than the width: copied
	} {
		grid := testGrid(2)
		grid.snapshotWidth = c.width
		w := newWindow("cam", grid)
		for i := range 2 {
			img := randomImage(rng, c.w, c.h)
			w.keepSnapshot(0, img, 0)
			want := img
			if c.w > c.width {
				want = ResizeBilinear(img, c.width, max(1, (c.h*c.width+c.w/2)/c.w))
			}
			got := w.snaps[i].img // the first free place
			if got.W != want.W || got.H != want.H || !bytes.Equal(got.Pix, want.Pix) {
				t.Fatalf("%dx%d at width %d, snapshot %d: %v differs from %v", c.w, c.h, c.width, i, got, want)
			}
			if got == img || &got.Pix[0] == &img.Pix[0] {
				t.Fatalf("%dx%d: the snapshot shares the frame's pixels", c.w, c.h)
			}
		}
	}
}
