package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

// The tests share one embedded NATS server with JetStream (a real one, on
// 127.0.0.1); each test is its own fleet, so its buckets are its own.
var natsURL string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "actiond-fleet-test-")
	if err != nil {
		panic(err)
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		panic(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		panic("nats server not ready")
	}
	natsURL = s.ClientURL()
	code := m.Run()
	s.Shutdown()
	s.WaitForShutdown()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// Failover tests need a lease long enough that a loaded test machine still
// renews in time (renewal every lease/3, give-up at 2/3).
const testLease = 2 * time.Second

// ledger is the truth the tests check: which node plays which stream,
// kept by the handlers. A second owner is recorded the moment it acquires.
type ledger struct {
	mu       sync.Mutex
	owner    map[string]string
	fences   map[string]uint64
	doubles  []string
	acquires int
}

func newLedger() *ledger {
	return &ledger{owner: map[string]string{}, fences: map[string]uint64{}}
}

func (l *ledger) handler(node string) Handler { return &nodeHandler{l: l, node: node} }

type nodeHandler struct {
	l    *ledger
	node string
}

func (h *nodeHandler) Acquire(stream string, fence uint64) {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if o, ok := h.l.owner[stream]; ok {
		h.l.doubles = append(h.l.doubles, fmt.Sprintf("%s: %s acquired while %s plays it", stream, h.node, o))
	}
	if fence <= h.l.fences[stream] {
		h.l.doubles = append(h.l.doubles, fmt.Sprintf("%s: fence %d after %d", stream, fence, h.l.fences[stream]))
	}
	h.l.owner[stream] = h.node
	h.l.fences[stream] = fence
	h.l.acquires++
}

func (h *nodeHandler) Release(stream string) {
	h.l.mu.Lock()
	defer h.l.mu.Unlock()
	if h.l.owner[stream] != h.node {
		h.l.doubles = append(h.l.doubles, fmt.Sprintf("%s: %s released it but %q plays it", stream, h.node, h.l.owner[stream]))
		return
	}
	delete(h.l.owner, stream)
}

// Cut hangs up at once; the ledger counts the stream as played until
// Release, which follows.
func (h *nodeHandler) Cut(string) {}

// byNode returns stream counts per node and the streams nobody plays.
func (l *ledger) byNode(streams []string) (map[string][]string, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]string{}
	var orphans []string
	for _, s := range streams {
		if o, ok := l.owner[s]; ok {
			out[o] = append(out[o], s)
		} else {
			orphans = append(orphans, s)
		}
	}
	return out, orphans
}

func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range l.doubles {
		t.Error(d)
	}
}

type member struct {
	*Fleet
	nc *nats.Conn
}

func join(t *testing.T, cfg Config) (*member, error) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Name(cfg.Node))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Conn = nc
	if cfg.Lease == 0 {
		cfg.Lease = testLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := Start(ctx, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	m := &member{Fleet: f, nc: nc}
	t.Cleanup(func() {
		f.Close()
		nc.Close()
	})
	return m, nil
}

// fleetOf starts n nodes named n1..nN of fleet t.Name() with the streams.
func fleetOf(t *testing.T, l *ledger, n int, streams []string, tune func(*Config)) []*member {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	var ms []*member
	for i := 1; i <= n; i++ {
		node := fmt.Sprintf("n%d", i)
		cfg := Config{Fleet: name, Node: node, Address: "127.0.0.1:" + node, Handler: l.handler(node),
			Status: func(streams []string) map[string]json.RawMessage {
				out := map[string]json.RawMessage{}
				for _, s := range streams {
					out[s] = json.RawMessage(`{"state":"PLAYING","on":"` + node + `"}`)
				}
				return out
			}}
		if tune != nil {
			tune(&cfg)
		}
		m, err := join(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m.SetStreams(streams)
		ms = append(ms, m)
	}
	return ms
}

// eventually polls cond until it holds; the deadline only catches hangs.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func allPlaced(l *ledger, streams []string) func() bool {
	return func() bool {
		_, orphans := l.byNode(streams)
		return len(orphans) == 0
	}
}

func TestFleetPlacesEachStreamOnce(t *testing.T) {
	l := newLedger()
	streams := streamsN(30)
	ms := fleetOf(t, l, 3, streams, nil)
	// n1 started first and took everything; the fair share moves the
	// excess to n2 and n3.
	eventually(t, "all 30 streams placed, at most ceil(30/3)+1 per node", func() bool {
		by, orphans := l.byNode(streams)
		return len(orphans) == 0 && len(by["n1"]) <= 11 && len(by["n2"]) <= 11 && len(by["n3"]) <= 11
	})
	by, _ := l.byNode(streams)
	for _, m := range ms {
		if got := m.Owned(); !slices.Equal(got, by[m.Name()]) {
			t.Errorf("%s says it owns %v, plays %v", m.Name(), got, by[m.Name()])
		}
		if len(by[m.Name()]) == 0 {
			t.Errorf("%s owns nothing: %v", m.Name(), by)
		}
	}
	// Every node sees every owner and every node.
	eventually(t, "every node sees the owners", func() bool {
		for _, m := range ms {
			if len(m.Nodes()) != 3 {
				return false
			}
			for _, s := range streams {
				if o, _ := m.Owner(s); o != l.ownerOf(s) {
					return false
				}
			}
		}
		return true
	})
	// Any node reads a remote stream's status from its owner's heartbeat.
	eventually(t, "n1 reads every stream's status", func() bool {
		for _, s := range streams {
			node, st, at, ok := ms[0].StreamStatus(s)
			if !ok || node != l.ownerOf(s) || string(st) != `{"state":"PLAYING","on":"`+node+`"}` || time.Since(at) > time.Minute {
				return false
			}
		}
		return true
	})
	n := ms[0].Nodes()[1]
	if n.Name != "n2" || n.Address != "127.0.0.1:n2" || n.Version != FormatVersion || time.Since(n.Time) > time.Minute {
		t.Errorf("heartbeat of n2: %+v", n)
	}
	// A stream removed from the registry stops; a new one starts.
	for _, m := range ms {
		m.SetStreams(append(slices.Clone(streams[1:]), "late"))
	}
	eventually(t, "cam-000 stopped and late placed", func() bool {
		return l.ownerOf("cam-000") == "" && l.ownerOf("late") != ""
	})
	l.check(t)
}

func (l *ledger) ownerOf(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owner[s]
}

func TestFleetCap(t *testing.T) {
	l := newLedger()
	streams := streamsN(12)
	ms := fleetOf(t, l, 3, streams, func(c *Config) { c.MaxStreams = 4 })
	eventually(t, "all 12 streams placed", allPlaced(l, streams))
	by, _ := l.byNode(streams)
	for _, m := range ms {
		if len(by[m.Name()]) != 4 {
			t.Errorf("%s plays %d streams, cap 4: %v", m.Name(), len(by[m.Name()]), by)
		}
	}
	// A 13th stream finds no room.
	more := append(slices.Clone(streams), "extra")
	for _, m := range ms {
		m.SetStreams(more)
	}
	time.Sleep(testLease / 2)
	if o := l.ownerOf("extra"); o != "" {
		t.Errorf("extra placed on %s beyond every cap", o)
	}
	l.check(t)
}

func TestFleetFailover(t *testing.T) {
	l := newLedger()
	streams := streamsN(15)
	ms := fleetOf(t, l, 3, streams, nil)
	eventually(t, "all placed", allPlaced(l, streams))
	by, _ := l.byNode(streams)
	dead := by["n2"]
	if len(dead) == 0 {
		t.Fatalf("n2 owns nothing: %v", by)
	}
	// n2 loses NATS: it must stop its streams before its leases expire,
	// and n1 and n3 take them over.
	ms[1].nc.Close()
	eventually(t, "n2's streams moved to n1 and n3", func() bool {
		by, orphans := l.byNode(streams)
		return len(orphans) == 0 && len(by["n2"]) == 0
	})
	if got := ms[1].Owned(); len(got) != 0 {
		t.Errorf("n2 without NATS still owns %v", got)
	}
	eventually(t, "n2 gone from the heartbeats", func() bool {
		return len(ms[0].Nodes()) == 2
	})
	l.check(t)
}

func TestFleetDrain(t *testing.T) {
	l := newLedger()
	streams := streamsN(15)
	ms := fleetOf(t, l, 3, streams, nil)
	eventually(t, "all placed", allPlaced(l, streams))
	// Drain n3 through n1, as `actionctl nodes drain n3` on n1 would.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ms[0].DrainNode(ctx, "n3"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n3 drained", func() bool {
		by, orphans := l.byNode(streams)
		return len(orphans) == 0 && len(by["n3"]) == 0
	})
	eventually(t, "n1 sees n3 draining with no streams", func() bool {
		for _, n := range ms[0].Nodes() {
			if n.Name == "n3" {
				return n.Draining && len(n.Streams) == 0
			}
		}
		return false
	})
	// A drained node takes no new stream.
	more := append(slices.Clone(streams), "new-1", "new-2", "new-3", "new-4")
	for _, m := range ms {
		m.SetStreams(more)
	}
	eventually(t, "new streams placed", allPlaced(l, more))
	if got := ms[2].Owned(); len(got) != 0 {
		t.Errorf("drained n3 took %v", got)
	}
	// The local form waits until the node owns nothing.
	if err := ms[1].Drain(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "n1 plays everything", func() bool {
		by, _ := l.byNode(more)
		return len(by["n1"]) == len(more)
	})
	if err := ms[0].DrainNode(ctx, "nope"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("drain of an unknown node: %v", err)
	}
	l.check(t)
}

func TestFleetDrainMovesPerMinute(t *testing.T) {
	l := newLedger()
	streams := streamsN(8)
	ms := fleetOf(t, l, 1, streams, func(c *Config) { c.MovesPerMinute = 3 })
	eventually(t, "all placed", allPlaced(l, streams))
	ms2 := fleetOf2(t, l, "n2", streams)
	if err := ms[0].DrainNode(context.Background(), "n1"); err != nil {
		t.Fatal(err)
	}
	// Three moves now, the next one in 20 s: after a round, five stay.
	time.Sleep(testLease)
	by, _ := l.byNode(streams)
	if len(by["n1"]) != 5 || len(by["n2"]) != 3 {
		t.Errorf("after draining at 3 moves a minute: %v", by)
	}
	_ = ms2
	l.check(t)
}

func fleetOf2(t *testing.T, l *ledger, node string, streams []string) *member {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	m, err := join(t, Config{Fleet: name, Node: node, Handler: l.handler(node)})
	if err != nil {
		t.Fatal(err)
	}
	m.SetStreams(streams)
	return m
}

func TestFleetDuplicateNodeName(t *testing.T) {
	l := newLedger()
	fleetOf(t, l, 1, nil, nil)
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	_, err := join(t, Config{Fleet: name, Node: "n1", Handler: l.handler("n1")})
	if !errors.Is(err, ErrDuplicateNode) || !strings.Contains(err.Error(), `'node.name' "n1" is used by a live node`) {
		t.Fatalf("second n1: %v", err)
	}
	t.Log(err)
	// Another lease on the same fleet is refused too.
	_, err = join(t, Config{Fleet: name, Node: "n2", Lease: 3 * time.Second, Handler: l.handler("n2")})
	if !errors.Is(err, ErrLeaseMismatch) {
		t.Fatalf("other lease: %v", err)
	}
	t.Log(err)
}

func TestFleetRestartUnderSameName(t *testing.T) {
	// A node that died (no goodbye) comes back under its name once its
	// heartbeat has expired: the start waits for that instead of refusing.
	l := newLedger()
	ms := fleetOf(t, l, 1, streamsN(2), nil)
	eventually(t, "placed", allPlaced(l, streamsN(2)))
	ms[0].nc.Close()
	eventually(t, "stopped", func() bool { _, o := l.byNode(streamsN(2)); return len(o) == 2 })
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	m, err := join(t, Config{Fleet: name, Node: "n1", Handler: l.handler("n1")})
	if err != nil {
		t.Fatal(err)
	}
	m.SetStreams(streamsN(2))
	eventually(t, "placed again", allPlaced(l, streamsN(2)))
	l.check(t)
}

func TestFleetStaleFence(t *testing.T) {
	l := newLedger()
	ms := fleetOf(t, l, 1, []string{"dock-3"}, nil)
	eventually(t, "placed", allPlaced(l, []string{"dock-3"}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l.mu.Lock()
	old := l.fences["dock-3"]
	l.mu.Unlock()
	if err := ms[0].CheckFence(ctx, "dock-3", old); err != nil {
		t.Fatalf("current fence refused: %v", err)
	}
	// Renewals keep the fence.
	time.Sleep(testLease / 2)
	if err := ms[0].CheckFence(ctx, "dock-3", old); err != nil {
		t.Fatalf("current fence refused after renewals: %v", err)
	}
	n2 := fleetOf2(t, l, "n2", []string{"dock-3"})
	ms[0].nc.Close()
	eventually(t, "n2 owns dock-3", func() bool { return l.ownerOf("dock-3") == "n2" })
	l.mu.Lock()
	current := l.fences["dock-3"]
	l.mu.Unlock()
	if current <= old {
		t.Fatalf("new fence %d not above old %d", current, old)
	}
	if err := n2.CheckFence(ctx, "dock-3", old); !errors.Is(err, ErrStaleFence) {
		t.Errorf("old owner's fence %d: %v", old, err)
	}
	if err := n2.CheckFence(ctx, "dock-3", current); err != nil {
		t.Errorf("new owner's fence: %v", err)
	}
	// A reader of the log drops the old owner's late events.
	var fences Fences
	if !fences.Admit("dock-3", old) || !fences.Admit("dock-3", current) {
		t.Fatal("in-order fences refused")
	}
	if fences.Admit("dock-3", old) {
		t.Error("a late event of the old owner was admitted")
	}
	l.check(t)
}
