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
// action state and the set of subscribers; the others talk to it through
// one typed channel per kind of request (as mediamtx's path manager does),
// and its run loop is a select over them. It never waits for a
// subscriber: each has its own bounded queue (subscriberQueue).
//
// Which requests share a channel, and why:
//
//   - chStream carries everything that happens to a stream, in the order
//     of its events: added, configured, a new status, actions ended (a
//     restart), a window's result, removed. They come from different
//     goroutines (the managed stream sends its status, the scheduler its
//     results) and their order is the order of the stream's events: with
//     a channel for each, the select would pick among them at random, and
//     a result could overtake the stream's add and be dropped (new
//     options too), or a "retrying" status land after the result of a
//     window that came after it. So they are one kind, streamChange,
//     whose kind field says which.
//   - chRemote carries the shared log's events (in a fleet) from the one
//     goroutine that reads the log, in position order. They are appended
//     already (by this node or another) and are only fanned out; no
//     stream's change waits for them or they for it.
//   - chSubscribe and chUnsubscribe carry the Subscribe calls. A
//     subscriber sees the events the hub makes after it took the
//     subscription (and, with resume_after, the log's up to that point),
//     so it needs no order with the streams' changes: it is a point in
//     their sequence wherever it falls.
//   - chStop stops the hub; the requests already sent on the other
//     channels are handled first.
//
// The ActionEnded events of the actions a killed server left open are no
// request: they are given before Start (restartEnds) and handled before
// anything else, so they precede every stream's first event.
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
	// restartEnds are the ActionEnded events of the actions a killed
	// server left open, to append and send before any stream's event. Set
	// before Start.
	restartEnds []*actiondv1.Event

	chStream      chan streamChange
	chRemote      chan *actiondv1.Event
	chSubscribe   chan hubSubscribe
	chUnsubscribe chan *subscription
	chStop        chan struct{}
	done          chan struct{}

	// Owned by run.
	streams map[string]*hubStream
	subs    map[*subscription]struct{}
	// nextSeq is where the numbering of a stream not added yet goes on:
	// its events from before a restart were ended by the hub already.
	nextSeq map[string]uint64
	// inFleet: subscribers get the logged events from the shared log, in
	// position order, whichever node appended them (chRemote); fences
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

// streamChangeKind says which change of a stream a streamChange is.
type streamChangeKind int

const (
	// streamAdded: the stream starts (opts, its first status, fence); its
	// numbering goes on from where it was.
	streamAdded streamChangeKind = iota + 1
	// streamConfigured: new options (opts), from the next window on.
	streamConfigured
	// streamStatus: a new status. Actions end when it says the stream is
	// lost (retrying) or stopped or disabled.
	streamStatus
	// streamEndActions: the stream's open actions end (reason): it
	// restarts.
	streamEndActions
	// streamResult: a window's result (result).
	streamResult
	// streamRemoved: the stream's actions end, its final status (status,
	// STOPPED) is sent, and the hub forgets it; done is closed once the
	// last events are appended.
	streamRemoved
)

// streamChange is one change of a stream, for the hub: kind says which,
// and which of the other fields it sets. name and gen say the stream and
// its incarnation: changes of a removed incarnation are dropped.
type streamChange struct {
	kind   streamChangeKind
	name   string
	gen    uint64
	opts   streamOptions
	status *actiondv1.StreamStatus
	fence  uint64
	reason actiondv1.ActionEndReason
	result hubResult
	done   chan struct{}
}

// hubResult is a window's result, as the scheduler delivers it.
type hubResult struct {
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

// hubSubscribe is a Subscribe call's request to be taken; reply says
// whether it was.
type hubSubscribe struct {
	sub   *subscription
	reply chan error
}

// NewHub returns a hub for the model's events; nothing runs until Start.
func NewHub(model models.Manifest, queueSize, maxSubscribers int, metrics *Metrics, log *slog.Logger) *Hub {
	return &Hub{
		log:           log,
		metrics:       metrics,
		model:         model,
		queueSize:     queueSize,
		maxSubs:       maxSubscribers,
		newID:         newActionID,
		chStream:      make(chan streamChange, 256),
		chRemote:      make(chan *actiondv1.Event, 256),
		chSubscribe:   make(chan hubSubscribe),
		chUnsubscribe: make(chan *subscription, 64),
		chStop:        make(chan struct{}),
		done:          make(chan struct{}),
		streams:       map[string]*hubStream{},
		subs:          map[*subscription]struct{}{},
		nextSeq:       map[string]uint64{},
	}
}

// Start starts the hub's goroutine.
func (h *Hub) Start() { go h.run() }

// Close ends every subscription (after the events already queued for it)
// and stops the hub, after the requests sent before it.
func (h *Hub) Close() {
	hubSend(h, h.chStop, struct{}{})
	<-h.done
}

// Wait waits until the hub has stopped.
func (h *Hub) Wait() { <-h.done }

// hubSend hands v to the hub's goroutine on ch; false when the hub has
// stopped.
func hubSend[T any](h *Hub, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-h.done:
		return false
	}
}

// streamChanged hands the hub a change of a stream; false when the hub has
// stopped.
func (h *Hub) streamChanged(c streamChange) bool { return hubSend(h, h.chStream, c) }

// windowResult hands the hub a window's result (the scheduler's deliver).
func (h *Hub) windowResult(r hubResult) {
	h.streamChanged(streamChange{kind: streamResult, name: r.name, gen: r.gen, result: r})
}

// remoteEvent hands the hub an event of the shared log, appended by this
// node or another, for its subscribers.
func (h *Hub) remoteEvent(ev *actiondv1.Event) { hubSend(h, h.chRemote, ev) }

// subscribe registers a subscriber; its events come from now on.
func (h *Hub) subscribe(f subscriptionFilter) (*subscription, error) {
	sub := &subscription{filter: f, queue: newSubscriberQueue(h.queueSize)}
	reply := make(chan error, 1)
	if !hubSend(h, h.chSubscribe, hubSubscribe{sub: sub, reply: reply}) {
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
func (h *Hub) unsubscribe(sub *subscription) { hubSend(h, h.chUnsubscribe, sub) }

func (h *Hub) run() {
	defer close(h.done)
	h.doRestartEnds(h.restartEnds)
	h.restartEnds = nil
	for {
		select {
		case c := <-h.chStream:
			h.doStream(c)
		case ev := <-h.chRemote:
			h.doRemote(ev)
		case req := <-h.chSubscribe:
			h.doSubscribe(req)
		case sub := <-h.chUnsubscribe:
			h.doUnsubscribe(sub)
		case <-h.chStop:
			h.doStop()
			return
		}
	}
}

// doStream applies a change of a stream. A change of an incarnation the
// hub does not know (any more) is dropped: the results of a removed
// stream's last windows, say.
func (h *Hub) doStream(c streamChange) {
	if c.kind == streamAdded {
		h.addStream(c)
		return
	}
	if c.done != nil {
		defer close(c.done)
	}
	hs := h.stream(c.name, c.gen)
	if hs == nil {
		return
	}
	switch c.kind {
	case streamConfigured:
		hs.opts = c.opts
		hs.actions.rules = c.opts.rules()
	case streamStatus:
		h.status(hs, c.status)
	case streamEndActions:
		h.emitAll(hs, hs.actions.endAll(c.reason, h.labelName))
	case streamResult:
		h.result(hs, c.result)
	case streamRemoved:
		h.emitAll(hs, hs.actions.endAll(actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_REMOVED, h.labelName))
		h.emit(hs, &actiondv1.Event{Kind: &actiondv1.Event_StreamStatus{StreamStatus: c.status}})
		delete(h.streams, c.name)
		h.metrics.forgetStream(c.name)
	default:
		panic(fmt.Sprintf("hub: stream change of kind %d", c.kind))
	}
}

// addStream starts the hub's state of a stream, and sends its first
// status.
func (h *Hub) addStream(c streamChange) {
	hs := &hubStream{name: c.name, gen: c.gen, opts: c.opts, seq: h.nextSeq[c.name], fence: c.fence}
	delete(h.nextSeq, c.name)
	if c.fence != 0 && h.events != nil {
		// A stream that moved here goes on with the numbering of its last
		// owner, as the shared log has it.
		hs.seq = max(hs.seq, h.events.lastSequence(c.name))
	}
	hs.actions = newActionTracker(c.opts.rules(), h.newID)
	h.streams[c.name] = hs
	h.emit(hs, &actiondv1.Event{Kind: &actiondv1.Event_StreamStatus{StreamStatus: c.status}})
}

// doRestartEnds appends and sends the ActionEnded events of the actions a
// killed server left open; the streams' numbering goes on after them.
func (h *Hub) doRestartEnds(events []*actiondv1.Event) {
	for _, ev := range events {
		hs := h.streams[ev.GetStream()]
		if hs == nil {
			hs = &hubStream{name: ev.GetStream(), seq: h.nextSeq[ev.GetStream()]}
			h.emit(hs, ev)
			h.nextSeq[ev.GetStream()] = hs.seq
			continue
		}
		h.emit(hs, ev)
	}
}

// doSubscribe takes a subscriber, unless there are too many.
func (h *Hub) doSubscribe(req hubSubscribe) {
	if len(h.subs) >= h.maxSubs {
		req.reply <- fmt.Errorf("%w: %d Subscribe calls are open; end one, or raise the limit", ErrTooManySubscribers, len(h.subs))
		return
	}
	if h.events != nil {
		// Every event after this position reaches the subscriber live; a
		// resume replays up to it from the log.
		req.sub.seam = h.events.lastPos.Load()
	}
	h.subs[req.sub] = struct{}{}
	h.metrics.subscribers.Set(float64(len(h.subs)))
	req.reply <- nil
}

// doUnsubscribe forgets a subscriber and ends its queue.
func (h *Hub) doUnsubscribe(sub *subscription) {
	delete(h.subs, sub)
	sub.queue.close()
	h.metrics.subscribers.Set(float64(len(h.subs)))
}

// doStop handles the requests sent before Close (those waiting in the
// buffered channels when it came: a Subscribe not taken yet is told the
// hub is shutting down), then ends every subscription.
func (h *Hub) doStop() {
	for range len(h.chStream) {
		h.doStream(<-h.chStream)
	}
	for range len(h.chRemote) {
		h.doRemote(<-h.chRemote)
	}
	for range len(h.chUnsubscribe) {
		h.doUnsubscribe(<-h.chUnsubscribe)
	}
	for sub := range h.subs {
		sub.queue.close()
	}
	clear(h.subs)
	h.metrics.subscribers.Set(0)
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

// doRemote sends subscribers an event of the shared log (of this node or
// another), unless its owner has been replaced (a stale fence).
func (h *Hub) doRemote(ev *actiondv1.Event) {
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
