package ingest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The window tests push synthetic frames whose pixels name them: a 4×4
// picture whose red and green bytes are the frame's number, preprocessed
// with mean 0 and std 1 so that the tensor reads back value/255. That way a
// test can tell which frame each slot kept.

const testSlot = 625 * time.Millisecond

func testGrid(strideSlots int) windowGrid {
	return windowGrid{
		segments:    16,
		slot:        testSlot,
		strideSlots: strideSlots,
		maxJump:     20 * time.Second,
		pre:         Preprocessor{ShortSide: 4, CropSize: 4, Mean: [3]float32{}, Std: [3]float32{1, 1, 1}},
	}
}

// testPics hands out pictures and checks that each is released once.
type testPics struct {
	t         *testing.T
	converted int
	released  map[int]int
	made      int
	// fail names the frames whose conversion fails, as a frame in a
	// pixel format swscale cannot take does.
	fail map[int]bool
}

func newTestPics(t *testing.T) *testPics { return &testPics{t: t, released: map[int]int{}} }

type testPic struct {
	ps *testPics
	id int
}

func (ps *testPics) pic(id int) *testPic {
	ps.made++
	return &testPic{ps: ps, id: id}
}

func (p *testPic) image() (*Image, error) {
	if p.ps.released[p.id] > 0 {
		p.ps.t.Errorf("frame %d converted after release", p.id)
	}
	if p.ps.fail[p.id] {
		return nil, fmt.Errorf("frame %d does not convert", p.id)
	}
	p.ps.converted++
	img := NewImage(4, 4)
	for y := range 4 {
		for x := range 4 {
			img.Set(x, y, uint8(p.id), uint8(p.id>>8), 0)
		}
	}
	return img, nil
}

func (p *testPic) release() {
	p.ps.released[p.id]++
	if n := p.ps.released[p.id]; n > 1 {
		p.ps.t.Errorf("frame %d released %d times", p.id, n)
	}
}

// checkReleased fails unless every picture handed out was released.
func (ps *testPics) checkReleased() {
	ps.t.Helper()
	if len(ps.released) != ps.made {
		ps.t.Errorf("%d pictures made, %d released", ps.made, len(ps.released))
	}
}

// slotFrames reads back which frame each slot of a window holds.
func slotFrames(t *testing.T, win Window) []int {
	t.Helper()
	const frame = 3 * 4 * 4
	if len(win.Tensor) != 16*frame {
		t.Fatalf("tensor has %d values, want %d", len(win.Tensor), 16*frame)
	}
	ids := make([]int, 16)
	for s := range ids {
		r := int(math.Round(float64(win.Tensor[s*frame]) * 255))
		g := int(math.Round(float64(win.Tensor[s*frame+16]) * 255))
		ids[s] = r | g<<8
	}
	return ids
}

// nearest returns, for each slot in [from, to), the index of the frame whose
// pts is nearest the slot's centre (ties to the earlier frame): the rule,
// by brute force.
func nearest(pts []time.Duration, from, to int) []int {
	var out []int
	for k := from; k < to; k++ {
		c := time.Duration(k)*testSlot + testSlot/2
		best := 0
		for i, p := range pts {
			if (p - c).Abs() < (pts[best] - c).Abs() {
				best = i
			}
		}
		out = append(out, best)
	}
	return out
}

// feed pushes frames with the given pts (ids are their indices) and
// returns the windows, failing on errors or epoch changes after the first.
func feed(t *testing.T, w *window, ps *testPics, pts []time.Duration) []Window {
	t.Helper()
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var wins []Window
	for i, p := range pts {
		got, change, err := w.push(frameMeta{pts: p, conn: 1, recv: start.Add(p)}, ps.pic(i))
		if err != nil {
			t.Fatal(err)
		}
		if change != nil && i > 0 {
			t.Fatalf("frame %d at %v started epoch %d: %s", i, p, change.epoch, change.reason)
		}
		wins = append(wins, got...)
	}
	return wins
}

// evenly returns n frame times at fps from 0.
func evenly(fps float64, d time.Duration) []time.Duration {
	var pts []time.Duration
	for i := 0; ; i++ {
		p := time.Duration(float64(i) / fps * float64(time.Second))
		if p >= d {
			return pts
		}
		pts = append(pts, p)
	}
}

// wantWindows returns how many windows a sequence of frames completes: a
// window is emitted once a frame at or past its end has arrived and the
// frame nearest its last slot's centre is not the last one pushed (that one
// is only settled by the next frame).
func wantWindows(pts []time.Duration, strideSlots int) int {
	last := len(pts) - 1
	n := 0
	for end := 16; time.Duration(end)*testSlot <= pts[last]; end += strideSlots {
		if nearest(pts, end-1, end)[0] == last {
			break
		}
		n++
	}
	return n
}

// checkWindows checks each window against the brute-force rule.
func checkWindows(t *testing.T, wins []Window, pts []time.Duration, strideSlots int) {
	t.Helper()
	for n, win := range wins {
		first := n * strideSlots
		want := nearest(pts, first, first+16)
		got := slotFrames(t, win)
		for s := range want {
			if got[s] != want[s] {
				t.Fatalf("window %d slot %d holds frame %d (pts %v), want frame %d (pts %v); slot centre %v",
					n, s, got[s], pts[got[s]], want[s], pts[want[s]], time.Duration(first+s)*testSlot+testSlot/2)
			}
		}
		if win.Seq != uint64(n) {
			t.Errorf("window %d has Seq %d", n, win.Seq)
		}
		if ws, we := time.Duration(first)*testSlot, time.Duration(first+16)*testSlot; win.MediaStart != ws || win.MediaEnd != we {
			t.Errorf("window %d spans %v..%v, want %v..%v", n, win.MediaStart, win.MediaEnd, ws, we)
		}
	}
}

func TestWindowNearestCentreAtFrameRates(t *testing.T) {
	for _, fps := range []float64{7, 25, 29.97, 30, 60} {
		t.Run(time.Duration(float64(time.Second)/fps).String(), func(t *testing.T) {
			ps := newTestPics(t)
			w := newWindow("test", testGrid(2))
			pts := evenly(fps, 30*time.Second)
			wins := feed(t, w, ps, pts)
			wantN := wantWindows(pts, 2)
			if len(wins) != wantN {
				t.Fatalf("%d windows from 30s, want %d", len(wins), wantN)
			}
			checkWindows(t, wins, pts, 2)
			for _, win := range wins {
				// Frames whose pts falls in [start, end).
				if want := int(math.Ceil(float64(win.MediaEnd)/1e9*fps)) - int(math.Ceil(float64(win.MediaStart)/1e9*fps)); win.FramesSeen != want {
					t.Errorf("%v: FramesSeen %d, want %d", &win, win.FramesSeen, want)
				}
				if math.Abs(win.FPS-fps) > fps*0.02+0.1 {
					t.Errorf("%v: FPS %.2f, want %.2f", &win, win.FPS, fps)
				}
				if win.FramesKept != 16 {
					t.Errorf("%v: FramesKept %d, want 16", &win, win.FramesKept)
				}
			}
			// One conversion per slot at most, whatever the frame rate:
			// 47 slots are settled in 30s (the 48th waits for a frame).
			t.Logf("%.2f fps: %d frames, %d converted, %d windows", fps, len(pts), ps.converted, len(wins))
			if ps.converted > 48 || ps.converted < 46 {
				t.Errorf("%d frames converted for 47 slots", ps.converted)
			}
			w.close()
			ps.checkReleased()
		})
	}
}

func TestWindowIrregularFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	tests := []struct {
		name string
		pts  func() []time.Duration
	}{
		{"dropped frames", func() []time.Duration {
			var out []time.Duration
			for _, p := range evenly(25, 25*time.Second) {
				if p == 0 || rng.Float64() > 0.4 {
					out = append(out, p)
				}
			}
			return out
		}},
		{"frame rate change 30 to 8 to 60", func() []time.Duration {
			out := evenly(30, 7*time.Second)
			for _, p := range evenly(8, 6*time.Second) {
				out = append(out, 7*time.Second+p)
			}
			for _, p := range evenly(60, 10*time.Second) {
				out = append(out, 13*time.Second+p)
			}
			return out
		}},
		{"jitter", func() []time.Duration {
			var out []time.Duration
			for i, p := range evenly(30, 25*time.Second) {
				if i > 0 {
					p += time.Duration(rng.IntN(9)) * time.Millisecond
				}
				out = append(out, p)
			}
			return out
		}},
		{"stall of 3s", func() []time.Duration {
			out := evenly(25, 8*time.Second)
			for _, p := range evenly(25, 14*time.Second) {
				out = append(out, 11*time.Second+p)
			}
			return out
		}},
		{"one frame a second", func() []time.Duration { return evenly(1, 30*time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := newTestPics(t)
			w := newWindow("test", testGrid(3))
			pts := tt.pts()
			wins := feed(t, w, ps, pts)
			if n := wantWindows(pts, 3); len(wins) != n || n < 3 {
				t.Fatalf("%d windows, want %d", len(wins), n)
			}
			checkWindows(t, wins, pts, 3)
			w.close()
			ps.checkReleased()
		})
	}
}

func TestWindowEpochs(t *testing.T) {
	start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		jump    time.Duration // added to the pts after 12s
		gap     time.Duration // added to the receive time after 12s
		conn    uint64        // connection of the frames after 12s
		reason  string
		restart time.Duration // media time of epoch 2, by the receive clock
	}{
		{"jump back", -11 * time.Second, 0, 1, "timestamp jumped back 10.96s", 12 * time.Second},
		{"jump to zero", -12 * time.Second, 0, 1, "timestamp jumped back 11.96s", 12 * time.Second},
		{"jump forward", time.Hour, 0, 1, "timestamp jumped forward 1h0m0.04s", 12 * time.Second},
		{"no frames", 25 * time.Second, 25 * time.Second, 1, "no frames for 25.04s", 37 * time.Second},
		{"reconnect", 0, 3 * time.Second, 2, "reconnected", 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := newTestPics(t)
			w := newWindow("test", testGrid(2))
			var wins []Window
			var changes []*epochChange
			for i, p := range evenly(25, 30*time.Second) {
				m := frameMeta{pts: p, conn: 1, recv: start.Add(p)}
				if p >= 12*time.Second {
					m.pts += tt.jump
					m.recv = m.recv.Add(tt.gap)
					m.conn = tt.conn
				}
				got, change, err := w.push(m, ps.pic(i))
				if err != nil {
					t.Fatal(err)
				}
				if change != nil {
					changes = append(changes, change)
				}
				wins = append(wins, got...)
			}
			if len(changes) != 2 || changes[0].epoch != 1 || changes[1].epoch != 2 || changes[1].reason != tt.reason {
				for _, c := range changes {
					t.Logf("epoch %d: %s", c.epoch, c.reason)
				}
				t.Fatalf("want epochs 1 (first frame) and 2 (%s)", tt.reason)
			}
			// Epoch 1: windows end at 10s, 11.25s (12s is not complete).
			// Epoch 2 starts afresh at the break; its media time goes on
			// from the last frame's by the receive clock.
			var lastEnd time.Duration
			for _, win := range wins {
				if win.MediaStart < lastEnd-10*time.Second {
					t.Errorf("media time went back at %v", &win)
				}
				lastEnd = win.MediaEnd
				if win.Epoch != 2 {
					continue
				}
				n := time.Duration(win.Seq - 2)
				if want := tt.restart + n*1250*time.Millisecond; win.MediaStart != want {
					t.Errorf("%v: starts at %v, want %v", &win, win.MediaStart, want)
				}
				if got, want := win.AbsStart.Sub(start), 12*time.Second+tt.gap+n*1250*time.Millisecond; (got - want).Abs() > time.Millisecond {
					t.Errorf("%v: at receive time %v, want %v", &win, got, want)
				}
			}
			if len(wins) != 9 || wins[0].Epoch != 1 || wins[1].Epoch != 1 || wins[2].Epoch != 2 {
				t.Fatalf("got %d windows", len(wins))
			}
			w.close()
			ps.checkReleased()
		})
	}
}

// A small forward jump is a stall, not a break: the epoch goes on, and the
// slots in the gap repeat the frames around it.
func TestWindowSmallJumpKeepsEpoch(t *testing.T) {
	ps := newTestPics(t)
	w := newWindow("test", testGrid(2))
	pts := append(evenly(25, 5*time.Second), evenly(25, 20*time.Second)...)
	for i := len(evenly(25, 5*time.Second)); i < len(pts); i++ {
		pts[i] += 9 * time.Second
	}
	wins := feed(t, w, ps, pts)
	checkWindows(t, wins, pts, 2)
	if wins[0].FramesKept >= 16 {
		t.Errorf("window over a 4s gap keeps %d distinct frames, want fewer than 16", wins[0].FramesKept)
	}
	w.close()
	ps.checkReleased()
}

// With a stride longer than the window, slots between windows are never
// converted.
func TestWindowLongStride(t *testing.T) {
	ps := newTestPics(t)
	w := newWindow("test", testGrid(24))
	pts := evenly(30, 41*time.Second)
	wins := feed(t, w, ps, pts)
	if len(wins) != 3 {
		t.Fatalf("%d windows, want 3 (ending at 10s, 25s, 40s)", len(wins))
	}
	checkWindows(t, wins, pts, 24)
	if ps.converted > 16*3 {
		t.Errorf("%d conversions for 3 windows of 16 slots", ps.converted)
	}
	w.close()
	ps.checkReleased()
}

func TestWindowAbsoluteTime(t *testing.T) {
	ps := newTestPics(t)
	w := newWindow("test", testGrid(2))
	recv0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	capture0 := time.Date(2024, 6, 1, 8, 30, 0, 0, time.UTC)
	var wins []Window
	for i, p := range evenly(25, 14*time.Second) {
		m := frameMeta{pts: p, conn: 1, recv: recv0.Add(p + 200*time.Millisecond)}
		if p >= 11*time.Second {
			m.ntp = capture0.Add(p) // sender reports from 11s on
		}
		got, _, err := w.push(m, ps.pic(i))
		if err != nil {
			t.Fatal(err)
		}
		wins = append(wins, got...)
	}
	if len(wins) != 4 {
		t.Fatalf("%d windows, want 4", len(wins))
	}
	if wins[0].Clock != ClockReceive || !wins[0].AbsStart.Equal(recv0.Add(200*time.Millisecond)) ||
		!wins[0].AbsEnd.Equal(recv0.Add(10200*time.Millisecond)) {
		t.Errorf("window 0: %s clock %v..%v", wins[0].Clock, wins[0].AbsStart, wins[0].AbsEnd)
	}
	if wins[2].Clock != ClockRTCP || !wins[2].AbsStart.Equal(capture0.Add(2500*time.Millisecond)) ||
		!wins[2].AbsEnd.Equal(capture0.Add(12500*time.Millisecond)) {
		t.Errorf("window 2: %s clock %v..%v", wins[2].Clock, wins[2].AbsStart, wins[2].AbsEnd)
	}
	// Completed is the arrival of the first frame at or past the window's
	// end (10.00 s; 12.52 s, as 12.5 s is no frame's time), by the receive
	// clock even when the window's times are capture times.
	for i, want := range []time.Duration{10200 * time.Millisecond, 12720 * time.Millisecond} {
		if got := wins[2*i].Completed; !got.Equal(recv0.Add(want)) {
			t.Errorf("window %d: completed at %v, want %v", 2*i, got.Sub(recv0), want)
		}
	}
	w.close()
	ps.checkReleased()
}

// The window's memory is the ring of slots: the same at 7 and 60 fps, and
// the heap does not grow with the frames pushed.
func TestWindowMemoryIndependentOfFrameRate(t *testing.T) {
	grid := testGrid(2)
	grid.pre = Preprocessor{ShortSide: 256, CropSize: 224, Std: [3]float32{1, 1, 1}}
	footprint := map[float64]int{}
	for _, fps := range []float64{7, 60} {
		w := newWindow("test", grid)
		img := NewImage(320, 240)
		pic := func() picture { return staticPic{img} }
		var heap [2]uint64
		for round := range 2 {
			for _, p := range evenly(fps, 12*time.Second) {
				m := frameMeta{pts: time.Duration(round)*12*time.Second + p, conn: 1}
				if _, _, err := w.push(m, pic()); err != nil {
					t.Fatal(err)
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heap[round] = ms.HeapInuse
		}
		footprint[fps] = w.footprint()
		t.Logf("%v fps: footprint %.1f MiB, heap after 12s %.1f MiB, after 24s %.1f MiB",
			fps, float64(w.footprint())/(1<<20), float64(heap[0])/(1<<20), float64(heap[1])/(1<<20))
		if heap[1] > heap[0]+4<<20 {
			t.Errorf("%v fps: heap grew from %d to %d bytes", fps, heap[0], heap[1])
		}
		w.close()
	}
	if footprint[7] != footprint[60] {
		t.Errorf("footprint %d bytes at 7 fps, %d at 60 fps", footprint[7], footprint[60])
	}
	if want := 16 * 3 * 224 * 224 * 4; footprint[7] < want || footprint[7] > want+1<<16 {
		t.Errorf("footprint %d bytes, want about 16 slots of %d", footprint[7], want/16)
	}
}

type staticPic struct{ img *Image }

func (p staticPic) image() (*Image, error) { return p.img, nil }
func (staticPic) release()                 {}

// failingEncoder passes preprocessed frames through as features, except
// those of the frames named in fail (by the id testPic paints), which it
// refuses, as a feature-cache front that errors does.
type failingEncoder struct {
	size int
	fail map[int]bool
}

func (e failingEncoder) FeatureSize() int { return e.size }

func (e failingEncoder) Encode(frame, dst []float32) error {
	id := int(math.Round(float64(frame[0])*255)) | int(math.Round(float64(frame[16])*255))<<8
	if e.fail[id] {
		return fmt.Errorf("encode frame %d: refused", id)
	}
	copy(dst, frame)
	return nil
}

// nearestUsable is nearest with the frames in failed passed over: a slot
// whose nearest frame failed holds the next frame that did not.
func nearestUsable(pts []time.Duration, failed map[int]bool, from, to int) []int {
	out := nearest(pts, from, to)
	for i, f := range out {
		for failed[f] && f < len(pts)-1 {
			f++
		}
		out[i] = f
	}
	return out
}

// A frame that does not convert (or that the encoder refuses) leaves its
// slots to the next frame that does; the windows go on. Frames a second
// apart make each frame the nearest to more than one slot, so that a failed
// frame leaves a gap that the next one's slots would close: the window
// used to emit with the gap in it and panic, taking the server down.
func TestWindowFailedFrameLeavesSlotsToNext(t *testing.T) {
	for _, tt := range []struct {
		name    string
		fps     float64
		fail    []int
		encoder bool
	}{
		{"1 fps, one frame fails to convert", 1, []int{9}, false},
		{"1 fps, three in a row fail to convert", 1, []int{4, 5, 6}, false},
		{"1 fps, the encoder fails one frame", 1, []int{9}, true},
		{"25 fps, frames nearest to slot centres fail to convert", 25, []int{8, 23, 164}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := newTestPics(t)
			ps.fail = map[int]bool{}
			for _, f := range tt.fail {
				ps.fail[f] = true
			}
			grid := testGrid(2)
			if tt.encoder {
				grid.enc = failingEncoder{size: grid.pre.FrameSize(), fail: ps.fail}
				ps.fail = nil
			}
			w := newWindow("test", grid)
			pts := evenly(tt.fps, 30*time.Second)
			start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
			var wins []Window
			errs := 0
			for i, p := range pts {
				got, change, err := w.push(frameMeta{pts: p, conn: 1, recv: start.Add(p)}, ps.pic(i))
				if err != nil {
					errs++
					t.Logf("frame %d: %v", i, err)
				}
				if change != nil && i > 0 {
					t.Fatalf("frame %d started epoch %d: %s", i, change.epoch, change.reason)
				}
				wins = append(wins, got...)
			}
			if errs != len(tt.fail) {
				t.Errorf("%d errors, want one per failed frame (%d)", errs, len(tt.fail))
			}
			if want := wantWindows(pts, 2); len(wins) != want {
				t.Fatalf("%d windows, want %d (as many as without failures)", len(wins), want)
			}
			failed := map[int]bool{}
			for _, f := range tt.fail {
				failed[f] = true
			}
			for n, win := range wins {
				want := nearestUsable(pts, failed, n*2, n*2+16)
				if got := slotFrames(t, win); !slices.Equal(got, want) {
					t.Errorf("window %d holds frames %v, want %v", n, got, want)
				}
			}
			w.close()
			ps.checkReleased()
		})
	}
}

// FuzzWindow pushes frames at random times (steady 1–120 fps, gaps short
// and long, duplicates, jumps back, reconnects) with random conversion or
// encoder failures, and checks the window's invariants: nothing panics;
// every picture is released once; each window has its 16 slots filled in
// order, each with the frame nearest the slot's centre in its epoch or,
// when that one failed, the next one that did not; windows lie inside the
// media time their epoch's frames cover; Seq counts up by one; epochs and
// media time only move forward; and windows are lost only when a frame
// failed.
func FuzzWindow(f *testing.F) {
	f.Add(byte(25), byte(2), []byte{0, 0, 0, 0, 1, 0, 0, 0x81, 0, 0, 0, 0})
	f.Add(byte(0), byte(1), []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(byte(119), byte(23), []byte{0x9e, 0xa0, 0xc4, 0xe0, 0xff, 0x00, 0x01, 0x41, 0x81, 0x9f})
	f.Add(byte(29), byte(3), []byte{0x0a, 0xbe, 0xbe, 0xbe, 0xbe, 0x11, 0x13, 0xc1, 0xdf, 0x03})
	f.Fuzz(func(t *testing.T, rate, stride byte, ops []byte) {
		if len(ops) > 1000 {
			ops = ops[:1000]
		}
		fps := 1 + int(rate)%120
		strideSlots := 1 + int(stride)%24
		frame := time.Second / time.Duration(fps)

		ps := newTestPics(t)
		ps.fail = map[int]bool{}
		failed := map[int]bool{}
		grid := testGrid(strideSlots)
		if stride >= 128 {
			grid.enc = failingEncoder{size: grid.pre.FrameSize(), fail: failed}
		}
		w := newWindow("fuzz", grid)

		unusable := func(i int) bool { return failed[i] || ps.fail[i] }
		var (
			rels               []time.Duration // pts - the epoch's first pts, by frame
			epochOf            []uint64
			pts                = 5 * time.Second
			recv               = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
			conn               = uint64(1)
			t0, media0         time.Duration // the current epoch's
			lastPTS            time.Duration
			lastRecv           time.Time
			epochs             = map[uint64]time.Duration{} // media0 by epoch
			epochStart         = map[uint64]int{}           // first frame by epoch
			wantSeq, epoch     uint64
			lastStart, prevEnd time.Duration // last window's start, previous epoch's last end
			anyFailed          bool
		)
		check := func(wins []Window, latest int) {
			t.Helper()
			for _, win := range wins {
				if win.Seq != wantSeq {
					t.Fatalf("window Seq %d, want %d", win.Seq, wantSeq)
				}
				wantSeq++
				if win.Epoch < epoch {
					t.Fatalf("%v after a window of epoch %d", &win, epoch)
				}
				if win.Epoch > epoch {
					prevEnd = lastStart + 16*testSlot
					if epoch > 0 && win.MediaStart < prevEnd {
						t.Fatalf("%v starts before the last window of epoch %d ended (%v)", &win, epoch, prevEnd)
					}
					epoch = win.Epoch
				} else if win.MediaStart <= lastStart && wantSeq > 1 {
					t.Fatalf("%v does not start after the window before (%v)", &win, lastStart)
				}
				lastStart = win.MediaStart
				m0, ok := epochs[win.Epoch]
				if !ok {
					t.Fatalf("%v of an epoch that never started", &win)
				}
				if win.Duration() != 16*testSlot || win.MediaStart < m0 || (win.MediaStart-m0)%testSlot != 0 {
					t.Fatalf("%v is not 16 slots of its epoch's grid (from %v)", &win, m0)
				}
				got := slotFrames(t, win)
				first := int((win.MediaStart - m0) / testSlot)
				a, b := epochStart[win.Epoch], latest // the epoch's frames so far
				if next, ok := epochStart[win.Epoch+1]; ok {
					b = next - 1
				}
				// The window's end has been seen: the last frame of its
				// epoch pushed so far is at or past it.
				if end := m0 + rels[b]; win.MediaEnd > end {
					t.Fatalf("%v ends after its epoch's last frame (%v)", &win, end)
				}
				for s, id := range got {
					if id < 0 || id > latest || epochOf[id] != win.Epoch || unusable(id) {
						t.Fatalf("%v slot %d holds frame %d, not a usable frame of its epoch", &win, s, id)
					}
					if s > 0 && id < got[s-1] {
						t.Fatalf("%v holds frames out of order: %v", &win, got)
					}
					if want := nearestInEpoch(rels, unusable, a, b, first+s, latest); id != want {
						t.Fatalf("%v slot %d (centre %v) holds frame %d, want %d; slots %v", &win, s,
							time.Duration(first+s)*testSlot+testSlot/2, id, want, got)
					}
				}
			}
		}
		for i, op := range ops {
			fail := op&1 == 1
			n := time.Duration(op>>1) & 0xf
			step, gap := frame, frame
			switch op >> 5 {
			case 4: // a gap of up to 7.5 slots
				step = n * testSlot / 2
				gap = step
			case 5: // a duplicate
				step = 0
			case 6: // a jump back
				step = -n * 300 * time.Millisecond
			case 7:
				switch {
				case n < 4: // a reconnect
					conn++
				case n < 8: // a stall past max_timestamp_jump
					step, gap = n*5*time.Second, n*5*time.Second
				default: // a forward jump of the camera's clock
					step = n * 5 * time.Second
				}
			}
			pts += step
			recv = recv.Add(max(gap, time.Millisecond))
			if fail {
				anyFailed = true
				if grid.enc != nil {
					failed[i] = true
				} else {
					ps.fail[i] = true
				}
			}
			lost0 := w.lost
			wins, change, _ := w.push(frameMeta{pts: pts, conn: conn, recv: recv}, ps.pic(i))
			if change != nil {
				if change.epoch != w.epoch || (len(epochs) > 0 && change.epoch <= maxKey(epochs)) {
					t.Fatalf("frame %d started epoch %d after %d", i, change.epoch, maxKey(epochs))
				}
				if len(epochs) > 0 {
					media0 += lastPTS - t0 + max(recv.Sub(lastRecv), time.Millisecond)
				}
				epochs[change.epoch] = media0
				epochStart[change.epoch] = i
				t0 = pts
			}
			rels, epochOf = append(rels, pts-t0), append(epochOf, w.epoch)
			lastPTS, lastRecv = pts, recv
			if w.lost > lost0 {
				if !anyFailed {
					t.Fatalf("frame %d: window lost with no frame failed: %s", i, w.lostReason)
				}
				if strings.Contains(w.lostReason, "never filled") {
					t.Fatalf("frame %d: %s", i, w.lostReason)
				}
			}
			check(wins, i)
		}
		wins, _ := w.endEpoch("end")
		check(wins, len(ops)-1)
		w.close()
		ps.checkReleased()
	})
}

func maxKey(m map[uint64]time.Duration) uint64 {
	var k uint64
	for e := range m {
		k = max(k, e)
	}
	return k
}

// nearestInEpoch returns the frame of the epoch of frames a..b whose time is nearest the centre of slot k, by the
// window's rule: a tie goes to the earlier time; of frames with the same
// time, a centre at or before it goes to the first of them and one after it
// to the last (the one held when the next time arrives). A frame that failed
// passes the slot on to the frame pushed after it. Within an epoch, times
// never go back.
func nearestInEpoch(rels []time.Duration, failed func(int) bool, a, b, k, latest int) int {
	c := time.Duration(k)*testSlot + testSlot/2
	// The first frame at or after the centre.
	j := a + sort.Search(b-a+1, func(i int) bool { return rels[a+i] >= c })
	var best int
	switch {
	case j > b:
		best = b
	case j == a:
		best = a
	case c-rels[j-1] <= rels[j]-c:
		best = j - 1
	default:
		best = j
	}
	for best < latest && failed(best) {
		best++
	}
	return best
}

// With a pool, windows carry leases on the ring instead of tensors; the
// tensors they give are the ones a window without a pool copies, however
// long the receiver holds them: until the next window (latest wins), for
// several windows, or to the end, when the ring has long moved on and each
// was copied out just before its slots were overwritten. Released leases
// give their tensors back.
func TestWindowLeasesGiveTheSameTensors(t *testing.T) {
	pts := evenly(25, 30*time.Second)
	for _, stride := range []int{1, 2, 4, 16, 20} {
		want := feed(t, newWindow("cam", testGrid(stride)), newTestPics(t), pts)
		for _, hold := range []int{1, 3, 1000} {
			grid := testGrid(stride)
			grid.pool = NewTensorPool(grid.segments * grid.pre.FrameSize())
			w := newWindow("cam", grid)
			ps := newTestPics(t)
			start := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
			var held []Window
			got := make([][]float32, 0, len(want))
			take := func(win Window) {
				if win.Tensor != nil || win.Lease == nil {
					t.Fatalf("stride %d: a pooled window carries a tensor %v and lease %v, want only a lease", stride, win.Tensor != nil, win.Lease)
				}
				dst := make([]float32, grid.segments*grid.pre.FrameSize())
				win.Lease.CopyTo(dst)
				got = append(got, dst)
				win.Lease.Release()
			}
			for i, p := range pts {
				wins, _, err := w.push(frameMeta{pts: p, conn: 1, recv: start.Add(p)}, ps.pic(i))
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, wins...)
				for len(held) > hold {
					take(held[0])
					held = held[1:]
				}
			}
			for _, win := range held {
				take(win)
			}
			w.close()
			if len(got) != len(want) {
				t.Fatalf("stride %d hold %d: %d windows, want %d", stride, hold, len(got), len(want))
			}
			for n := range want {
				if !slices.Equal(got[n], want[n].Tensor) {
					t.Fatalf("stride %d hold %d: window %d's tensor differs from the one without a pool", stride, hold, n)
				}
			}
			if st := grid.pool.Stats(); st.Lent != 0 {
				t.Errorf("stride %d hold %d: pool %+v, want nothing lent after every lease was released", stride, hold, st)
			}
			ps.checkReleased()
		}
	}
}
