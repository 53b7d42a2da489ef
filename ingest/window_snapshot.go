package ingest

import "time"

// snapFrame is a window's centre frame, kept for its snapshot.
type snapFrame struct {
	slot int64 // the centre slot it fills; -1 none
	img  *Image
	rel  time.Duration // the frame's pts - t0
}

// keepSnapshot keeps a copy of img, the frame settled into slot k, when k
// is the centre slot of a window to come: the slot starting at the middle
// of the window. Only those frames are copied (scaled to at most
// snapshotWidth), one per window.
func (w *window) keepSnapshot(k int64, img *Image, rel time.Duration) {
	width := w.grid.snapshotWidth
	if width <= 0 || img == nil {
		return
	}
	end := k + int64(w.grid.segments/2)
	if end < w.nextEnd || (end-w.nextEnd)%int64(w.grid.strideSlots) != 0 {
		return
	}
	if w.snaps == nil {
		// The windows whose centres can be settled before the first of
		// them is emitted, and one more.
		n := w.grid.segments/2/w.grid.strideSlots + 2
		w.snaps = make([]snapFrame, n)
		for i := range w.snaps {
			w.snaps[i].slot = -1
		}
	}
	// A free place, or the oldest.
	at := 0
	for i, s := range w.snaps {
		if s.slot < 0 {
			at = i
			break
		}
		if s.slot < w.snaps[at].slot {
			at = i
		}
	}
	var cp *Image
	if img.W > width {
		h := max(1, (img.H*width+img.W/2)/img.W)
		// In bands of rows, through the window's own scratch: at once,
		// the intermediate would be full height (1.3 MB for 720p at 640
		// wide), made per snapshot or kept per stream. Each band is
		// byte-identical to the same rows of the whole resize.
		cp = &Image{W: width, H: h, Pix: make([]uint8, width*h*3)}
		band := snapshotBand(h)
		for y := 0; y < h; y += band {
			r := w.snapScratch.resize(img, width, h, 0, y, width, band)
			copy(cp.Pix[y*width*3:], r.Pix)
		}
	} else {
		cp = &Image{W: img.W, H: img.H, Pix: append([]uint8(nil), img.Pix...)}
	}
	w.snaps[at] = snapFrame{slot: k, img: cp, rel: rel}
}

// takeSnapshot hands the centre frame of the window ending at w.nextEnd
// over to win.
func (w *window) takeSnapshot(win *Window) {
	centre := w.nextEnd - int64(w.grid.segments/2)
	for i, s := range w.snaps {
		if s.slot == centre {
			win.Snapshot, win.SnapshotMedia = s.img, w.media0+s.rel
			w.snaps[i] = snapFrame{slot: -1}
			return
		}
	}
}

// snapshotBand is the rows a snapshot of height h is resized by at a time:
// the largest divisor of h up to 48, so that every band has one size and
// the scratch's filter is set up once.
func snapshotBand(h int) int {
	for b := min(h, 48); b > 1; b-- {
		if h%b == 0 {
			return b
		}
	}
	return 1
}
