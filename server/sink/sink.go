package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ackWait is how long the log waits for a sink's acknowledgement before
// it hands the event out again; a sink holding an event (retrying) tells
// the log it is still at work every ackWait/3. After a crash, the event
// the sink held comes back after at most ackWait.
const ackWait = 15 * time.Second

// positionsBucket is the JetStream KV bucket where each sink keeps the
// position of the last event its receiver acknowledged (key: the sink's
// name). The consumer keeps it too, but JetStream writes a consumer's
// state at most ten times a second: a process killed in between would
// hand out again events already acknowledged. A KV put is written before
// it is confirmed, so after a crash the sink skips what it had delivered.
const positionsBucket = "ACTIOND_SINKS"

// delivery is one event for a receiver.
type delivery struct {
	ev   *actiondv1.Event
	kind string
	// pass is true when the event passes the sink's filters; an MQTT
	// sink also gets the events that only change its retained state.
	pass bool
	// body is the event as JSON (protojson with the .proto names, as
	// `actionctl watch --json` prints it, position included).
	body []byte
}

// receiver is the far end of a sink. deliver runs only on the sink's
// goroutine; nil means the receiver acknowledged the event.
type receiver interface {
	deliver(ctx context.Context, d *delivery) error
	// wantsAll: deliver also gets events that do not pass the filters.
	wantsAll() bool
	// wake fires when retrying now is worth it (a broker reconnected);
	// nil when never.
	wake() <-chan struct{}
	// refresh puts back what the receiver should hold and may have lost
	// (an MQTT broker restarted without its retained messages); it runs
	// on the sink's goroutine between events.
	refresh(ctx context.Context)
	close()
}

// deadLetter is a delivery the receiver refused for good: the event is
// counted and skipped.
type deadLetter struct{ err error }

func (e *deadLetter) Error() string { return e.err.Error() }
func (e *deadLetter) Unwrap() error { return e.err }

// stats are one sink's figures; they outlive a reconfiguration of the
// sink.
type stats struct {
	delivered, retries, deadLetters, pending, acked atomic.Uint64
	up                                              atomic.Bool

	mu          sync.Mutex
	lastErr     string
	lastErrTime time.Time
}

func (st *stats) setErr(err error) {
	st.mu.Lock()
	st.lastErr, st.lastErrTime = err.Error(), time.Now()
	st.mu.Unlock()
}

// runner is one running sink: its consumer and its receiver, owned by one
// goroutine.
type runner struct {
	spec  Spec
	js    jetstream.JetStream
	recv  receiver
	st    *stats
	log   *slog.Logger
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}
	kinds map[string]bool // the kinds that pass
	since time.Time       // when the sink was configured

	// consumer names the sink's durable consumer and its key in the
	// positions bucket: its name, or "<fleet>_<name>" in a fleet.
	consumer string
	// fleet: the sink reads a log that a fleet's nodes append to, and
	// drops a replaced owner's late events (admit).
	fleet bool

	// cons is the sink's consumer once open, for the figures' goroutine.
	cons atomic.Pointer[jetstream.Consumer]

	// Owned by run.
	positions jetstream.KeyValue
	floor     uint64 // events up to here were delivered before a restart
	fences    map[string]fenceSeen
}

// fenceSeen is the highest fence seen for a stream, and when the log took
// the first event that carried it.
type fenceSeen struct {
	fence uint64
	at    time.Time
}

// staleFor is how long after a new owner's first event an event of an
// older owner can still come (an append that was in flight): a lower
// fence after that is not a late event but a fleet whose leases started
// again from scratch (its buckets deleted, to change fleet.lease), and
// the stream's fences start again from it.
const staleFor = 5 * time.Minute

func newRunner(spec Spec, allowed *hostlist.List, js jetstream.JetStream, st *stats, log *slog.Logger, fleet, node string) (*runner, error) {
	log = log.With("sink", spec.Name)
	r := &runner{spec: spec, js: js, st: st, log: log, done: make(chan struct{}), kinds: map[string]bool{}, since: time.Now(), consumer: spec.Name}
	if fleet != "" {
		r.consumer, r.fleet, r.fences = fleet+"_"+spec.Name, true, map[string]fenceSeen{}
		if spec.ClientID == "actiond-"+spec.Name {
			spec.ClientID += "-" + node // r.spec keeps the configured one
		}
	}
	for _, k := range spec.Kinds {
		r.kinds[k] = true
	}
	var err error
	switch spec.Type {
	case "mqtt":
		r.recv, err = newMQTT(spec, allowed, st, log)
	case "webhook":
		r.recv = newWebhook(spec, allowed, st)
	default:
		err = fmt.Errorf("sink %q: unknown type %q", spec.Name, spec.Type)
	}
	if err != nil {
		return nil, err
	}
	r.ctx, r.stop = context.WithCancel(context.Background())
	return r, nil
}

func (r *runner) start() { go r.run() }

// close stops the sink and waits for it; its consumer, and so its
// position, stays in the log.
func (r *runner) close() {
	r.stop()
	<-r.done
}

// subjects are the log subjects the sink's consumer reads.
func (r *runner) subjects() []string {
	kinds := slices.Clone(r.spec.Kinds)
	if r.recv.wantsAll() {
		kinds = append(kinds, eventlog.KindStarted, eventlog.KindEnded, eventlog.KindStatus)
	}
	if r.fleet {
		// A new owner's first event is its stream's status: the sink
		// learns its fence before any late event of the old owner.
		kinds = append(kinds, eventlog.KindStatus)
	}
	slices.Sort(kinds)
	kinds = slices.Compact(kinds)
	streams := slices.Clone(r.spec.Streams)
	if len(streams) == 0 {
		streams = []string{"*"}
	}
	slices.Sort(streams)
	streams = slices.Compact(streams)
	var subs []string
	for _, s := range streams {
		for _, k := range kinds {
			subs = append(subs, eventlog.Subject(s, k))
		}
	}
	return subs
}

func (r *runner) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     r.consumer,
		Description: "actiond sink " + r.spec.Name + " (" + r.spec.Type + ")",
		// A new sink starts when it was configured (openConsumer); one
		// that exists keeps its position.
		DeliverPolicy:  jetstream.DeliverNewPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        ackWait,
		MaxDeliver:     -1,
		MaxAckPending:  1,
		FilterSubjects: r.subjects(),
	}
}

// openConsumer opens the sink's durable consumer, with the filters of
// its spec. A consumer that exists keeps its position; a new one starts
// at the time the sink was configured, so that events appended while it
// was being created are not missed.
func (r *runner) openConsumer(ctx context.Context) (jetstream.Consumer, error) {
	cfg := r.consumerConfig()
	c, err := r.js.Consumer(ctx, eventlog.StreamName, r.consumer)
	switch {
	case err == nil:
		old := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
		return r.js.UpdateConsumer(ctx, eventlog.StreamName, cfg)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &r.since
		return r.js.CreateConsumer(ctx, eventlog.StreamName, cfg)
	}
	return nil, err
}

func (r *runner) run() {
	defer close(r.done)
	defer r.recv.close()
	ctx := r.ctx
	// The figures are read on a goroutine of their own: a delivery can
	// take a while (a receiver that does not answer, up to timeout), and
	// pending should grow meanwhile.
	var figures sync.WaitGroup
	defer figures.Wait()
	figures.Go(func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if c := r.cons.Load(); c != nil {
					r.refresh(ctx, *c)
				}
			}
		}
	})
	var cons jetstream.Consumer
	fails := 0
	for ctx.Err() == nil {
		if cons == nil {
			c, err := r.open(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.st.setErr(fmt.Errorf("event log: %w", err))
				r.log.Warn("cannot start the sink in the event log", "err", err)
				sleep(ctx, r.backoff(fails))
				fails++
				continue
			}
			cons, fails = c, 0
			r.cons.Store(&c)
			r.refresh(ctx, cons)
			r.log.Info("sink started", "type", r.spec.Type, "target", r.spec.Target(), "acked_position", r.st.acked.Load())
		}
		r.recv.refresh(ctx)
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := cons.Next(jetstream.FetchContext(fctx))
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrConsumerDeleted),
				errors.Is(err, jetstream.ErrStreamNotFound):
				cons = nil
				r.cons.Store(nil)
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout), errors.Is(err, jetstream.ErrNoMessages):
			default:
				// The log is away (an external NATS down): its own
				// component says so; here it is the sink's last error.
				r.st.setErr(fmt.Errorf("event log: %w", err))
				r.log.Debug("fetch", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		r.handle(ctx, msg)
	}
}

// open opens the sink's consumer and reads its position.
func (r *runner) open(ctx context.Context) (jetstream.Consumer, error) {
	c, err := r.openConsumer(ctx)
	if err != nil {
		return nil, fmt.Errorf("open consumer %s: %w", r.consumer, err)
	}
	if err := r.openPositions(ctx); err != nil {
		return nil, fmt.Errorf("read the position: %w", err)
	}
	return c, nil
}

// backoff is the wait before the sink's n-th retry in a row (n from 0):
// see backoff, between backoff_min and backoff_max.
func (r *runner) backoff(n int) time.Duration {
	return backoff(n, r.spec.BackoffMin, r.spec.BackoffMax)
}

// openPositions opens the positions bucket and reads the sink's floor.
func (r *runner) openPositions(ctx context.Context) error {
	if r.positions == nil {
		kv, err := r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      positionsBucket,
			Description: "actiond sinks: the last position each sink's receiver acknowledged",
			History:     1,
			Storage:     jetstream.FileStorage,
		})
		if err != nil {
			return fmt.Errorf("bucket %s: %w", positionsBucket, err)
		}
		r.positions = kv
	}
	e, err := r.positions.Get(ctx, r.consumer)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("bucket %s: %w", positionsBucket, err)
	}
	p, err := strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return fmt.Errorf("bucket %s: key %s: %w", positionsBucket, r.consumer, err)
	}
	r.floor = p
	if p > r.st.acked.Load() {
		r.st.acked.Store(p)
	}
	return nil
}

// refresh reads the sink's position and how many events wait for it.
func (r *runner) refresh(ctx context.Context, cons jetstream.Consumer) {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := cons.Info(ictx)
	if err != nil {
		return
	}
	r.st.pending.Store(info.NumPending + uint64(info.NumAckPending))
	if info.AckFloor.Stream > r.st.acked.Load() {
		r.st.acked.Store(info.AckFloor.Stream)
	}
}

// handle delivers one event until the receiver acknowledges it, refuses
// it for good, or the sink stops (then the log hands it out again).
func (r *runner) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		r.log.Warn("event without metadata", "err", err)
		_ = msg.Term()
		return
	}
	pos := meta.Sequence.Stream
	r.st.pending.Store(meta.NumPending + 1)
	d, err := r.decode(msg)
	if err != nil {
		r.st.deadLetters.Add(1)
		r.st.setErr(err)
		r.log.Warn("event cannot be read: skipped", "position", pos, "err", err)
		r.ack(ctx, msg, pos, meta.NumPending)
		return
	}
	if pos <= r.floor {
		// Delivered before a crash that the consumer's state missed.
		r.log.Debug("already delivered before a restart: skipped", "position", pos)
		r.ack(ctx, msg, pos, meta.NumPending)
		return
	}
	if !r.admit(ctx, d.ev, meta.Timestamp) {
		r.log.Debug("event of a replaced owner: skipped", "position", pos, "stream", d.ev.GetStream(), "fence", d.ev.GetFence())
		r.ack(ctx, msg, pos, meta.NumPending)
		return
	}
	if !d.pass && !r.recv.wantsAll() {
		r.ack(ctx, msg, pos, meta.NumPending)
		return
	}
	for attempt := 0; ; attempt++ {
		err := r.recv.deliver(ctx, d)
		if err == nil {
			if d.pass {
				r.st.delivered.Add(1)
			}
			if attempt > 0 {
				r.log.Info("delivered after retrying", "position", pos, "attempts", attempt+1)
			}
			break
		}
		if ctx.Err() != nil {
			return
		}
		r.st.setErr(err)
		if dl := (*deadLetter)(nil); errors.As(err, &dl) {
			r.st.deadLetters.Add(1)
			r.log.Warn("receiver refused the event: dead letter", "position", pos, "stream", d.ev.GetStream(), "kind", d.kind, "err", err)
			break
		}
		r.st.retries.Add(1)
		wait := r.backoff(attempt)
		// The first failure is a warning; the retries that follow are
		// counted, and their end is said once.
		lvl := slog.LevelDebug
		if attempt == 0 {
			lvl = slog.LevelWarn
		}
		r.log.Log(ctx, lvl, "delivery failed: retrying", "position", pos, "attempt", attempt+1, "in", wait.Round(time.Millisecond), "err", err)
		if !r.hold(ctx, msg, wait) {
			return
		}
	}
	r.ack(ctx, msg, pos, meta.NumPending)
}

// admit reports whether ev, which the log took at at, may be delivered:
// not when its owner had been replaced by then, that is when an event of
// its stream with a higher fence came before it in the log, less than
// staleFor earlier (the hub drops the same events for subscribers). The
// highest fence per stream is kept in the positions bucket (key
// "<consumer>.fence.<stream>", value "<fence> <unix nanoseconds>"),
// written before the event is acknowledged: the fleet's nodes take the
// sink's events one at a time, so each sees what the one before it saw.
// While the bucket cannot be read, the node's own memory decides.
func (r *runner) admit(ctx context.Context, ev *actiondv1.Event, at time.Time) bool {
	fence := ev.GetFence()
	if !r.fleet || fence == 0 {
		return true
	}
	stream := ev.GetStream()
	key := r.consumer + ".fence." + strings.ReplaceAll(stream, ".", "=2E")
	gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	high, kept := r.fences[stream], fenceSeen{}
	if e, err := r.positions.Get(gctx, key); err == nil {
		var nanos int64
		if _, err := fmt.Sscanf(string(e.Value()), "%d %d", &kept.fence, &nanos); err == nil {
			kept.at = time.Unix(0, nanos)
		}
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		r.log.Debug("read the stream's fence", "stream", stream, "err", err)
	}
	if kept.fence > high.fence {
		high = kept
	}
	switch {
	case fence == high.fence:
		return true
	case fence < high.fence && at.Sub(high.at) < staleFor:
		return false
	case fence < high.fence:
		r.log.Warn("a fence far below the stream's highest: the fleet's leases started again; the stream's fences start again from it",
			"stream", stream, "fence", fence, "highest", high.fence, "seen_at", high.at)
	}
	r.fences[stream] = fenceSeen{fence: fence, at: at}
	if _, err := r.positions.Put(gctx, key, fmt.Appendf(nil, "%d %d", fence, at.UnixNano())); err != nil {
		r.log.Warn("cannot keep the stream's fence", "stream", stream, "fence", fence, "err", err)
	}
	return true
}

// hold waits before a retry, telling the log the event is still being
// worked on; false when the sink stops.
func (r *runner) hold(ctx context.Context, msg jetstream.Msg, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	tick := time.NewTicker(ackWait / 3)
	defer tick.Stop()
	_ = msg.InProgress()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			_ = msg.InProgress()
			return true
		case <-r.recv.wake():
			_ = msg.InProgress()
			return true
		case <-tick.C:
			_ = msg.InProgress()
		}
	}
}

// ack tells the log the event is done with, and waits for the log to
// confirm, so that the position is kept before the next event goes out.
func (r *runner) ack(ctx context.Context, msg jetstream.Msg, pos, left uint64) {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if pos > r.floor {
		if _, err := r.positions.Put(actx, r.consumer, []byte(strconv.FormatUint(pos, 10))); err != nil {
			r.log.Warn("cannot keep the sink's position", "position", pos, "err", err)
		} else {
			r.floor = pos
		}
	}
	if err := msg.DoubleAck(actx); err != nil {
		// The log hands the event out again: a duplicate, never a loss.
		r.log.Warn("event log did not confirm the acknowledgement", "position", pos, "err", err)
		return
	}
	r.st.acked.Store(pos)
	r.st.pending.Store(left)
}

// decode reads a log message into a delivery, with the sink's filters
// applied.
func (r *runner) decode(msg jetstream.Msg) (*delivery, error) {
	stream, kind, ok := eventlog.ParseSubject(msg.Subject())
	if !ok {
		return nil, fmt.Errorf("subject %q is not an event's", msg.Subject())
	}
	ev, err := eventlog.Decode(msg)
	if err != nil {
		return nil, err
	}
	if ev.Stream == "" {
		ev.Stream = stream
	}
	d := &delivery{ev: ev, kind: kind, pass: r.kinds[kind] && r.labelPasses(ev)}
	b, err := EventJSON(ev)
	if err != nil {
		return nil, err
	}
	d.body = b
	return d, nil
}

func (r *runner) labelPasses(ev *actiondv1.Event) bool {
	if len(r.spec.Labels) == 0 {
		return true
	}
	var label string
	switch k := ev.Kind.(type) {
	case *actiondv1.Event_ActionStarted:
		label = k.ActionStarted.GetLabel()
	case *actiondv1.Event_ActionEnded:
		label = k.ActionEnded.GetLabel()
	case *actiondv1.Event_WindowResult:
		if top := k.WindowResult.GetTop(); len(top) > 0 {
			label = top[0].GetLabel()
		}
	default:
		return true
	}
	return slices.Contains(r.spec.Labels, label)
}

// EventJSON is ev as sinks send it: one line of protojson with the .proto
// field names, as `actionctl watch --json` prints it.
func EventJSON(ev *actiondv1.Event) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// info is the sink as ListSinks shows it.
func (r *runner) info() *actiondv1.Sink {
	st := r.st
	s := &actiondv1.Sink{
		Name:          r.spec.Name,
		Type:          r.spec.Type,
		Target:        r.spec.Target(),
		Up:            st.up.Load(),
		Delivered:     st.delivered.Load(),
		Pending:       st.pending.Load(),
		Retries:       st.retries.Load(),
		DeadLetters:   st.deadLetters.Load(),
		AckedPosition: st.acked.Load(),
	}
	st.mu.Lock()
	s.LastError = st.lastErr
	if !st.lastErrTime.IsZero() {
		s.LastErrorTime = timestamppb.New(st.lastErrTime)
	}
	st.mu.Unlock()
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
