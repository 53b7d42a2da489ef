package soak

import (
	"math"
	"sync"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// Tracker follows one unfiltered subscription: per stream it counts the
// events, checks their sequence numbers and the media times of the
// windows, and keeps each window's latency. The subscriber goroutine
// calls Observe; the progress line and the report read it meanwhile.
type Tracker struct {
	stride time.Duration // every stream's: windows end this far apart in media time

	mu      sync.Mutex
	streams map[string]*streamTrack
	gaps    []Gap
	events  uint64
	dropped uint64 // sum of Dropped.count
	lat     []Latency
	clocks  map[actiondv1.Clock]int
}

// Latency is one WindowResult's delay: its receipt here minus the end of
// its window in absolute time, that is from the window's last frame (as the
// camera sent it) to the subscriber.
type Latency struct {
	At    time.Time // when it arrived
	D     time.Duration
	Clock actiondv1.Clock
}

type streamTrack struct {
	events, windows   uint64
	statuses          uint64
	started, ended    uint64
	lastSeq           uint64
	lastRecv          time.Time
	hasWindow         bool
	lastMediaEnd      time.Duration
	lastEnd           time.Time
	epoch, firstEpoch uint64
	outOfOrder        uint64 // windows whose media end did not advance
}

// NewTracker tracks streams whose windows end every stride.
func NewTracker(stride time.Duration) *Tracker {
	return &Tracker{stride: stride, streams: make(map[string]*streamTrack), clocks: make(map[actiondv1.Clock]int)}
}

// Observe takes one event, received at recv.
func (t *Tracker) Observe(ev *actiondv1.Event, recv time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events++
	if d := ev.GetDropped(); d != nil {
		t.dropped += d.GetCount()
		return
	}
	st := t.streams[ev.GetStream()]
	if st == nil {
		st = &streamTrack{}
		t.streams[ev.GetStream()] = st
	}
	st.events++
	// The first event of a stream is where counting starts: the
	// subscription may begin after the stream's first events.
	if seq := ev.GetSequence(); st.lastSeq != 0 && seq > st.lastSeq+1 {
		t.gaps = append(t.gaps, Gap{Stream: ev.GetStream(), Kind: GapSequence,
			From: st.lastRecv, To: recv, Missing: int(seq - st.lastSeq - 1)})
	}
	st.lastSeq, st.lastRecv = max(st.lastSeq, ev.GetSequence()), recv
	switch {
	case ev.GetStreamStatus() != nil:
		st.statuses++
	case ev.GetActionStarted() != nil:
		st.started++
	case ev.GetActionEnded() != nil:
		st.ended++
	case ev.GetWindowResult() != nil:
		t.window(ev.GetStream(), st, ev.GetWindowResult(), recv)
	}
}

func (t *Tracker) window(stream string, st *streamTrack, w *actiondv1.WindowResult, recv time.Time) {
	st.windows++
	end, mediaEnd := w.GetEndTime().AsTime(), w.GetMediaEnd().AsDuration()
	t.lat = append(t.lat, Latency{At: recv, D: recv.Sub(end), Clock: w.GetClock()})
	t.clocks[w.GetClock()]++
	if !st.hasWindow {
		st.hasWindow, st.firstEpoch = true, w.GetEpoch()
	} else {
		// Media time keeps increasing across epochs (the break measured by
		// the receive clock), so the windows that could have ended between
		// the two are about diff/stride - 1 in any case.
		diff := mediaEnd - st.lastMediaEnd
		missing := int(math.Round(float64(diff)/float64(t.stride))) - 1
		newEpoch := w.GetEpoch() != st.epoch
		switch {
		case diff <= 0:
			st.outOfOrder++
		case missing > 0 || newEpoch:
			t.gaps = append(t.gaps, Gap{Stream: stream, Kind: GapWindows,
				From: st.lastEnd, To: end, Missing: max(missing, 0), NewEpoch: newEpoch})
		}
	}
	st.lastMediaEnd, st.lastEnd, st.epoch = mediaEnd, end, w.GetEpoch()
}

// Finish records, for every stream whose last window ended more than
// quiet before now, a silent gap up to now, and for each expected stream
// that never had a window, one over the whole run.
func (t *Tracker) Finish(expected []string, start, now time.Time, quiet time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, name := range expected {
		st := t.streams[name]
		from := start
		if st != nil && st.hasWindow {
			from = st.lastEnd
		}
		if now.Sub(from) > quiet {
			t.gaps = append(t.gaps, Gap{Stream: name, Kind: GapSilent, From: from, To: now,
				Missing: int(now.Sub(from) / t.stride)})
		}
	}
}

// Progress is what the progress line shows.
type Progress struct {
	Events, Windows uint64
	Gaps            int // all kinds, explained or not
	Dropped         uint64
	P99             time.Duration // over the last window of latencies
}

// Progress reads the counters; P99 is over the latencies that arrived
// since since.
func (t *Tracker) Progress(since time.Time) Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := Progress{Events: t.events, Gaps: len(t.gaps), Dropped: t.dropped}
	var recent []time.Duration
	for i := len(t.lat) - 1; i >= 0 && !t.lat[i].At.Before(since); i-- {
		recent = append(recent, t.lat[i].D)
	}
	for _, st := range t.streams {
		p.Windows += st.windows
	}
	p.P99 = percentile(recent, 99)
	return p
}

// StreamStats is one stream's totals.
type StreamStats struct {
	Name                     string
	Events, Windows          uint64
	Statuses                 uint64
	Started, Ended           uint64
	Epochs                   uint64 // epochs seen in windows
	OutOfOrder               uint64
	FaultGaps, LostGaps      int
	FaultMissing, LostMissed int // windows missing in each
}

// snapshot copies what the report needs.
func (t *Tracker) snapshot() (streams map[string]StreamStats, gaps []Gap, lat []Latency, events, dropped uint64, clocks map[actiondv1.Clock]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	streams = make(map[string]StreamStats, len(t.streams))
	for name, st := range t.streams {
		s := StreamStats{Name: name, Events: st.events, Windows: st.windows, Statuses: st.statuses,
			Started: st.started, Ended: st.ended, OutOfOrder: st.outOfOrder}
		if st.hasWindow {
			s.Epochs = st.epoch - st.firstEpoch + 1
		}
		streams[name] = s
	}
	clocks = make(map[actiondv1.Clock]int, len(t.clocks))
	for k, v := range t.clocks {
		clocks[k] = v
	}
	return streams, append([]Gap(nil), t.gaps...), append([]Latency(nil), t.lat...), t.events, t.dropped, clocks
}
