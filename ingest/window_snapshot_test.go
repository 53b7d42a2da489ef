package ingest

import (
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
