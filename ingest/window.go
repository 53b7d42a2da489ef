package ingest

import (
	"fmt"
	"slices"
	"time"
)

// Clock says where a window's absolute times come from.
type Clock string

// Clocks a Window can be timed by.
const (
	// ClockRTCP is capture time: the camera's RTCP sender reports map its
	// RTP timestamps to its wall clock.
	ClockRTCP Clock = "rtcp"
	// ClockReceive is this server's clock when the frame's packets arrived;
	// used until (or unless) the camera sends sender reports.
	ClockReceive Clock = "receive"
)

// Span is where a window lies in its stream, in media and absolute time.
// The server passes it from the window to the hub's events unchanged but
// for a media offset that keeps media time increasing across reconnects.
type Span struct {
	// MediaStart and MediaEnd are the window's range in media time: time
	// since the stream's first frame, from RTP timestamps. Within an epoch
	// they are exact; across epochs the gap is measured by the receive
	// clock, so media time keeps increasing.
	MediaStart, MediaEnd time.Duration
	// AbsStart and AbsEnd are the same range in absolute time, by Clock.
	AbsStart, AbsEnd time.Time
	// Clock says whether AbsStart and AbsEnd are capture or receive time.
	Clock Clock
	// Completed is when the packets of the frame that completed the window
	// arrived, by this machine's clock whatever Clock says: the first frame
	// at or past MediaEnd (or the last one before the epoch ended). No
	// result can exist before it, so a result's latency counts from it.
	Completed time.Time
}

// Window is one full window of a live stream, as model input.
//
// The tensor is the receiver's: every Window carries its own copy, so it may
// be kept, modified or handed to another goroutine. With a TensorPool
// (Stream.SetTensorPool) it comes as a Lease: give it up when done.
type Window struct {
	// Stream is the name of the stream the window comes from.
	Stream string
	// Seq numbers the stream's windows from 0, across epochs.
	Seq uint64
	// Epoch counts continuous stretches of the stream from 1; it changes
	// when the stream reconnects or its timestamps jump.
	Epoch uint64
	// Tensor is [segments, 3, size, size] float32, the model input without
	// the batch axis: per slot the frame nearest the slot's centre,
	// preprocessed exactly as a clip is (Preprocessor.Frame). With a
	// FrameEncoder it is [segments, FeatureSize()]: per slot that frame's
	// features.
	Tensor []float32
	// Lease, with a TensorPool (Stream.SetTensorPool), carries the tensor
	// instead of Tensor, which is then nil: copy it out with CopyTo and
	// give it up with Release when done.
	Lease *Lease
	// Span is where the window lies in the stream.
	Span
	// FramesSeen is how many decoded frames fell in the window; FramesKept
	// how many distinct ones of them it samples (at most segments: a slot
	// without a frame of its own repeats its nearest neighbour).
	FramesSeen, FramesKept int
	// FPS is the input frame rate over the window: FramesSeen / duration.
	FPS float64
	// Snapshot, when the stream keeps snapshots (SnapshotWidth), is the
	// decoded frame at the window's centre, at most SnapshotWidth wide;
	// SnapshotMedia is its time, in the window's media time. The Image is
	// the receiver's.
	Snapshot      *Image
	SnapshotMedia time.Duration
}

// Duration is MediaEnd - MediaStart.
func (w *Window) Duration() time.Duration { return w.MediaEnd - w.MediaStart }

func (w *Window) String() string {
	return fmt.Sprintf("window %d (epoch %d) %.3fs..%.3fs, %d/%d frames, %.1f fps, %s clock",
		w.Seq, w.Epoch, w.MediaStart.Seconds(), w.MediaEnd.Seconds(), w.FramesKept, w.FramesSeen, w.FPS, w.Clock)
}

// frameMeta is what the window needs to know about a decoded frame.
type frameMeta struct {
	pts  time.Duration // on the connection's timeline (RTP), from its first frame
	conn uint64        // which connection the frame came over
	recv time.Time     // when its packets arrived
	ntp  time.Time     // capture time from RTCP sender reports; zero if unknown

	width, height int // for status; the window does not need them
}

// picture is a decoded frame that has not been converted yet. The window
// converts a frame only when it keeps it, and releases every picture it is
// given exactly once, kept or not.
type picture interface {
	image() (*Image, error)
	release()
}

// pictureInto is a picture that can convert into a caller's Image,
// reusing its pixels (the decoder's pictures can).
type pictureInto interface {
	imageInto(dst *Image) error
}

// epochChange tells that a new epoch started, and why.
type epochChange struct {
	epoch  uint64
	reason string
}

// windowGrid is the fixed shape of a stream's windows.
type windowGrid struct {
	segments    int           // slots per window (the model's T)
	slot        time.Duration // window / segments
	strideSlots int           // slots between the ends of two windows
	maxJump     time.Duration // a larger forward timestamp jump starts an epoch
	pre         Preprocessor
	// enc, when set, encodes each kept frame after preprocessing; the
	// ring then holds features.
	enc FrameEncoder
	// pool, when set, lends the windows' tensors.
	pool *TensorPool
	// snapshotWidth, when positive, has each window carry the frame at
	// its centre, scaled to at most this width.
	snapshotWidth int
}

// window turns decoded frames into Windows on a time grid. Slot k of an epoch
// covers [k·slot, (k+1)·slot) from the epoch's first frame; a window is
// segments slots and ends on a slot boundary, each next one strideSlots
// later. For each slot it keeps the frame nearest the slot's centre,
// preprocessed, in a ring of segments buffers: memory depends on the
// window, never on the frame rate.
//
// Which frame is nearest a centre is known once a frame at or after the
// centre arrives: it is that frame or the one before. So the window holds
// back the last frame, unconverted, until the next one shows which slots it
// is nearest to; only then is it converted (once, whatever the number of
// slots it fills) or released. A frame between two centres that is nearest
// to neither is never converted.
//
// It is not safe for concurrent use; the stream's goroutine owns it.
type window struct {
	grid      windowGrid
	stream    string
	frameSize int       // values per slot: pixels, or features with an encoder
	pixels    []float32 // with an encoder, the frame being encoded

	// The ring: slot k of the epoch lives in ring[k % len(ring)]: segments
	// buffers, and with a pool two strides more, so that a window's slots
	// outlive the next window's emission (Lease).
	ring      [][]float32
	ringSlot  []int64  // which slot each buffer holds; -1 none
	ringFrame []uint64 // which frame (serial in the epoch) it came from
	// counts tallies frames per slot, for FramesSeen. Frames arrive up to
	// maxJump ahead of the oldest slot still needed, so the ring spans a
	// window plus maxJump.
	counts []slotCount

	epoch   uint64
	started bool
	conn    uint64
	t0      time.Duration // pts of the epoch's first frame
	media0  time.Duration // its media time
	last    frameMeta     // the last frame pushed
	serial  uint64        // frames in the epoch so far
	held    *heldFrame    // the last frame, until the next one decides it
	// heldBuf holds the two heldFrames in use (the held one and the one
	// that settles it), reused frame after frame; rgb and scratch are the
	// kept frames' conversion and resizing buffers. The hot path then
	// allocates nothing per frame.
	heldBuf [2]heldFrame
	rgb     Image
	scratch resizeScratch
	// snapScratch resizes the snapshots (snapshotWidth).
	snapScratch resizeScratch
	// endReason says why the last epoch ended, for the next one's start.
	endReason string
	nextEnd   int64 // slot at which the next window ends (exclusive)
	seq       uint64

	// snaps are the centre frames of the windows to come (snapshotWidth).
	snaps []snapFrame

	// leases are the emitted windows that may still read the ring.
	leases []*Lease

	// Stats, read by the owner.
	converted  uint64 // frames converted to RGB and preprocessed
	seen       uint64 // frames pushed
	lost       uint64 // windows skipped: a frame they needed failed
	lostReason string // why the last one was
}

type slotCount struct {
	slot int64
	n    int
}

// heldFrame is the last frame pushed: converted or released when the next
// frame arrives.
type heldFrame struct {
	meta   frameMeta
	rel    time.Duration // pts - t0
	serial uint64
	pic    picture
	picks  []int64 // slots it is nearest to, known so far (ascending)
}

func newWindow(stream string, grid windowGrid) *window {
	w := &window{grid: grid, stream: stream, frameSize: grid.pre.FrameSize()}
	if grid.enc != nil {
		w.frameSize = grid.enc.FeatureSize()
	}
	n := grid.segments
	if grid.pool != nil {
		n += 2 * min(grid.strideSlots, grid.segments)
	}
	w.ring = make([][]float32, n)
	w.ringSlot = make([]int64, n)
	w.ringFrame = make([]uint64, n)
	jumpSlots := int(grid.maxJump/grid.slot) + 1
	w.counts = make([]slotCount, grid.segments+max(grid.strideSlots, grid.segments)+jumpSlots+4)
	w.clear()
	return w
}

// clear forgets the epoch's frames: the ring, the counts and the held frame.
func (w *window) clear() {
	if w.held != nil {
		w.held.pic.release()
		w.held = nil
	}
	for i := range w.ringSlot {
		w.ringSlot[i] = -1
	}
	for i := range w.counts {
		w.counts[i] = slotCount{slot: -1}
	}
	for i := range w.snaps {
		w.snaps[i] = snapFrame{slot: -1}
	}
	w.started = false
}

// close releases the held frame and drops the buffers. A push afterwards
// starts a new epoch with fresh buffers.
func (w *window) close() {
	w.endReason = "restarted"
	w.clear()
	for i := range w.ring {
		w.ring[i] = nil
	}
	w.leases = nil // they keep the buffers they read; new ones are made
	w.pixels = nil
	w.rgb, w.scratch, w.snapScratch = Image{}, resizeScratch{}, resizeScratch{}
}

// footprint is the memory the window holds for frames, in bytes; it depends
// only on the grid and the model input size.
func (w *window) footprint() int {
	n := 0
	for _, b := range w.ring {
		n += 4 * cap(b)
	}
	return n + 4*cap(w.pixels) + len(w.counts)*16 + len(w.ringSlot)*16
}

// push takes the next decoded frame in presentation order. It returns the
// windows that the frame completes (usually none or one) and, when the
// frame starts a new epoch, why. push releases pic (now or later).
func (w *window) push(m frameMeta, pic picture) (wins []Window, change *epochChange, err error) {
	w.seen++
	if w.started {
		reason := ""
		switch d := m.pts - w.last.pts; {
		case m.conn != w.conn:
			reason = "reconnected"
		case d < 0:
			reason = fmt.Sprintf("timestamp jumped back %v", -d)
		case d > w.grid.maxJump && m.recv.Sub(w.last.recv) > d/2:
			// The clock went on as the wall clock did: frames were
			// missing (a stall, heavy loss), and the slots between
			// would repeat the two frames around the gap.
			reason = fmt.Sprintf("no frames for %v", d)
		case d > w.grid.maxJump:
			reason = fmt.Sprintf("timestamp jumped forward %v", d)
		}
		if reason != "" {
			wins, err = w.endEpoch(reason)
		}
	}
	if !w.started {
		reason, media0 := "first frame", time.Duration(0)
		if w.epoch > 0 {
			// Media time goes on across the break, by the receive clock.
			reason = w.endReason
			gap := m.recv.Sub(w.last.recv)
			if gap <= 0 {
				gap = time.Millisecond
			}
			media0 = w.lastMedia() + gap
		}
		w.startEpoch(m, pic, media0)
		return wins, &epochChange{epoch: w.epoch, reason: reason}, err
	}

	rel := m.pts - w.t0
	w.count(rel)
	cur := w.spare()
	cur.meta, cur.rel, cur.serial, cur.pic = m, rel, w.serial, pic
	w.serial++
	prev := w.held
	// Centres in (prev, cur]: each goes to the nearer of the two; a tie to
	// the earlier frame.
	s := w.grid.slot
	for k := w.firstCentreAfter(prev.rel); ; k++ {
		c := time.Duration(k)*s + s/2
		if c > rel {
			break
		}
		if c-prev.rel <= rel-c {
			prev.picks = append(prev.picks, k)
		} else {
			cur.picks = append(cur.picks, k)
		}
	}
	w.held = cur
	w.last = m
	wins, err = w.settle(prev, cur)
	wins = append(wins, w.flush(cur)...)
	return wins, nil, err
}

// firstCentreAfter returns the first slot whose centre is after rel.
func (w *window) firstCentreAfter(rel time.Duration) int64 {
	s := w.grid.slot
	if rel < s/2 {
		return 0
	}
	// centre k = k·s + s/2 > rel  ⇔  k > (rel - s/2)/s
	return int64((rel-s/2)/s) + 1
}

func (w *window) count(rel time.Duration) {
	slot := int64(rel / w.grid.slot)
	c := &w.counts[slot%int64(len(w.counts))]
	if c.slot != slot {
		*c = slotCount{slot: slot}
	}
	c.n++
}

func (w *window) startEpoch(m frameMeta, pic picture, media0 time.Duration) {
	w.clear()
	w.epoch++
	w.started = true
	w.conn = m.conn
	w.t0 = m.pts
	w.media0 = media0
	w.last = m
	w.serial = 1
	w.nextEnd = int64(w.grid.segments)
	w.count(0)
	// The first frame is at the start of slot 0, before its centre: it
	// may be nearest to it, which the next frame decides.
	h := w.spare()
	h.meta, h.pic = m, pic
	w.held = h
}

// spare returns the heldFrame of heldBuf that is not held, emptied (its
// picks keep their array).
func (w *window) spare() *heldFrame {
	h := &w.heldBuf[0]
	if w.held == h {
		h = &w.heldBuf[1]
	}
	*h = heldFrame{picks: h.picks[:0]}
	return h
}

// endEpoch settles what the held frame is known to be nearest to (the
// centres before it), emits what that completes and clears the window. The
// next push starts a new epoch, for the reason given.
func (w *window) endEpoch(reason string) ([]Window, error) {
	w.endReason = reason
	if !w.started {
		return nil, nil
	}
	var (
		wins []Window
		err  error
	)
	if w.held != nil {
		h := w.held
		w.held = nil
		wins, err = w.settle(h, h)
		wins = append(wins, w.flush(h)...)
	}
	w.clear()
	return wins, err
}

// lastMedia is the media time of the last frame pushed.
func (w *window) lastMedia() time.Duration {
	return w.media0 + w.last.pts - w.t0
}

// settle converts h if some slot that a future window needs is nearest to
// it, stores it in those slots, and releases h. latest is the last frame
// pushed.
//
// When h does not convert (or the encoder refuses it), its slots go to the
// next frame: they are put in front of latest's, to be filled when latest
// settles, so the windows keep their 16 slots in order. Only when there is
// no next frame (the epoch ends with h), or no frame has converted for more
// than maxJump, are the windows that needed them skipped and counted.
func (w *window) settle(h, latest *heldFrame) (wins []Window, err error) {
	defer h.pic.release()
	seg := int64(w.grid.segments)
	var buf []float32 // the first slot filled, copied to the others
	var img *Image
	for j, k := range h.picks {
		// Only slots of a future window: with a stride longer than the
		// window some slots belong to none.
		if k < w.nextEnd-seg {
			continue
		}
		if k >= w.nextEnd {
			// The slot's buffer still holds the pending window's first
			// slot: emit that window first (its end is behind latest).
			wins = append(wins, w.flush(latest)...)
		}
		i := int(k % int64(len(w.ring)))
		w.protect(i)
		if buf == nil {
			if w.ring[i] == nil {
				w.ring[i] = make([]float32, w.frameSize)
			}
			if img, err = w.convert(h.pic, w.ring[i]); err != nil {
				w.ringSlot[i] = -1 // partly written
				w.pass(h.picks[j:], h, latest)
				return wins, fmt.Errorf("frame at %v: %w", h.meta.pts, err)
			}
			buf = w.ring[i]
		} else {
			if w.ring[i] == nil {
				w.ring[i] = make([]float32, w.frameSize)
			}
			copy(w.ring[i], buf)
		}
		w.ringSlot[i], w.ringFrame[i] = k, h.serial
		w.keepSnapshot(k, img, h.rel)
	}
	return wins, nil
}

// protect copies out the held leases that read ring buffer i, which is
// about to be written, and forgets the leases that no longer read the
// ring.
func (w *window) protect(i int) {
	kept := w.leases[:0]
	for _, l := range w.leases {
		if !l.protect(i) {
			kept = append(kept, l)
		}
	}
	clear(w.leases[len(kept):])
	w.leases = kept
}

// convert converts pic and keeps it in dst; it returns the converted
// picture (for a snapshot) when that worked.
func (w *window) convert(pic picture, dst []float32) (*Image, error) {
	img, err := w.image(pic)
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	w.converted++
	if err := w.keep(img, dst); err != nil {
		return nil, err
	}
	return img, nil
}

// pass gives the slots of h, a frame that failed, to latest, the next
// frame, which is nearest to them of the frames that are left. When h is
// the last frame of the epoch, or the slots have waited longer than
// maxJump for a frame that converts, the windows that needed them are
// skipped instead.
func (w *window) pass(slots []int64, h, latest *heldFrame) {
	if len(slots) == 0 {
		return
	}
	seg, slot := int64(w.grid.segments), w.grid.slot
	first, last := slots[0], slots[len(slots)-1]
	if latest == h {
		// The windows that would have ended by now are lost; later ones
		// never complete in this epoch anyway.
		for w.nextEnd-seg <= last && time.Duration(w.nextEnd)*slot <= h.rel {
			w.skip("a frame they needed could not be converted, and the epoch ended")
		}
		return
	}
	if waited := latest.rel - time.Duration(first)*slot; waited > w.grid.maxJump {
		for w.nextEnd-seg <= last {
			w.skip(fmt.Sprintf("no frame could be converted for %v", waited))
		}
		return
	}
	latest.picks = slices.Insert(latest.picks, 0, slots...)
}

// skip counts the window that ends at w.nextEnd as lost, for reason, and
// moves on to the next. Seq numbers the windows made: a lost one takes no
// number.
func (w *window) skip(reason string) {
	w.lost++
	w.lostReason = reason
	w.nextEnd += int64(w.grid.strideSlots)
}

// keep preprocesses img into dst, through the encoder when there is one.
func (w *window) keep(img *Image, dst []float32) error {
	if w.grid.enc == nil {
		return w.grid.pre.frame(img, dst, &w.scratch)
	}
	if w.pixels == nil {
		w.pixels = make([]float32, w.grid.pre.FrameSize())
	}
	if err := w.grid.pre.frame(img, w.pixels, &w.scratch); err != nil {
		return err
	}
	if err := w.grid.enc.Encode(w.pixels, dst); err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	return nil
}

// image converts pic, into the window's own buffer when pic can.
func (w *window) image(pic picture) (*Image, error) {
	if p, ok := pic.(pictureInto); ok {
		if err := p.imageInto(&w.rgb); err != nil {
			return nil, err
		}
		return &w.rgb, nil
	}
	return pic.image()
}

// flush emits the windows that are complete: every slot settled, and a
// frame at or past the window's end seen, so that FramesSeen counts the
// whole window. latest is the last frame pushed.
func (w *window) flush(latest *heldFrame) []Window {
	var wins []Window
	for w.ringSlot[(w.nextEnd-1)%int64(len(w.ring))] == w.nextEnd-1 && time.Duration(w.nextEnd)*w.grid.slot <= latest.rel {
		if k, ok := w.missing(); ok {
			// Slots are settled in order, so the last one filled means
			// all are; should that ever not hold, the window is
			// skipped, never emitted with a hole or a crash.
			w.skip(fmt.Sprintf("slot %d of the window was never filled", k))
			continue
		}
		wins = append(wins, w.emit(latest))
		w.nextEnd += int64(w.grid.strideSlots)
	}
	return wins
}

// missing returns the first slot of the window ending at w.nextEnd that
// holds no frame, if any.
func (w *window) missing() (int64, bool) {
	seg := int64(w.grid.segments)
	for k := w.nextEnd - seg; k < w.nextEnd; k++ {
		if w.ringSlot[k%int64(len(w.ring))] != k {
			return k, true
		}
	}
	return 0, false
}

// emit builds the window that ends at w.nextEnd, timed by anchor, a frame
// whose media time is known.
func (w *window) emit(anchor *heldFrame) Window {
	seg := int64(w.grid.segments)
	first := w.nextEnd - seg
	win := Window{
		Stream: w.stream,
		Seq:    w.seq,
		Epoch:  w.epoch,
	}
	var lease *Lease
	if w.grid.pool != nil {
		lease = &Lease{pool: w.grid.pool, size: int(seg) * w.frameSize}
		win.Lease = lease
		w.leases = append(w.leases, lease)
	} else {
		win.Tensor = make([]float32, int(seg)*w.frameSize)
	}
	w.seq++
	frames := make(map[uint64]bool, seg)
	for k := first; k < w.nextEnd; k++ {
		i := int(k % int64(len(w.ring)))
		if lease != nil {
			lease.slots = append(lease.slots, w.ring[i])
			lease.idx = append(lease.idx, i)
		} else {
			pos := int(k - first)
			copy(win.Tensor[pos*w.frameSize:(pos+1)*w.frameSize], w.ring[i])
		}
		frames[w.ringFrame[i]] = true
		if c := w.counts[k%int64(len(w.counts))]; c.slot == k {
			win.FramesSeen += c.n
		}
	}
	win.FramesKept = len(frames)
	s := w.grid.slot
	win.MediaStart = w.media0 + time.Duration(first)*s
	win.MediaEnd = w.media0 + time.Duration(w.nextEnd)*s
	// Absolute times from the anchor frame, whose media time is known on
	// both clocks: the window's edges are that far from it.
	anchorMedia := w.media0 + anchor.rel
	abs, clock := anchor.meta.recv, ClockReceive
	if !anchor.meta.ntp.IsZero() {
		abs, clock = anchor.meta.ntp, ClockRTCP
	}
	win.Clock = clock
	win.Completed = anchor.meta.recv
	win.AbsStart = abs.Add(win.MediaStart - anchorMedia)
	win.AbsEnd = abs.Add(win.MediaEnd - anchorMedia)
	win.FPS = float64(win.FramesSeen) / (time.Duration(seg) * s).Seconds()
	w.takeSnapshot(&win)
	return win
}
