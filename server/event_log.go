package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/actiond/actiond/server/fleet"
	"github.com/nats-io/nats.go/jetstream"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// eventLog is the server's side of the event log: the hub appends every
// event through it before anyone sees the event; it keeps the index of
// actions that HistoryService answers from, stores the actions'
// snapshots, and tells health and the metrics whether the log is up. Its
// goroutine watches the log's state.
type eventLog struct {
	log     *eventlog.Log
	cfg     EventsConfig
	metrics *Metrics
	slog    *slog.Logger
	// setHealth reports HistoryService's health.
	setHealth func(healthpb.HealthCheckResponse_ServingStatus)
	lock      *os.File // data_dir's lock, nil with an external NATS

	up      atomic.Bool
	lastPos atomic.Uint64 // the newest position this server appended or saw at start
	oldest  atomic.Uint64 // the oldest position kept, as last seen
	actions *actionIndex
	snaps   *snapshotStore

	stopFollow func() // stops follow's consumer; nil when none
	stopFanout func() // stops fanout's consumer; nil when none
	// indexed says that the index was loaded from the log (at start, or
	// by run once a log down at start came up). Owned by run after start.
	indexed bool

	wake chan struct{} // the log failed: check it soon
	stop chan struct{}
	done chan struct{}
}

// snapshotBucket is the JetStream object store of the actions' snapshots.
const snapshotBucket = "ACTIOND_SNAPSHOTS"

// openEventLog opens the event log that cfg names, loads the action index
// from it, and returns, for every action it finds open (the server was
// killed while the action went on), the ActionEnded that ends it with
// ACTION_END_REASON_SERVER_RESTARTED, for the hub to append and send.
func openEventLog(ctx context.Context, cfg Config, metrics *Metrics, log *slog.Logger,
	setHealth func(healthpb.HealthCheckResponse_ServingStatus)) (*eventLog, []*actiondv1.Event, error) {
	e := &eventLog{
		cfg:       cfg.Events,
		metrics:   metrics,
		slog:      log,
		setHealth: setHealth,
		actions:   newActionIndex(),
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	lcfg := eventlog.Config{
		DataDir:         cfg.DataDir,
		Listen:          cfg.NATS.Listen,
		URL:             cfg.NATS.URL,
		CredsFile:       cfg.NATS.CredsFile,
		CAFile:          cfg.NATS.TLS.CAFile,
		CertFile:        cfg.NATS.TLS.CertFile,
		KeyFile:         cfg.NATS.TLS.KeyFile,
		WindowRetention: cfg.Events.WindowRetention,
		ActionRetention: cfg.Events.ActionRetention,
		MaxBytes:        int64(cfg.Events.MaxBytes),
		Replicas:        cfg.NATS.Replicas,
		Log:             log,
	}
	if cfg.NATS.URL == "" {
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, nil, err
		}
		e.lock = lock
	}
	l, err := eventlog.Open(ctx, lcfg)
	if err != nil {
		e.unlock()
		return nil, nil, err
	}
	e.log = l
	e.snaps = &snapshotStore{js: l.JetStream(), ttl: cfg.Events.ActionRetention, replicas: max(1, cfg.NATS.Replicas), connected: l.Connected}
	var ends []*actiondv1.Event
	if st, err := l.State(ctx); err != nil {
		log.Warn("event log unavailable: events flow unlogged until it is back; history is empty until then", "error", err)
	} else {
		e.lastPos.Store(st.Last)
		e.oldest.Store(st.First)
		e.observe(st)
		if err := e.load(ctx, st); err != nil {
			l.Close()
			e.unlock()
			return nil, nil, err
		}
		if cfg.NATS.URL == "" {
			// In a fleet, the actions left open may be those of streams
			// that other live nodes play.
			ends = e.restartEnds(ctx)
		}
		if err := e.follow(ctx, st.Last); err != nil {
			log.Warn("event log: the history follows this server's actions only", "error", err)
		}
		e.indexed = true
		e.markUp()
		where := cfg.DataDir
		if cfg.NATS.URL != "" {
			where = "external NATS"
		}
		log.Info("event log open", "at", where, "events", st.Messages, "bytes", st.Bytes,
			"first", st.First, "last", st.Last, "actions", e.actions.len(), "open_actions_ended", len(ends))
	}
	go e.run()
	return e, ends, nil
}

// follow keeps the action index up to date with what other servers append
// to a shared log (a fleet): an ordered consumer of the ActionStarted and
// ActionEnded subjects from after position from. This server's own events
// reach the index first, directly (add is idempotent).
func (e *eventLog) follow(ctx context.Context, from uint64) error {
	cons, err := e.log.JetStream().OrderedConsumer(ctx, eventlog.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: eventlog.FilterSubjects(nil, []string{eventlog.KindStarted, eventlog.KindEnded}),
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from + 1,
	})
	if err != nil {
		return err
	}
	var fences fleet.Fences // a replaced owner's late actions stay out of the history
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if ev, err := eventlog.Decode(msg); err == nil && fences.Admit(ev.GetStream(), ev.GetFence()) {
			e.actions.add(ev)
		}
	})
	if err != nil {
		return err
	}
	e.stopFollow = cc.Stop
	return nil
}

// fanout hands fn, in order, every event appended to the shared log after
// position from, by any node of the fleet: an ordered consumer, so that
// subscribers of this node see the streams other nodes play.
func (e *eventLog) fanout(ctx context.Context, from uint64, fn func(*actiondv1.Event)) error {
	cons, err := e.log.JetStream().OrderedConsumer(ctx, eventlog.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{eventlog.SubjectPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    from + 1,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if ev, err := eventlog.Decode(msg); err == nil {
			fn(ev)
		}
	})
	if err != nil {
		return err
	}
	e.stopFanout = cc.Stop
	return nil
}

// lastSequence returns the sequence of the newest event of stream that
// the log keeps, 0 when none: where a stream that moved to this node goes
// on numbering. It runs on the hub's goroutine, once per stream taken over.
func (e *eventLog) lastSequence(stream string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := e.log.JetStream().Stream(ctx, eventlog.StreamName)
	if err != nil {
		return 0
	}
	var seq uint64
	for _, kind := range eventlog.Kinds {
		msg, err := st.GetLastMsgForSubject(ctx, eventlog.Subject(stream, kind))
		if err != nil {
			continue
		}
		if ev, err := eventlog.DecodeRaw(msg); err == nil {
			seq = max(seq, ev.GetSequence())
		}
	}
	return seq
}

// lockDataDir takes data_dir's lock: two servers must not share one store.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data_dir %q is in use by another actiond (set data_dir or ACTIOND_DATA_DIR to another directory): %w", dir, err)
	}
	return f, nil
}

func (e *eventLog) unlock() {
	if e.lock != nil {
		e.lock.Close() // releases the flock
		e.lock = nil
	}
}

// load fills the action index from the log: every ActionStarted and
// ActionEnded it keeps, and which actions have a snapshot.
func (e *eventLog) load(ctx context.Context, st eventlog.State) error {
	subjects := eventlog.FilterSubjects(nil, []string{eventlog.KindStarted, eventlog.KindEnded})
	if err := e.log.Replay(ctx, 0, st.Last, subjects, func(ev *actiondv1.Event) error {
		e.actions.add(ev)
		return nil
	}); err != nil {
		return fmt.Errorf("event log: read the actions: %w", err)
	}
	names, err := e.snaps.names(ctx)
	if err != nil {
		e.slog.Warn("snapshots unavailable", "error", err)
	}
	for _, id := range names {
		e.actions.setSnapshot(id, true)
	}
	return nil
}

// restartEnds makes the ActionEnded events of the actions left open,
// ended at the last time the log knows for their stream.
func (e *eventLog) restartEnds(ctx context.Context) []*actiondv1.Event {
	var ends []*actiondv1.Event
	stream, err := e.log.JetStream().Stream(ctx, eventlog.StreamName)
	for _, a := range e.actions.openActions() {
		end := &actiondv1.ActionEnded{
			ActionId:   a.GetActionId(),
			Label:      a.GetLabel(),
			Index:      a.GetIndex(),
			MediaStart: a.GetMediaStart(),
			MediaEnd:   a.GetMediaStart(),
			StartTime:  a.GetStartTime(),
			EndTime:    a.GetStartTime(),
			Clock:      a.GetClock(),
			PeakScore:  a.GetPeakScore(),
			Reason:     actiondv1.ActionEndReason_ACTION_END_REASON_SERVER_RESTARTED,
		}
		if err == nil {
			// The stream's last window, if it came after the start, is the
			// last time known for the action.
			if msg, gerr := stream.GetLastMsgForSubject(ctx, eventlog.Subject(a.GetStream(), eventlog.KindWindow)); gerr == nil && msg.Sequence > a.GetStartPosition() {
				if w, derr := eventlog.DecodeRaw(msg); derr == nil && w.GetWindowResult() != nil {
					wr := w.GetWindowResult()
					end.MediaEnd, end.EndTime = wr.GetMediaEnd(), wr.GetEndTime()
					for _, l := range wr.GetTop() {
						if l.GetIndex() == a.GetIndex() && l.GetScore() > end.PeakScore {
							end.PeakScore = l.GetScore()
						}
					}
				}
			}
		}
		ends = append(ends, &actiondv1.Event{Stream: a.GetStream(), Kind: &actiondv1.Event_ActionEnded{ActionEnded: end}})
	}
	return ends
}

// append stores ev in the log and sets its position, or marks it unlogged
// when the log cannot take it. It runs on the hub's goroutine.
func (e *eventLog) append(ev *actiondv1.Event) {
	pos, err := e.log.Append(context.Background(), ev)
	if err != nil {
		ev.Position, ev.Logged = 0, false
		e.metrics.log.unlogged.Inc()
		e.markDown(err)
		return
	}
	ev.Position, ev.Logged = pos, true
	e.lastPos.Store(pos)
	e.metrics.log.logged.Inc()
	e.metrics.log.lastPosition.Set(float64(pos))
	if !e.up.Load() {
		e.markUp()
	}
	switch ev.GetKind().(type) {
	case *actiondv1.Event_ActionStarted, *actiondv1.Event_ActionEnded:
		e.actions.add(ev)
	}
}

// markDown records that the log failed; the watcher checks it every
// second until it is back.
func (e *eventLog) markDown(err error) {
	if !e.up.Swap(false) {
		return // down already
	}
	e.metrics.log.up.Set(0)
	e.setHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	e.slog.Warn("event log unavailable: live events go on, unlogged (logged: false); HistoryService NOT_SERVING", "error", err)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

func (e *eventLog) markUp() {
	if !e.up.Swap(true) {
		e.slog.Info("event log available")
	}
	e.metrics.log.up.Set(1)
	e.setHealth(healthpb.HealthCheckResponse_SERVING)
}

// observe puts the log's state in the metrics.
func (e *eventLog) observe(st eventlog.State) {
	e.metrics.log.bytes.Set(float64(st.Bytes))
	e.metrics.log.messages.Set(float64(st.Messages))
	e.metrics.log.oldestPosition.Set(float64(st.First))
	e.metrics.log.lastPosition.Set(float64(st.Last))
	e.oldest.Store(st.First)
}

// run checks the log's state: every 5s while it is up (for the metrics),
// every second while it is down (to say when it is back).
func (e *eventLog) run() {
	defer close(e.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var n int
	for {
		select {
		case <-e.stop:
			return
		case <-e.wake:
		case <-t.C:
		}
		n++
		if e.up.Load() && n%5 != 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := e.log.State(ctx)
		if err == nil && !e.indexed {
			// The log was down at start: the history is read now.
			if lerr := e.load(ctx, st); lerr != nil {
				e.slog.Warn("event log back, but its history cannot be read yet", "error", lerr)
			} else {
				if ferr := e.follow(context.Background(), st.Last); ferr != nil {
					e.slog.Warn("event log: the history follows this server's actions only", "error", ferr)
				}
				e.indexed = true
			}
		}
		if err == nil {
			e.observe(st)
			e.actions.forgetBefore(st.First)
			if size, serr := e.snaps.size(ctx); serr == nil {
				e.metrics.log.snapshotBytes.Set(float64(size))
			}
			if !e.up.Load() {
				e.markUp()
			}
		} else if e.up.Load() {
			e.markDown(err)
		}
		cancel()
	}
}

// close stops the watcher, closes the log and frees data_dir.
func (e *eventLog) close() {
	close(e.stop)
	<-e.done
	if e.stopFollow != nil {
		e.stopFollow()
	}
	if e.stopFanout != nil {
		e.stopFanout()
	}
	e.log.Close()
	e.unlock()
}

// snapshotStore keeps the actions' snapshots in a JetStream object store,
// one object per action id, kept as long as the action.
type snapshotStore struct {
	js        jetstream.JetStream
	ttl       time.Duration
	replicas  int
	connected func() bool

	mu    sync.Mutex
	store jetstream.ObjectStore
}

// bucket returns the object store, making it on first use.
func (s *snapshotStore) bucket(ctx context.Context) (jetstream.ObjectStore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected() {
		return nil, fmt.Errorf("%w: snapshots: not connected to NATS", eventlog.ErrUnavailable)
	}
	if s.store != nil {
		return s.store, nil
	}
	st, err := s.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      snapshotBucket,
		Description: "actiond: the picture at the start of each action",
		TTL:         s.ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    s.replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: snapshots: %w", eventlog.ErrUnavailable, err)
	}
	s.store = st
	return st, nil
}

func (s *snapshotStore) names(ctx context.Context) ([]string, error) {
	b, err := s.bucket(ctx)
	if err != nil {
		return nil, err
	}
	infos, err := b.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(infos))
	for _, in := range infos {
		names = append(names, in.Name)
	}
	return names, nil
}

func (s *snapshotStore) size(ctx context.Context) (uint64, error) {
	b, err := s.bucket(ctx)
	if err != nil {
		return 0, err
	}
	st, err := b.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// checkResume fails when a Subscribe cannot resume after position: the
// log is down, or no longer keeps the events after it (OUT_OF_RANGE,
// naming the oldest position kept).
func (e *eventLog) checkResume(ctx context.Context, after uint64) error {
	if e == nil {
		return fmt.Errorf("%w: this server keeps no event log", eventlog.ErrUnavailable)
	}
	st, err := e.log.State(ctx)
	if err != nil {
		return fmt.Errorf("cannot resume: %w; subscribe without resume_after for live events", err)
	}
	if after > 0 && after+1 < st.First {
		return fmt.Errorf("resume_after %d: %w", after, &eventlog.OutOfRangeError{Oldest: st.First})
	}
	return nil
}

// replay sends sub, through send, every logged event after
// req.resume_after that passes f, up to where its live events begin, and
// returns the last position it replayed: the live events at or before it
// are to be skipped. If the subscriber's queue dropped events meanwhile
// (it fell behind while the replay went on), the replay goes on from the
// log rather than announce a gap, a few rounds at most.
func (e *eventLog) replay(ctx context.Context, req *actiondv1.SubscribeRequest, f *subscriptionFilter, sub *subscription,
	send func(*actiondv1.SubscribeResponse) error) (uint64, error) {
	var kinds []string
	for _, k := range req.GetKinds() {
		kinds = append(kinds, eventlog.KindName(k))
	}
	subjects := eventlog.FilterSubjects(req.GetStreams(), kinds)
	after, upTo := req.GetResumeAfter(), sub.seam
	if after > upTo {
		// Past the newest position: not this log's (a data_dir started
		// afresh). Nothing to replay; every live event is new.
		after = upTo
	}
	for round := 0; ; round++ {
		if upTo > after {
			err := e.log.Replay(ctx, after, upTo, subjects, func(ev *actiondv1.Event) error {
				if out := f.apply(ev); out != nil {
					return send(&actiondv1.SubscribeResponse{Event: out})
				}
				return nil
			})
			if err != nil {
				return 0, fmt.Errorf("replay after %d: %w", after, err)
			}
			after = upTo
		}
		if round == 3 || !sub.queue.forgetDropped() {
			return after, nil
		}
		// Every event dropped from the queue was appended before it was
		// queued: the newest position now covers them all.
		upTo = e.lastPos.Load()
	}
}
