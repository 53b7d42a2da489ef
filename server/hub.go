package server

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Hub turns what happens on the streams into numbered events and fans them
// out to subscribers. Its goroutine owns every stream's sequence number and
// action state and the set of subscribers; the streams, the scheduler and
// the gRPC handlers talk to it through one channel of hubMsg, in order. It
// never waits for a subscriber: each has its own bounded queue
// (subscriberQueue).
//
// One channel, not one per kind of message: a stream's messages come from
// different goroutines (the managed stream sends its status, the scheduler
// its results) and their order is the order of its events. With a channel
// per kind the hub's select would pick among them at random: a result
// could overtake the stream's hubAddStream and be dropped, or its
// "retrying" status and land after it.
type Hub struct {
	log       *slog.Logger
	metrics   *Metrics
	model     models.Manifest
	queueSize int
	maxSubs   int
	newID     func() string

	// events, when set, is the event log every event is appended to
	// before any subscriber sees it. Set before Start.
	events *eventLog

	in   chan hubMsg
	done chan struct{}

	// Owned by run.
	streams map[string]*hubStream
	subs    map[*subscription]struct{}
	// nextSeq is where the numbering of a stream not added yet goes on:
	// its events from before a restart were ended by the hub already.
	nextSeq map[string]uint64
	// inFleet: subscribers get the logged events from the shared log, in
	// position order, whichever node appended them (hubRemote); fences
	// keeps the highest fence seen per stream, to drop a replaced owner's
	// late events. Set before Start.
	inFleet bool
	fences  fleet.Fences
}

// hubStream is the hub's state of one stream.
type hubStream struct {
	name    string
	gen     uint64 // which incarnation of the name: a re-added stream is new
	seq     uint64
	fence   uint64 // the fleet lease's fence, stamped on every event
	opts    streamOptions
	actions *actionTracker
	epoch   uint64
}

// hubMsg is a message to the hub's goroutine: one of the hub* types below
// and nothing else.
type hubMsg interface{ hubMsg() }

func (hubAddStream) hubMsg()    {}
func (hubConfigure) hubMsg()    {}
func (hubStatus) hubMsg()       {}
func (hubEndActions) hubMsg()   {}
func (hubResult) hubMsg()       {}
func (hubRemoveStream) hubMsg() {}
func (hubRestartEnds) hubMsg()  {}
func (hubSubscribe) hubMsg()    {}
func (hubUnsubscribe) hubMsg()  {}
func (hubStop) hubMsg()         {}
func (hubRemote) hubMsg()       {}

// Messages to the hub's goroutine.
type (
	hubAddStream struct {
		name   string
		gen    uint64
		opts   streamOptions
		status *actiondv1.StreamStatus
		fence  uint64
	}
	// hubRemote is an event another node of the fleet appended to the
	// shared log, for this hub's subscribers.
	hubRemote    struct{ ev *actiondv1.Event }
	hubConfigure struct {
		name string
		gen  uint64
		opts streamOptions
	}
	// hubStatus is a stream's new status. Actions end when it says the
	// stream is lost (retrying) or stopped or disabled.
	hubStatus struct {
		name   string
		gen    uint64
		status *actiondv1.StreamStatus
	}
	// hubEndActions ends a stream's open actions (the stream restarts).
	hubEndActions struct {
		name   string
		gen    uint64
		reason actiondv1.ActionEndReason
	}
	hubResult struct {
		name    string
		gen     uint64
		epoch   uint64
		span    ingest.Span
		scores  []float32 // probabilities over all labels
		latency time.Duration
		made    time.Time // when the window was complete
		reused  bool      // skip_static: the model did not run, scores are the last result's
		// snapshot is the frame at the window's centre, nil if none.
		snapshot *frameSnapshot
	}
	// hubRemoveStream ends the stream's actions, sends final (STOPPED)
	// and forgets the stream.
	hubRemoveStream struct {
		name  string
		gen   uint64
		final *actiondv1.StreamStatus
		done  chan struct{} // closed once the last events are appended
	}
	hubSubscribe struct {
		sub   *subscription
		reply chan error
	}
	hubUnsubscribe struct{ sub *subscription }
	// hubRestartEnds are the ActionEnded events of the actions a killed
	// server left open, to append and send before any stream starts.
	hubRestartEnds struct{ events []*actiondv1.Event }
	hubStop        struct{}
)

// NewHub returns a hub for the model's events; nothing runs until Start.
func NewHub(model models.Manifest, queueSize, maxSubscribers int, metrics *Metrics, log *slog.Logger) *Hub {
	return &Hub{
		log:       log,
		metrics:   metrics,
		model:     model,
		queueSize: queueSize,
		maxSubs:   maxSubscribers,
		newID:     newActionID,
		in:        make(chan hubMsg, 256),
		done:      make(chan struct{}),
		streams:   map[string]*hubStream{},
		subs:      map[*subscription]struct{}{},
		nextSeq:   map[string]uint64{},
	}
}

// Start starts the hub's goroutine.
func (h *Hub) Start() { go h.run() }

// Close ends every subscription (after the events already queued for it)
// and stops the hub, after the messages sent before it.
func (h *Hub) Close() {
	h.send(hubStop{})
	<-h.done
}

// Wait waits until the hub has stopped.
func (h *Hub) Wait() { <-h.done }

// send hands m to the hub's goroutine; false when the hub has stopped.
func (h *Hub) send(m hubMsg) bool {
	select {
	case h.in <- m:
		return true
	case <-h.done:
		return false
	}
}

// subscribe registers a subscriber; its events come from now on.
func (h *Hub) subscribe(f subscriptionFilter) (*subscription, error) {
	sub := &subscription{filter: f, queue: newSubscriberQueue(h.queueSize)}
	reply := make(chan error, 1)
	if !h.send(hubSubscribe{sub: sub, reply: reply}) {
		return nil, ErrShuttingDown
	}
	select {
	case err := <-reply:
		if err != nil {
			return nil, err
		}
		return sub, nil
	case <-h.done:
		return nil, ErrShuttingDown
	}
}

// unsubscribe forgets a subscriber.
func (h *Hub) unsubscribe(sub *subscription) { h.send(hubUnsubscribe{sub: sub}) }

func (h *Hub) run() {
	defer close(h.done)
	for m := range h.in {
		switch m := m.(type) {
		case hubAddStream:
			hs := &hubStream{name: m.name, gen: m.gen, opts: m.opts, seq: h.nextSeq[m.name], fence: m.fence}
			delete(h.nextSeq, m.name)
			if m.fence != 0 {
				// A stream that moved here goes on with the numbering of
				// its last owner, as the shared log has it.
				if h.events != nil {
					hs.seq = max(hs.seq, h.events.lastSequence(m.name))
				}
			}
			hs.actions = newActionTracker(m.opts.rules(), h.newID)
			h.streams[m.name] = hs
			h.emit(hs, &actiondv1.Event{Kind: &actiondv1.Event_StreamStatus{StreamStatus: m.status}})
		case hubConfigure:
			if hs := h.stream(m.name, m.gen); hs != nil {
				hs.opts = m.opts
				hs.actions.rules = m.opts.rules()
			}
		case hubStatus:
			if hs := h.stream(m.name, m.gen); hs != nil {
				h.status(hs, m.status)
			}
		case hubEndActions:
			if hs := h.stream(m.name, m.gen); hs != nil {
				h.emitAll(hs, hs.actions.endAll(m.reason, h.labelName))
			}
		case hubResult:
			if hs := h.stream(m.name, m.gen); hs != nil {
				h.result(hs, m)
			}
		case hubRemoveStream:
			if hs := h.stream(m.name, m.gen); hs != nil {
				h.emitAll(hs, hs.actions.endAll(actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_REMOVED, h.labelName))
				h.emit(hs, &actiondv1.Event{Kind: &actiondv1.Event_StreamStatus{StreamStatus: m.final}})
				delete(h.streams, m.name)
				h.metrics.forgetStream(m.name)
			}
			if m.done != nil {
				close(m.done)
			}
		case hubRestartEnds:
			for _, ev := range m.events {
				hs := h.streams[ev.GetStream()]
				if hs == nil {
					hs = &hubStream{name: ev.GetStream(), seq: h.nextSeq[ev.GetStream()]}
					h.emit(hs, ev)
					h.nextSeq[ev.GetStream()] = hs.seq
					continue
				}
				h.emit(hs, ev)
			}
		case hubRemote:
			h.remote(m.ev)
		case hubSubscribe:
			if len(h.subs) >= h.maxSubs {
				m.reply <- fmt.Errorf("%w: %d Subscribe calls are open; end one, or raise the limit", ErrTooManySubscribers, len(h.subs))
				continue
			}
			if h.events != nil {
				// Every event after this position reaches the subscriber
				// live; a resume replays up to it from the log.
				m.sub.seam = h.events.lastPos.Load()
			}
			h.subs[m.sub] = struct{}{}
			h.metrics.subscribers.Set(float64(len(h.subs)))
			m.reply <- nil
		case hubUnsubscribe:
			delete(h.subs, m.sub)
			m.sub.queue.close()
			h.metrics.subscribers.Set(float64(len(h.subs)))
		case hubStop:
			for sub := range h.subs {
				sub.queue.close()
			}
			clear(h.subs)
			h.metrics.subscribers.Set(0)
			return
		default:
			panic(fmt.Sprintf("hub: message %T has no case", m))
		}
	}
}

// stream returns the hub's state of the named stream if it is the given
// incarnation: results of a removed stream's last windows are dropped.
func (h *Hub) stream(name string, gen uint64) *hubStream {
	hs := h.streams[name]
	if hs == nil || hs.gen != gen {
		return nil
	}
	return hs
}

func (h *Hub) labelName(i int) string { return h.model.Labels[i] }

// status publishes a stream's new status, ending its actions when the
// camera is lost.
func (h *Hub) status(hs *hubStream, st *actiondv1.StreamStatus) {
	switch st.GetState() {
	case actiondv1.StreamState_STREAM_STATE_RETRYING:
		h.emitAll(hs, hs.actions.endAll(actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_LOST, h.labelName))
	case actiondv1.StreamState_STREAM_STATE_DISABLED, actiondv1.StreamState_STREAM_STATE_STOPPED:
		h.emitAll(hs, hs.actions.endAll(actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_REMOVED, h.labelName))
	}
	if st.GetEpoch() != hs.epoch {
		hs.epoch = st.GetEpoch()
		hs.actions.resetRun()
	}
	h.emit(hs, &actiondv1.Event{Kind: &actiondv1.Event_StreamStatus{StreamStatus: st}})
}

// result publishes a window's result and the actions it starts or ends.
func (h *Hub) result(hs *hubStream, r hubResult) {
	if r.epoch != hs.epoch {
		hs.epoch = r.epoch
		hs.actions.resetRun()
	}
	top := topLabels(r.scores, hs.opts.allow, hs.opts.topK)
	wr := &actiondv1.WindowResult{
		MediaStart:       durationpb.New(r.span.MediaStart),
		MediaEnd:         durationpb.New(r.span.MediaEnd),
		StartTime:        timestamppb.New(r.span.AbsStart),
		EndTime:          timestamppb.New(r.span.AbsEnd),
		Clock:            clockProto(r.span.Clock),
		Epoch:            r.epoch,
		InferenceLatency: durationpb.New(r.latency),
		Untrained:        h.model.Untrained,
		Model:            h.model.Name,
		CompletedTime:    timestamppb.New(r.span.Completed),
		Reused:           r.reused,
	}
	best := -1
	for _, s := range top {
		wr.Top = append(wr.Top, &actiondv1.LabelScore{Index: int32(s.Index), Label: h.model.Labels[s.Index], Score: s.Score})
	}
	if len(top) > 0 {
		best = top[0].Index
	}
	h.emit(hs, &actiondv1.Event{Kind: &actiondv1.Event_WindowResult{WindowResult: wr}})
	h.metrics.windowToEvent.WithLabelValues(hs.name).Observe(time.Since(r.made).Seconds())
	events := hs.actions.observe(r.span, r.scores, best, h.labelName)
	if h.events != nil && r.snapshot != nil {
		// The snapshot is stored before the action is told: whoever hears
		// of it can fetch its picture.
		for _, ev := range events {
			if st := ev.GetActionStarted(); st != nil {
				h.events.storeSnapshot(st.GetActionId(), r.snapshot)
			}
		}
	}
	h.emitAll(hs, events)
}

// remote sends subscribers an event of the shared log (of this node or
// another), unless its owner has been replaced (a stale fence).
func (h *Hub) remote(ev *actiondv1.Event) {
	if !h.fences.Admit(ev.GetStream(), ev.GetFence()) {
		h.log.Debug("dropped an event of a replaced owner", "stream", ev.GetStream(), "position", ev.GetPosition(), "fence", ev.GetFence())
		return
	}
	if h.events != nil && ev.GetPosition() > h.events.lastPos.Load() {
		h.events.lastPos.Store(ev.GetPosition())
	}
	h.fanOut(ev)
}

func (h *Hub) emitAll(hs *hubStream, events []*actiondv1.Event) {
	for _, ev := range events {
		h.emit(hs, ev)
	}
}

// emit numbers ev in its stream, appends it to the event log (which sets
// its position, or marks it unlogged), and then queues it for every
// subscriber whose filter lets it through.
func (h *Hub) emit(hs *hubStream, ev *actiondv1.Event) {
	hs.seq++
	ev.Stream, ev.Sequence, ev.Fence = hs.name, hs.seq, hs.fence
	if h.events != nil {
		h.events.append(ev)
	}
	if h.inFleet && ev.GetLogged() {
		return // it comes back from the shared log, in position order
	}
	h.fanOut(ev)
}

// fanOut queues ev for every subscriber whose filter lets it through.
func (h *Hub) fanOut(ev *actiondv1.Event) {
	for sub := range h.subs {
		if out := sub.filter.apply(ev); out != nil {
			h.metrics.eventsSent.Inc()
			if sub.queue.push(out) {
				h.metrics.eventsDropped.Inc()
			}
		}
	}
}

// topLabels returns the k best of scores among the allowed labels (all
// when allow is nil), best first.
func topLabels(scores []float32, allow []int, k int) []engine.Scored {
	if allow == nil {
		return engine.TopK(scores, k)
	}
	sub := make([]float32, len(allow))
	for i, j := range allow {
		sub[i] = scores[j]
	}
	top := engine.TopK(sub, k)
	for i := range top {
		top[i].Index = allow[top[i].Index]
	}
	return top
}

// rules returns the options' hysteresis settings.
func (o streamOptions) rules() actionRules {
	return actionRules{on: o.on, off: o.off, consecutive: o.consecutive}
}
