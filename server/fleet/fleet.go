package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Fleet is one node's membership in a fleet. One goroutine owns the leases
// it holds: it heartbeats, renews, claims and sheds, and calls the Handler.
type Fleet struct {
	cfg      Config
	log      *slog.Logger
	nodes    jetstream.KeyValue
	leases   jetstream.KeyValue
	instance string
	ops      atomic.Uint64

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	streamsCh chan []string
	drainCh   chan chan struct{}
	// releases are the Handler.Release calls in flight, each on a
	// goroutine of its own (at most releasers at once), so that renewals
	// never wait behind a camera that is slow to close; released says
	// which stream's call has returned.
	releases  sync.WaitGroup
	releaseSm chan struct{}
	released  chan string
	stopping  atomic.Int64 // releases in flight, lease hand-back included

	mu        sync.Mutex
	view      map[string]nodeEntry  // live heartbeats by node name
	leaseView map[string]leaseEntry // leases by stream
	ownedView []string
	draining  bool
	err       error

	// Owned by the run goroutine (and by Close after it has ended).
	streams []string
	owned   map[string]*ownership
	gone    map[string]uint64 // the last revision of each lease let go
	// releasing are the streams whose Release has not returned: this
	// node claims none of them until it has.
	releasing map[string]bool
	unplaced  bool // the last plan left registered streams without an owner
	// The watches: when each last delivered, and whether each has
	// delivered the bucket's contents since it started.
	nodesAt, leasesAt         time.Time
	nodesSynced, leasesSynced bool
	nodesC, leasesC           <-chan jetstream.KeyValueEntry
	fatal                     bool // another process took the name
	hbRev                     uint64
	tokens                    float64
	tokensAt                  time.Time
	settleSet                 bool
}

type nodeEntry struct {
	rec Node
	at  time.Time // when this node saw the record (not the writer's clock)
}

type leaseEntry struct {
	rec lease
	rev uint64
	at  time.Time
}

type ownership struct {
	rev     uint64    // the lease's latest revision, for compare-and-set
	fence   uint64    // the revision of the claim
	renewed time.Time // when the last successful claim or renewal was sent
}

// Start joins the fleet: it opens the fleet's buckets, registers the node
// (refusing a name that a live node uses), and starts claiming the streams
// that SetStreams names.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("fleet %q: %w", cfg.Fleet, err)
	}
	var id [8]byte
	rand.Read(id[:])
	f := &Fleet{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "fleet", "fleet", cfg.Fleet, "node", cfg.Node),
		instance:  hex.EncodeToString(id[:]),
		done:      make(chan struct{}),
		streamsCh: make(chan []string),
		drainCh:   make(chan chan struct{}),
		view:      make(map[string]nodeEntry),
		leaseView: make(map[string]leaseEntry),
		owned:     make(map[string]*ownership),
		gone:      make(map[string]uint64),
		releasing: make(map[string]bool),
		releaseSm: make(chan struct{}, releasers),
		released:  make(chan string),
		tokens:    float64(cfg.MovesPerMinute),
		tokensAt:  time.Now(),
	}
	if f.nodes, err = f.bucket(ctx, js, NodesBucket(cfg.Fleet), "heartbeats"); err != nil {
		return nil, err
	}
	if f.leases, err = f.bucket(ctx, js, LeasesBucket(cfg.Fleet), "stream leases"); err != nil {
		return nil, err
	}
	if err := f.register(ctx); err != nil {
		return nil, err
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	nodesW, leasesW, err := f.watch()
	if err != nil {
		f.cancel()
		return nil, err
	}
	sub, err := cfg.Conn.Subscribe(drainSubject(cfg.Fleet, cfg.Node), f.onDrainRequest)
	if err != nil {
		f.cancel()
		return nil, fmt.Errorf("fleet %q: listen for drain requests: %w", cfg.Fleet, err)
	}
	if err := cfg.Conn.FlushTimeout(cfg.Lease); err != nil {
		sub.Unsubscribe()
		f.cancel()
		return nil, fmt.Errorf("fleet %q: listen for drain requests: %w", cfg.Fleet, err)
	}
	f.log.Info("joined fleet", "lease", cfg.Lease, "max_streams", cfg.MaxStreams)
	go f.run(nodesW, leasesW, sub)
	return f, nil
}

// bucket opens or creates a fleet bucket whose keys live one lease. The
// lease is the fleet's: a node configured with another one is refused.
func (f *Fleet) bucket(ctx context.Context, js jetstream.JetStream, name, what string) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         name,
		Description:    "actiond fleet " + f.cfg.Fleet + ": " + what,
		History:        1,
		TTL:            f.cfg.Lease,
		LimitMarkerTTL: f.cfg.Lease,
		Storage:        jetstream.FileStorage,
		Replicas:       f.cfg.Replicas,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		kv, err = js.KeyValue(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("fleet %q: open bucket %s: %w", f.cfg.Fleet, name, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet %q: bucket %s: %w", f.cfg.Fleet, name, err)
	}
	if st.TTL() != f.cfg.Lease {
		return nil, fmt.Errorf("%w: this node has 'fleet.lease' %s, fleet %q runs with %s; set the same on every node",
			ErrLeaseMismatch, f.cfg.Lease, f.cfg.Fleet, st.TTL())
	}
	return kv, nil
}

// register creates the node's heartbeat key if absent. A key that exists
// may be this node's own previous life (crashed; it expires within a
// lease) or another live node with the same name (its revision moves
// within a third of a lease): wait to tell which.
func (f *Fleet) register(ctx context.Context) error {
	key := streamKey(f.cfg.Node)
	b, _ := encodeNode(f.record(nil, false), f.cfg.Previous)
	deadline := time.Now().Add(f.cfg.Lease * 3 / 2)
	var seen uint64
	for {
		f.ops.Add(1)
		rev, err := f.nodes.Create(ctx, key, b)
		if err == nil {
			f.hbRev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("fleet %q: register node %q: %w", f.cfg.Fleet, f.cfg.Node, err)
		}
		f.ops.Add(1)
		e, err := f.nodes.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fleet %q: register node %q: %w", f.cfg.Fleet, f.cfg.Node, err)
		}
		if (seen != 0 && e.Revision() != seen) || time.Now().After(deadline) {
			other, _ := decodeNode(e.Value())
			return fmt.Errorf("%w: 'node.name' %q is used by a live node of fleet %q (address %q, last heartbeat at %s); give every node its own node.name",
				ErrDuplicateNode, f.cfg.Node, f.cfg.Fleet, other.Address, other.Time.Format(time.RFC3339))
		}
		seen = e.Revision()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.cfg.Lease / 6):
		}
	}
}

func (f *Fleet) record(streams []string, draining bool) Node {
	n := Node{
		Version:       FormatVersion,
		Name:          f.cfg.Node,
		Instance:      f.instance,
		Address:       f.cfg.Address,
		ServerVersion: f.cfg.ServerVersion,
		Streams:       streams,
		MaxStreams:    f.cfg.MaxStreams,
		Draining:      draining,
		Time:          time.Now().UTC(),
	}
	if n.Streams == nil {
		n.Streams = []string{}
	}
	if f.cfg.Load != nil {
		n.Load = f.cfg.Load()
	}
	if f.cfg.Status != nil && len(streams) > 0 {
		n.Status = f.cfg.Status(streams)
	}
	return n
}

func (f *Fleet) run(nodesW, leasesW jetstream.KeyWatcher, sub *nats.Subscription) {
	defer close(f.done)
	defer sub.Unsubscribe()
	defer func() { stopWatch(nodesW); stopWatch(leasesW) }()
	f.nodesC, f.leasesC = nodesW.Updates(), leasesW.Updates()
	f.nodesAt, f.leasesAt = time.Now(), time.Now()
	// restartWatchers starts both watches afresh: a watch whose consumer
	// was lost with a NATS server can stay silent for long, and this
	// node's own heartbeat (and renewals) must come back every third of a
	// lease. Until the new watches have delivered what is there, the node
	// does not plan.
	restartWatchers := func() {
		nw, lw, err := f.watch()
		if err != nil {
			f.log.Warn("restart the watches", "error", err)
			return
		}
		f.log.Warn("watches silent for a lease: restarted them")
		stopWatch(nodesW)
		stopWatch(leasesW)
		nodesW, leasesW = nw, lw
		f.nodesC, f.leasesC = nw.Updates(), lw.Updates()
		f.nodesSynced, f.leasesSynced = false, false
		f.nodesAt, f.leasesAt = time.Now(), time.Now()
		f.mu.Lock()
		clear(f.view)
		clear(f.leaseView)
		f.mu.Unlock()
	}
	// Nodes that start together would renew together: spread them.
	renew := time.NewTimer(time.Duration(mrand.Int64N(int64(f.cfg.Lease / 3))))
	defer renew.Stop()
	check := time.NewTicker(f.cfg.Lease / 12)
	defer check.Stop()
	// Watch updates come in bursts; plan once the burst has passed.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	poke := func() {
		if !f.settleSet {
			f.settleSet = true
			settle.Reset(20 * time.Millisecond)
		}
	}
	for {
		if f.fatal {
			return
		}
		// Renewals go first: a burst of watch updates or claims must not
		// delay them towards the give-up point.
		select {
		case <-renew.C:
			renew.Reset(f.cfg.Lease / 3)
			if f.heartbeat() {
				return
			}
			f.renew()
			continue
		default:
		}
		select {
		case <-f.ctx.Done():
			return
		case e, ok := <-f.nodesC:
			if f.takeNode(e, ok); ok {
				poke()
			}
		case e, ok := <-f.leasesC:
			if f.takeLease(e, ok) {
				poke()
			}
		case s := <-f.streamsCh:
			f.streams = s
			poke()
		case s := <-f.released:
			delete(f.releasing, s)
			poke()
		case ch := <-f.drainCh:
			f.mu.Lock()
			was := f.draining
			f.draining = true
			f.mu.Unlock()
			if !was {
				f.log.Info("draining: handing streams over, taking no new ones", "streams", len(f.owned))
				f.heartbeat()
			}
			close(ch)
			poke()
		case <-renew.C:
			renew.Reset(f.cfg.Lease / 3)
			if f.heartbeat() {
				return
			}
			f.renew()
			f.reconcile()
		case <-check.C:
			f.giveUp()
			if f.cfg.Conn.IsConnected() && (time.Since(f.nodesAt) > f.cfg.Lease ||
				len(f.owned) > 0 && time.Since(f.leasesAt) > f.cfg.Lease) {
				restartWatchers()
			}
			if f.unplaced {
				// Views that disagreed at the last update can leave a
				// stream that everyone thinks another will claim.
				f.reconcile()
			}
		case <-settle.C:
			f.settleSet = false
			if f.reconcile() {
				poke()
			}
		}
	}
}

// catchUp applies the watch updates that are waiting, so that a plan is
// made on the freshest view.
func (f *Fleet) catchUp() {
	for range 100000 {
		select {
		case e, ok := <-f.nodesC:
			if f.takeNode(e, ok) {
				return
			}
		case e, ok := <-f.leasesC:
			f.takeLease(e, ok)
		default:
			return
		}
	}
}

// watch starts the heartbeat and lease watches, both or neither.
func (f *Fleet) watch() (nodes, leases jetstream.KeyWatcher, err error) {
	if nodes, err = f.nodes.WatchAll(f.ctx); err != nil {
		return nil, nil, fmt.Errorf("fleet %q: watch heartbeats: %w", f.cfg.Fleet, err)
	}
	if leases, err = f.leases.WatchAll(f.ctx); err != nil {
		stopWatch(nodes)
		return nil, nil, fmt.Errorf("fleet %q: watch leases: %w", f.cfg.Fleet, err)
	}
	return nodes, leases, nil
}

// takeNode takes one delivery of the heartbeat watch (ok false: the
// watch ended) and reports true when it ended the membership (applyNode).
func (f *Fleet) takeNode(e jetstream.KeyValueEntry, ok bool) (fatal bool) {
	if !ok {
		f.nodesC = nil
		return false
	}
	f.nodesAt = time.Now()
	return f.applyNode(e)
}

// takeLease takes one delivery of the lease watch; it reports whether
// there was one.
func (f *Fleet) takeLease(e jetstream.KeyValueEntry, ok bool) bool {
	if !ok {
		f.leasesC = nil
		return false
	}
	f.leasesAt = time.Now()
	f.applyLease(e)
	return true
}

// stopWatch stops a watch and takes what it was still delivering: its
// goroutine may be blocked handing over an update, and would never end.
func stopWatch(w jetstream.KeyWatcher) {
	w.Stop()
	timeout := time.After(time.Second)
	for {
		select {
		case _, ok := <-w.Updates():
			if !ok {
				return
			}
		case <-timeout:
			return
		}
	}
}

// applyNode records a heartbeat. It reports true when another process
// took this node's name, which ends the membership.
func (f *Fleet) applyNode(e jetstream.KeyValueEntry) (fatal bool) {
	if e == nil {
		f.nodesSynced = true // the end of the initial values
		return false
	}
	name := keyStream(e.Key())
	if e.Operation() != jetstream.KeyValuePut {
		f.mu.Lock()
		delete(f.view, name)
		f.mu.Unlock()
		return false
	}
	n, err := decodeNode(e.Value())
	if err != nil {
		f.log.Warn("ignoring heartbeat", "key", e.Key(), "error", err)
		return false
	}
	if n.Name == f.cfg.Node && n.Instance != f.instance && e.Revision() > f.hbRev {
		f.fail(fmt.Errorf("%w: another process (address %q) took 'node.name' %q in fleet %q; stopping this node's streams",
			ErrDuplicateNode, n.Address, f.cfg.Node, f.cfg.Fleet))
		f.fatal = true
		return true
	}
	f.mu.Lock()
	f.view[name] = nodeEntry{rec: n, at: time.Now()}
	f.mu.Unlock()
	return false
}

func (f *Fleet) applyLease(e jetstream.KeyValueEntry) {
	if e == nil {
		f.leasesSynced = true
		return
	}
	stream := keyStream(e.Key())
	var l lease
	put := e.Operation() == jetstream.KeyValuePut
	if put {
		var err error
		if l, err = decodeLease(e.Value()); err != nil {
			f.log.Warn("ignoring lease", "key", e.Key(), "error", err)
			return
		}
	}
	f.mu.Lock()
	if put {
		f.leaseView[stream] = leaseEntry{rec: l, rev: e.Revision(), at: time.Now()}
	} else {
		delete(f.leaseView, stream)
	}
	f.mu.Unlock()
	// A newer revision that is not ours: the lease expired under us and
	// was claimed, or expired (a marker). Stop at once.
	if o := f.owned[stream]; o != nil && e.Revision() > o.rev && (!put || l.Instance != f.instance) {
		f.lose(stream, "lease taken over")
	}
}

// heartbeat writes the node's record. It reports true when the name was
// taken by another process.
func (f *Fleet) heartbeat() (fatal bool) {
	f.mu.Lock()
	draining := f.draining
	f.mu.Unlock()
	rec := f.record(slices.Sorted(maps.Keys(f.owned)), draining)
	b, err := encodeNode(rec, f.cfg.Previous)
	if err != nil { // a Status that is not JSON must not hide the node
		f.log.Warn("stream status left out of the heartbeat", "error", err)
		rec.Status = nil
		b, _ = encodeNode(rec, f.cfg.Previous)
	}
	key := streamKey(f.cfg.Node)
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Lease/6)
	defer cancel()
	f.ops.Add(1)
	rev, err := f.nodes.Update(ctx, key, b, f.hbRev)
	if err == nil {
		f.hbRev = rev
		return false
	}
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		f.log.Warn("heartbeat failed", "error", err)
		return false
	}
	// The key expired (this node was cut off for a lease) or an update
	// that timed out went through: find out which.
	f.ops.Add(1)
	e, err := f.nodes.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		f.ops.Add(1)
		rev, err = f.nodes.Create(ctx, key, b)
	case err == nil:
		n, derr := decodeNode(e.Value())
		if derr == nil && n.Instance != f.instance {
			f.fail(fmt.Errorf("%w: another process (address %q) took 'node.name' %q in fleet %q; stopping this node's streams",
				ErrDuplicateNode, n.Address, f.cfg.Node, f.cfg.Fleet))
			return true
		}
		f.ops.Add(1)
		rev, err = f.nodes.Update(ctx, key, b, e.Revision())
	}
	if err != nil {
		f.log.Warn("heartbeat failed", "error", err)
		return false
	}
	f.hbRev = rev
	return false
}

// renewers is how many renewals a node has in flight at once.
const renewers = 16

// renew renews every lease held, compare-and-set on its revision, several
// at a time, all within a sixth of a lease.
func (f *Fleet) renew() {
	type renewal struct {
		stream     string
		fence, rev uint64
		start      time.Time
		err        error
	}
	rs := make([]renewal, 0, len(f.owned))
	for _, s := range slices.Sorted(maps.Keys(f.owned)) {
		rs = append(rs, renewal{stream: s, fence: f.owned[s].fence, rev: f.owned[s].rev})
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Lease/6)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, renewers)
	for i := range rs {
		sem <- struct{}{}
		wg.Add(1)
		go func(r *renewal) {
			defer func() { <-sem; wg.Done() }()
			r.start = time.Now()
			r.rev, r.err = f.renewOne(ctx, r.stream, r.fence, r.rev, r.start)
		}(&rs[i])
	}
	wg.Wait()
	failed, lastErr := 0, error(nil)
	for _, r := range rs {
		o := f.owned[r.stream]
		if o == nil {
			continue
		}
		switch {
		case r.err == nil:
			o.rev, o.renewed = r.rev, r.start
		case errors.Is(r.err, jetstream.ErrKeyRevisionMismatch) || errors.Is(r.err, jetstream.ErrKeyNotFound):
			f.lose(r.stream, "lease lost")
		default:
			failed, lastErr = failed+1, r.err
		}
	}
	if failed > 0 && f.ctx.Err() == nil {
		f.log.Warn("lease renewals failed", "failed", failed, "error", lastErr)
	}
	f.giveUp()
}

// renewOne renews one lease. It runs beside others and touches no state.
func (f *Fleet) renewOne(ctx context.Context, stream string, fence, rev uint64, start time.Time) (uint64, error) {
	key := streamKey(stream)
	b, _ := json.Marshal(lease{Version: FormatVersion, Node: f.cfg.Node, Instance: f.instance, Fence: fence, Time: start.UTC()})
	f.ops.Add(1)
	next, err := f.leases.Update(ctx, key, b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound) {
		// An update that timed out may have gone through: if the lease
		// is still this ownership's, carry on from it.
		f.ops.Add(1)
		if e, gerr := f.leases.Get(ctx, key); gerr == nil {
			if l, derr := decodeLease(e.Value()); derr == nil && l.Instance == f.instance &&
				(l.Fence == fence || (l.Fence == 0 && e.Revision() == fence)) {
				f.ops.Add(1)
				next, err = f.leases.Update(ctx, key, b, e.Revision())
			}
		}
	}
	return next, err
}

// giveUp stops every stream whose lease could not be renewed for two
// thirds of a lease, so that it has stopped before the lease can expire
// and another node claim it.
func (f *Fleet) giveUp() {
	var gone []string
	for _, s := range slices.Sorted(maps.Keys(f.owned)) {
		if since := time.Since(f.owned[s].renewed); since >= f.cfg.Lease*2/3 {
			gone = append(gone, s)
			f.lose(s, "")
		}
	}
	if len(gone) > 0 {
		f.log.Warn("cannot renew leases: stopped the streams before their leases expire", "streams", len(gone), "first", gone[0])
	}
}

// reconcile claims and sheds what the placement says. It reports true if
// it stopped early and must run again.
func (f *Fleet) reconcile() (more bool) {
	f.catchUp()
	if f.fatal || !f.nodesSynced || !f.leasesSynced {
		return false // a plan on half a view would claim what others hold
	}
	now := time.Now()
	me := f.cfg.Node
	f.mu.Lock()
	draining := f.draining
	live := make([]nodeView, 0, len(f.view)+1)
	for name, n := range f.view {
		if name != me && now.Sub(n.at) < f.cfg.Lease {
			live = append(live, nodeView{name: name, cap: n.rec.MaxStreams, draining: n.rec.Draining})
		}
	}
	owners := make(map[string]string, len(f.leaseView))
	var strays []string
	for s, l := range f.leaseView {
		if now.Sub(l.at) >= f.cfg.Lease {
			continue // expired; the marker is on its way
		}
		if l.rec.Instance == f.instance && f.owned[s] == nil && l.rev > f.gone[s] {
			strays = append(strays, s)
		}
		o := l.rec.Node
		if o == me {
			o = me + "\x00" + l.rec.Instance // not (or no longer) held by this process
		}
		owners[s] = o
	}
	f.mu.Unlock()
	for _, s := range strays {
		if f.adopt(s) {
			owners[s] = me
		}
	}
	live = append(live, nodeView{name: me, cap: f.cfg.MaxStreams, draining: draining})
	for s := range f.owned {
		owners[s] = me
	}
	p := place(me, f.streams, live, owners)
	f.unplaced = false
	for _, s := range f.streams {
		if _, ok := owners[s]; !ok {
			f.unplaced = true
			break
		}
	}
	for _, s := range p.drop {
		f.release(s)
	}
	for _, s := range p.shed {
		if !f.token(now) {
			return false // the next round, a third of a lease away, goes on
		}
		f.release(s)
	}
	if !f.cfg.Conn.IsConnected() {
		return false // a claim would only time out
	}
	for _, s := range p.claim {
		if time.Since(now) >= f.cfg.Lease/6 {
			return true // let renewals in, then go on
		}
		// Claims take round trips: take in what others claimed meanwhile,
		// so as not to try what is taken.
		f.catchUp()
		if f.fatal {
			return false
		}
		f.mu.Lock()
		_, taken := f.leaseView[s]
		f.mu.Unlock()
		if !taken && !f.releasing[s] {
			f.claim(s)
		}
	}
	return false
}

// token takes one move from the fleet.moves_per_minute bucket.
func (f *Fleet) token(now time.Time) bool {
	perMin := float64(f.cfg.MovesPerMinute)
	f.tokens = min(perMin, f.tokens+now.Sub(f.tokensAt).Minutes()*perMin)
	f.tokensAt = now
	if f.tokens < 1 {
		return false
	}
	f.tokens--
	return true
}

// adopt takes on a lease of this process that it does not know it holds:
// a claim or renewal that timed out here but went through (compare-and-
// set made it exclusive). A fresh one is owned from then on; an old one
// is handed back.
func (f *Fleet) adopt(s string) bool {
	f.mu.Lock()
	l := f.leaseView[s]
	f.mu.Unlock()
	fence := l.rec.Fence
	if fence == 0 {
		fence = l.rev
	}
	if time.Since(l.rec.Time) < f.cfg.Lease/3 {
		f.owned[s] = &ownership{rev: l.rev, fence: fence, renewed: l.rec.Time}
		f.publishOwned()
		f.log.Info("adopted a lease whose write had timed out", "stream", s, "fence", fence)
		f.cfg.Handler.Acquire(s, fence)
		return true
	}
	f.gone[s] = l.rev
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Lease/6)
	defer cancel()
	f.ops.Add(1)
	f.leases.Delete(ctx, streamKey(s), jetstream.LastRevision(l.rev))
	return false
}

func (f *Fleet) claim(s string) {
	start := time.Now()
	b, _ := json.Marshal(lease{Version: FormatVersion, Node: f.cfg.Node, Instance: f.instance, Time: start.UTC()})
	ctx, cancel := context.WithTimeout(f.ctx, f.cfg.Lease/6)
	defer cancel()
	f.ops.Add(1)
	rev, err := f.leases.Create(ctx, streamKey(s), b)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && f.ctx.Err() == nil {
			f.log.Warn("claim failed", "stream", s, "error", err)
		}
		return
	}
	f.owned[s] = &ownership{rev: rev, fence: rev, renewed: start}
	f.publishOwned()
	f.log.Debug("acquired", "stream", s, "fence", rev)
	f.cfg.Handler.Acquire(s, rev)
}

// releasers is how many Handler.Release calls a node has in flight at
// once.
const releasers = 16

// release stops a stream and hands its lease back, in that order, so the
// next owner starts only after this one has stopped. Both happen off the
// renewing goroutine (stop).
func (f *Fleet) release(s string) {
	if o := f.owned[s]; o != nil {
		f.stop(s, o.rev, true)
		f.log.Debug("releasing", "stream", s)
	}
}

// lose stops a stream whose lease is no longer (or soon no longer) ours:
// its camera is hung up first, at once (Handler.Cut), so that it has let
// go before the lease can expire however slow the rest of the stop is.
func (f *Fleet) lose(s, why string) {
	if o := f.owned[s]; o != nil {
		f.cfg.Handler.Cut(s)
		if why != "" {
			f.log.Warn("stopping stream", "stream", s, "reason", why)
		}
		f.stop(s, o.rev, false)
	}
}

// stop gives up the ownership of s at once and calls Handler.Release on a
// goroutine of its own; then, with handBack, deletes the lease at rev so
// that another node claims it without waiting for it to expire. The
// renewals of the other leases go on meanwhile, and s is not claimed here
// again until Release has returned. The lease is no longer renewed, so a
// Release that takes longer than what is left of it lets another node
// claim the stream before this one has stopped: that is said in the log.
func (f *Fleet) stop(s string, rev uint64, handBack bool) {
	delete(f.owned, s)
	f.gone[s] = rev
	f.releasing[s] = true
	f.publishOwned()
	f.stopping.Add(1)
	f.releases.Go(func() {
		defer f.stopping.Add(-1)
		f.releaseSm <- struct{}{}
		start := time.Now()
		f.cfg.Handler.Release(s)
		<-f.releaseSm
		if took := time.Since(start); took >= f.cfg.Lease*2/3 {
			f.log.Warn("stream was slow to stop: its lease may have expired and another node claimed it meanwhile",
				"stream", s, "took", took.Round(time.Millisecond), "lease", f.cfg.Lease)
		}
		if handBack {
			ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Lease/6)
			f.ops.Add(1)
			if err := f.leases.Delete(ctx, streamKey(s), jetstream.LastRevision(rev)); err != nil {
				f.log.Warn("hand lease back", "stream", s, "error", err)
			}
			cancel()
		}
		select {
		case f.released <- s:
		case <-f.done:
		}
	})
}

func (f *Fleet) publishOwned() {
	v := slices.Sorted(maps.Keys(f.owned))
	f.mu.Lock()
	f.ownedView = v
	f.mu.Unlock()
}

func (f *Fleet) fail(err error) {
	f.log.Error("leaving fleet", "error", err)
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
	for _, s := range slices.Sorted(maps.Keys(f.owned)) {
		f.lose(s, "")
	}
}

func (f *Fleet) onDrainRequest(m *nats.Msg) {
	ch := make(chan struct{})
	select {
	case f.drainCh <- ch:
		<-ch
		m.Respond(nil)
	case <-f.done:
		m.Respond([]byte(ErrClosed.Error()))
	}
}

// SetStreams gives the fleet the registry's stream names: the streams the
// fleet places. Streams this node owns that are no longer named are
// released.
func (f *Fleet) SetStreams(names []string) {
	names = slices.Clone(names)
	select {
	case f.streamsCh <- names:
	case <-f.done:
	}
}

// Drain makes this node hand its streams over (at most
// fleet.moves_per_minute a minute) and take no new ones, and waits until
// it owns none and has stopped them all, or ctx ends. A node stays draining until it restarts.
func (f *Fleet) Drain(ctx context.Context) error {
	ch := make(chan struct{})
	select {
	case f.drainCh <- ch:
	case <-f.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-ch
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for len(f.Owned()) > 0 || f.stopping.Load() > 0 {
		select {
		case <-t.C:
		case <-f.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("drain node %q: %d streams left: %w", f.cfg.Node, len(f.Owned()), ctx.Err())
		}
	}
	return nil
}

// DrainNode starts draining the named node, this one or another live one,
// and returns once the node has begun; ListNodes shows the progress.
func (f *Fleet) DrainNode(ctx context.Context, name string) error {
	if name == f.cfg.Node {
		ch := make(chan struct{})
		select {
		case f.drainCh <- ch:
			<-ch
			return nil
		case <-f.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	_, ok := f.view[name]
	f.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no live node %q in fleet %q", ErrUnknownNode, name, f.cfg.Fleet)
	}
	m, err := f.cfg.Conn.RequestWithContext(ctx, drainSubject(f.cfg.Fleet, name), nil)
	if err != nil {
		return fmt.Errorf("drain node %q: %w", name, err)
	}
	if len(m.Data) > 0 {
		return fmt.Errorf("drain node %q: %s", name, m.Data)
	}
	return nil
}

// Nodes returns the live nodes' latest heartbeats, by name.
func (f *Fleet) Nodes() []Node {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Node
	for _, n := range f.view {
		if now.Sub(n.at) < f.cfg.Lease {
			out = append(out, n.rec)
		}
	}
	slices.SortFunc(out, func(a, b Node) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Owner returns the node that holds stream's lease, as this node last saw
// it (at most a watch delivery old).
func (f *Fleet) Owner(stream string) (node string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leaseView[stream]
	if !ok || time.Since(l.at) >= f.cfg.Lease {
		return "", false
	}
	return l.rec.Node, true
}

// StreamStatus returns what the owner of stream said of it in its last
// heartbeat (Config.Status) and when that was written; ok is false when no
// live node reports the stream.
func (f *Fleet) StreamStatus(stream string) (node string, status json.RawMessage, at time.Time, ok bool) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	l, leased := f.leaseView[stream]
	if !leased {
		return "", nil, time.Time{}, false
	}
	n, live := f.view[l.rec.Node]
	if !live || now.Sub(n.at) >= f.cfg.Lease {
		return l.rec.Node, nil, time.Time{}, false
	}
	st, ok := n.rec.Status[stream]
	return l.rec.Node, st, n.rec.Time, ok
}

// Owned returns the streams this node owns, sorted.
func (f *Fleet) Owned() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ownedView)
}

// Name is this node's name.
func (f *Fleet) Name() string { return f.cfg.Node }

// Draining reports whether this node is draining.
func (f *Fleet) Draining() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.draining
}

// KVOps is the number of KV operations (reads and writes, not watch
// deliveries) this node has made.
func (f *Fleet) KVOps() uint64 { return f.ops.Load() }

// Err is the error that ended the membership early, if any.
func (f *Fleet) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// CheckFence reports whether fence is that of stream's current lease: nil,
// ErrStaleFence (another ownership since), or the read's error. A writer
// that must not act on behalf of a replaced owner checks before it writes.
func (f *Fleet) CheckFence(ctx context.Context, stream string, fence uint64) error {
	f.ops.Add(1)
	e, err := f.leases.Get(ctx, streamKey(stream))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w: stream %q has no owner", ErrStaleFence, stream)
	}
	if err != nil {
		return fmt.Errorf("check fence of stream %q: %w", stream, err)
	}
	l, err := decodeLease(e.Value())
	if err != nil {
		return err
	}
	current := l.Fence
	if current == 0 {
		current = e.Revision()
	}
	if current != fence {
		return fmt.Errorf("%w: stream %q is owned by node %q with fence %d, not %d", ErrStaleFence, stream, l.Node, current, fence)
	}
	return nil
}

// Close leaves the fleet: it stops every stream this node owns, hands the
// leases back so that other nodes claim them at once, and removes the
// heartbeat. It does not close the NATS connection.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		f.cancel()
		<-f.done
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Lease/3)
		defer cancel()
		for _, s := range slices.Sorted(maps.Keys(f.owned)) {
			f.release(s)
		}
		f.releases.Wait()
		f.ops.Add(1)
		if err := f.nodes.Delete(ctx, streamKey(f.cfg.Node), jetstream.LastRevision(f.hbRev)); err != nil && f.Err() == nil {
			f.log.Debug("remove heartbeat", "error", err)
		}
		f.log.Info("left fleet")
	})
	return f.Err()
}

// FleetName is the fleet's name (fleet.name).
func (f *Fleet) FleetName() string { return f.cfg.Fleet }
