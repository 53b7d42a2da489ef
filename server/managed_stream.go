package server

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// streamDeps is what every managed stream shares.
type streamDeps struct {
	cfg   *Config
	model models.Manifest
	// encoder, when set, is the model's front: windows keep features.
	encoder ingest.FrameEncoder
	sched   *Scheduler
	// pool lends the windows' tensors; the scheduler gives them back.
	pool *ingest.TensorPool
	hub  *Hub
	log  *slog.Logger // the streams' parent logger
}

// managedStream is one named stream of the server. Its goroutine runs the
// ingest.Stream that watches the camera (replaced when the URL, transport,
// window or stride change; none while disabled): it hands the windows to
// the scheduler and the status changes to the hub, and it alone starts and
// stops ingest streams (update runs on it through do). Across ingest
// streams it keeps the stream's story continuous: epochs and media time
// keep increasing, counters add up.
//
// Concurrency model: an owner goroutine, no mutex. Every mutable field
// below is the goroutine's (the caller's before Start and once the
// goroutine has stopped, or for good when it never starts); callers change
// the stream through do, and read view, the copy of streamView the
// goroutine publishes after each change and never changes again.
type managedStream struct {
	name   string
	gen    uint64
	origin streamOrigin
	deps   *streamDeps
	// fence is the fleet lease's fence every event of this incarnation
	// carries (0 outside a fleet). Set before Start.
	fence uint64
	// started says Start ran: a stream of the fleet that another node
	// plays is never started here, and has no goroutine to stop.
	started atomic.Bool

	ctrl   chan func()
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	// The goroutine's own.
	streamView
	// The current ingest stream's channels, nil once closed.
	wins    <-chan ingest.Window
	changes <-chan ingest.Status
	// Media time of cur's windows is theirs plus mediaOffset, computed at
	// its first window (needOffset) from where the last window ended
	// (lastEnd, and lastEndAbs by the clocks at hand).
	mediaOffset time.Duration
	needOffset  bool
	lastEndAbs  time.Time

	// view is what callers read (proto, snapshot): a copy of streamView
	// as of the goroutine's last change (publish).
	view atomic.Pointer[streamView]
}

// streamView is a managed stream's spec and what its status is made of.
// The goroutine changes its own; a published copy is never changed.
type streamView struct {
	spec StreamSpec
	opts streamOptions
	icfg ingest.StreamConfig
	cur  *ingest.Stream // nil while disabled or stopped; its Status is safe to call from any goroutine
	// base adds up the counters of the ingest streams before cur; last is
	// the final status of the one before cur.
	base, last    ingest.Status
	epochBase     uint64
	hadWindow     bool
	lastEnd       time.Duration // media time, where the last window ended
	lastError     string
	lastErrorTime time.Time
	stateSince    time.Time // for DISABLED and STOPPED
	stopped       bool
}

// streamOrigin says where a stream was declared.
type streamOrigin int

const (
	originConfig streamOrigin = iota // the configuration file or a flag
	originAPI                        // AddStream (kept in the state file)
)

func newManagedStream(spec StreamSpec, opts streamOptions, icfg ingest.StreamConfig, gen uint64, origin streamOrigin, deps *streamDeps) *managedStream {
	ctx, cancel := context.WithCancel(context.Background())
	m := &managedStream{
		name: spec.Name, gen: gen, origin: origin, deps: deps,
		ctrl: make(chan func()), ctx: ctx, cancel: cancel, done: make(chan struct{}),
		streamView: streamView{spec: spec, opts: opts, icfg: icfg, stateSince: time.Now()},
	}
	m.publish()
	return m
}

// publish makes the stream's state as it is now what callers read.
func (m *managedStream) publish() {
	v := m.streamView
	m.view.Store(&v)
}

// Start tells the hub about the stream (its first status: CONNECTING or
// DISABLED) and starts watching the camera.
func (m *managedStream) Start() {
	m.started.Store(true)
	if m.opts.enabled {
		m.startIngest()
	}
	m.deps.hub.streamChanged(streamChange{kind: streamAdded, name: m.name, gen: m.gen, opts: m.opts, status: m.status(&m.streamView), fence: m.fence})
	go m.run()
}

// stopIngest stops watching the camera and waits for the goroutine; the
// hub still knows the stream. finish completes Close.
func (m *managedStream) stopIngest() {
	if !m.started.Load() {
		m.cancel()
		return
	}
	m.cancel()
	<-m.done
}

// finish ends the stream's actions and sends its last status (STOPPED).
// The goroutine has stopped (stopIngest).
func (m *managedStream) finish() {
	if !m.started.Load() {
		return
	}
	m.stopped, m.stateSince = true, time.Now()
	m.publish()
	m.deps.sched.forget(m.name, m.gen)
	// In a fleet the next owner goes on from the stream's last logged
	// event: wait until the hub has appended these.
	done := make(chan struct{})
	if m.deps.hub.streamChanged(streamChange{kind: streamRemoved, name: m.name, gen: m.gen, status: m.status(&m.streamView), done: done}) {
		select {
		case <-done:
		case <-m.deps.hub.done:
		}
	}
}

// Close stops the stream for good: its actions end, its last status is
// STOPPED.
func (m *managedStream) Close() {
	m.stopIngest()
	m.finish()
}

// cut hangs up the camera at once, from any goroutine and without
// waiting (ingest.Stream.Cut), and makes the stream's goroutine stop;
// Close does the rest. A camera connection the goroutine started just
// before is cut too, or stopped as the goroutine ends.
func (m *managedStream) cut() {
	if !m.started.Load() {
		return
	}
	cur := m.view.Load().cur
	if cur != nil {
		cur.Cut()
	}
	m.cancel()
	if now := m.view.Load().cur; now != nil && now != cur {
		now.Cut()
	}
}

// Wait waits until the stream's goroutine has stopped.
func (m *managedStream) Wait() { <-m.done }

func (m *managedStream) run() {
	defer close(m.done)
	for {
		select {
		case <-m.ctx.Done():
			m.closeIngest()
			return
		case f := <-m.ctrl:
			f()
		case w, ok := <-m.wins:
			if !ok {
				m.wins = nil
				continue
			}
			m.forward(w)
		case st, ok := <-m.changes:
			if !ok {
				m.changes = nil
				continue
			}
			m.statusChanged(st)
		}
	}
}

// do runs f on the stream's goroutine and waits for it; false when the
// stream has stopped.
func (m *managedStream) do(f func()) bool {
	ran := make(chan struct{})
	select {
	case m.ctrl <- func() { f(); close(ran) }:
		<-ran
		return true
	case <-m.done:
		return false
	}
}

// startIngest starts a new ingest stream for the current configuration.
func (m *managedStream) startIngest() {
	s, err := ingest.NewStream(m.icfg, m.deps.model, m.deps.log)
	if err != nil {
		// The configuration was settled against the same model.
		m.deps.log.Error("cannot start stream", "stream", m.name, "error", err)
		return
	}
	if m.deps.encoder != nil {
		s.SetEncoder(m.deps.encoder)
	}
	s.SetTensorPool(m.deps.pool)
	s.Start()
	m.cur, m.needOffset = s, true
	m.wins, m.changes = s.Windows(), s.StatusChanges()
	m.publish()
}

// closeIngest stops the current ingest stream, keeping its counters.
func (m *managedStream) closeIngest() {
	if m.cur == nil {
		return
	}
	m.cur.Close() // its last windows and statuses are dropped with it
	for w := range m.cur.Windows() {
		m.deps.pool.Put(w.Tensor)
		w.Lease.Release()
	}
	final := m.cur.Status()
	m.base = addCounters(m.base, final)
	m.last = final
	m.epochBase += final.Epoch
	m.cur = nil
	m.wins, m.changes = nil, nil
	m.publish()
}

// update applies a changed spec (already checked) on the stream's
// goroutine: a new URL, transport, window or stride restarts the camera
// connection, enabled starts or stops it, the other options go to the hub
// for the next window.
func (m *managedStream) update(spec StreamSpec, opts streamOptions, icfg ingest.StreamConfig) bool {
	if !m.started.Load() {
		// Played by another node of the fleet: no goroutine, the caller
		// (the stream manager, which serialises starting and updating)
		// owns the fields; the spec is what a later Start here uses.
		m.spec, m.opts, m.icfg = spec, opts, icfg
		m.publish()
		return true
	}
	return m.do(func() {
		old, oldOpts := m.icfg, m.opts
		m.spec, m.opts, m.icfg = spec, opts, icfg
		m.publish()
		m.deps.hub.streamChanged(streamChange{kind: streamConfigured, name: m.name, gen: m.gen, opts: opts})
		restart := old.URL != icfg.URL || old.Transport != icfg.Transport || old.Window != icfg.Window || old.Stride != icfg.Stride
		switch {
		case !opts.enabled && oldOpts.enabled:
			m.closeIngest()
			m.stateSince = time.Now()
			m.publish()
			m.deps.log.Info("stream disabled", "stream", m.name)
			m.deps.hub.streamChanged(streamChange{kind: streamStatus, name: m.name, gen: m.gen, status: m.status(&m.streamView)})
		case opts.enabled && (restart || !oldOpts.enabled):
			if oldOpts.enabled {
				m.closeIngest()
				m.deps.hub.streamChanged(streamChange{kind: streamEndActions, name: m.name, gen: m.gen, reason: actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_LOST})
			}
			m.startIngest()
			m.deps.log.Info("stream restarted", "stream", m.name, "url", ingest.RedactURL(icfg.URL))
			m.deps.hub.streamChanged(streamChange{kind: streamStatus, name: m.name, gen: m.gen, status: m.status(&m.streamView)})
		}
	})
}

// forward hands a window to the scheduler, in the stream's media time. It
// never waits: the goroutine owns what it changes (no lock), and the
// scheduler keeps the stream's latest window instead of queueing, so that
// control calls (update, Close) that run on this goroutine answer at once
// however busy the model is.
func (m *managedStream) forward(w ingest.Window) {
	if m.needOffset {
		m.needOffset = false
		m.mediaOffset = 0
		if m.hadWindow {
			// The gap between the last window of the previous connection
			// and this one's first frame, by the clocks at hand.
			first := w.AbsStart.Add(-w.MediaStart)
			m.mediaOffset = m.lastEnd + max(0, first.Sub(m.lastEndAbs))
		}
	}
	span := w.Span
	span.MediaStart += m.mediaOffset
	span.MediaEnd += m.mediaOffset
	m.hadWindow, m.lastEnd, m.lastEndAbs = true, span.MediaEnd, w.AbsEnd
	m.publish()
	job := inferenceJob{stream: m.name, gen: m.gen, epoch: m.epochBase + w.Epoch, span: span, tensor: w.Tensor, lease: w.Lease, made: time.Now()}
	if w.Snapshot != nil {
		job.snapshot = &frameSnapshot{img: w.Snapshot, media: w.SnapshotMedia + m.mediaOffset}
	}
	if m.opts.skipStatic {
		strideSlots := 0
		if slot := m.opts.window / time.Duration(max(m.deps.model.Segments, 1)); slot > 0 {
			strideSlots = int(m.opts.stride / slot)
		}
		tensor := w.Tensor
		if w.Lease != nil {
			// Compared here, so copied out of the ring now.
			tensor = w.Lease.Tensor()
		}
		job.static = staticWindow(tensor, m.deps.model.Segments, strideSlots, m.deps.encoder != nil)
	}
	m.deps.sched.Submit(job)
}

// statusChanged passes a status change of the ingest stream to the hub.
func (m *managedStream) statusChanged(st ingest.Status) {
	if st.State == ingest.StateStopped {
		return // the stream's own end comes with finish or a restart
	}
	if st.LastError != "" && st.LastError != m.lastError {
		m.lastError, m.lastErrorTime = st.LastError, st.Since
		m.publish()
	}
	m.deps.hub.streamChanged(streamChange{kind: streamStatus, name: m.name, gen: m.gen, status: m.statusFrom(&m.streamView, st)})
}

// proto returns the stream as the API shows it.
func (m *managedStream) proto() *actiondv1.Stream {
	v := m.view.Load()
	return &actiondv1.Stream{
		Name:    m.name,
		Url:     ingest.RedactURL(v.spec.URL),
		Options: optionsProto(v.opts),
		Status:  m.status(v),
	}
}

// snapshot returns the stream's spec and options in effect.
func (m *managedStream) snapshot() (StreamSpec, streamOptions) {
	v := m.view.Load()
	return v.spec, v.opts
}

// status returns the status of the stream whose state is v, now: the
// goroutine passes its own, callers the published view.
func (m *managedStream) status(v *streamView) *actiondv1.StreamStatus {
	if v.cur != nil {
		st := v.cur.Status()
		if st.LastError != "" && st.LastError != v.lastError {
			// An error the goroutine has not recorded yet: the status
			// change that carries it is on its way.
			seen := *v
			seen.lastError, seen.lastErrorTime = st.LastError, st.Since
			v = &seen
		}
		return m.statusFrom(v, st)
	}
	st := v.last
	st.State, st.Since, st.NextAttempt = ingest.StateConnecting, v.stateSince, time.Time{}
	st.Epoch, st.Reconnects = 0, 0
	st.FramesDecoded, st.DroppedAUs, st.PacketsLost, st.DecodeErrors, st.Windows, st.DroppedWindows = 0, 0, 0, 0, 0, 0
	ps := m.statusFrom(v, st)
	switch {
	case v.stopped:
		ps.State = actiondv1.StreamState_STREAM_STATE_STOPPED
	case !v.opts.enabled:
		ps.State = actiondv1.StreamState_STREAM_STATE_DISABLED
	}
	return ps
}

// statusFrom is st, a status of v's current ingest stream (or the last
// one's, counters zeroed), as the API shows the whole stream.
func (m *managedStream) statusFrom(v *streamView, st ingest.Status) *actiondv1.StreamStatus {
	b := v.base
	ps := &actiondv1.StreamStatus{
		State:          stateProto(st.State),
		Since:          timestamppb.New(st.Since),
		LastError:      v.lastError,
		ReconnectCount: b.Reconnects + st.Reconnects,
		Epoch:          v.epochBase + st.Epoch,
		EpochReason:    st.EpochReason,
		Codec:          string(st.Codec),
		Transport:      transportProto(st.Transport),
		Width:          uint32(st.Width),
		Height:         uint32(st.Height),
		InputFps:       st.InputFPS,
		FramesDecoded:  b.FramesDecoded + st.FramesDecoded,
		DroppedFrames:  b.DroppedAUs + st.DroppedAUs,
		PacketsLost:    b.PacketsLost + st.PacketsLost,
		DecodeErrors:   b.DecodeErrors + st.DecodeErrors,
		WindowCount:    b.Windows + st.Windows,
		DroppedWindows: b.DroppedWindows + st.DroppedWindows,
		Model:          m.deps.model.Name,
	}
	skipped, stride := m.deps.sched.streamStats(m.name, m.gen)
	ps.SkippedWindows = skipped
	if stride > 0 {
		ps.EffectiveStride = durationpb.New(stride)
	}
	if ps.Codec == "" {
		ps.Codec = string(v.last.Codec)
	}
	if !v.lastErrorTime.IsZero() {
		ps.LastErrorTime = timestamppb.New(v.lastErrorTime)
	}
	if st.State == ingest.StateRetrying && !st.NextAttempt.IsZero() {
		ps.NextAttempt = timestamppb.New(st.NextAttempt)
	}
	if v.hadWindow {
		ps.LastWindowEnd = durationpb.New(v.lastEnd)
	}
	return ps
}

// addCounters adds the counters of b to a.
func addCounters(a, b ingest.Status) ingest.Status {
	a.Reconnects += b.Reconnects + 1 // the next ingest stream's first attempt is a reconnect too
	a.AccessUnits += b.AccessUnits
	a.DroppedAUs += b.DroppedAUs
	a.SkippedAUs += b.SkippedAUs
	a.PacketsLost += b.PacketsLost
	a.DepacketizeErrors += b.DepacketizeErrors
	a.DecodeErrors += b.DecodeErrors
	a.FramesDecoded += b.FramesDecoded
	a.FramesConverted += b.FramesConverted
	a.Windows += b.Windows
	a.DroppedWindows += b.DroppedWindows
	return a
}

func stateProto(s ingest.State) actiondv1.StreamState {
	switch s {
	case ingest.StateConnecting:
		return actiondv1.StreamState_STREAM_STATE_CONNECTING
	case ingest.StatePlaying:
		return actiondv1.StreamState_STREAM_STATE_PLAYING
	case ingest.StateRetrying:
		return actiondv1.StreamState_STREAM_STATE_RETRYING
	case ingest.StateStopped:
		return actiondv1.StreamState_STREAM_STATE_STOPPED
	}
	return actiondv1.StreamState_STREAM_STATE_UNSPECIFIED
}

func transportProto(t string) actiondv1.Transport {
	switch strings.ToLower(t) {
	case "udp":
		return actiondv1.Transport_TRANSPORT_UDP
	case "tcp":
		return actiondv1.Transport_TRANSPORT_TCP
	case "auto":
		return actiondv1.Transport_TRANSPORT_AUTO
	}
	return actiondv1.Transport_TRANSPORT_UNSPECIFIED
}

func clockProto(c ingest.Clock) actiondv1.Clock {
	switch c {
	case ingest.ClockRTCP:
		return actiondv1.Clock_CLOCK_RTCP
	case ingest.ClockReceive:
		return actiondv1.Clock_CLOCK_RECEIVE
	}
	return actiondv1.Clock_CLOCK_UNSPECIFIED
}

// optionsProto returns options in effect as the API shows them.
func optionsProto(o streamOptions) *actiondv1.StreamOptions {
	topK, k := uint32(o.topK), uint32(o.consecutive)
	on, off, enabled, skipStatic := o.on, o.off, o.enabled, o.skipStatic
	return &actiondv1.StreamOptions{
		Window:                durationpb.New(o.window),
		Stride:                durationpb.New(o.stride),
		TopK:                  &topK,
		OnThreshold:           &on,
		OffThreshold:          &off,
		MinConsecutiveWindows: &k,
		LabelAllowlist:        &actiondv1.LabelAllowlist{Labels: o.allowNames},
		Transport:             transportProto(string(o.transport)),
		Enabled:               &enabled,
		SkipStatic:            &skipStatic,
	}
}
