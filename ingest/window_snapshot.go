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
		cp = ResizeBilinear(img, width, h)
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
