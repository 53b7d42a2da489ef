package fleet

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// slowHandler plays like the ledger's, but the Release of stream slow
// waits until gate is closed, as a camera slow to hang up does. It logs
// the calls in the order they happen.
type slowHandler struct {
	Handler
	slow string
	gate chan struct{}

	mu    sync.Mutex
	calls []string
}

func (h *slowHandler) note(call string) {
	h.mu.Lock()
	h.calls = append(h.calls, call)
	h.mu.Unlock()
}

func (h *slowHandler) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func (h *slowHandler) Acquire(stream string, fence uint64) {
	h.note("acquire " + stream)
	h.Handler.Acquire(stream, fence)
}

func (h *slowHandler) Cut(stream string) {
	h.note("cut " + stream)
	h.Handler.Cut(stream)
}

func (h *slowHandler) Release(stream string) {
	h.note("release " + stream)
	if stream == h.slow {
		<-h.gate
	}
	h.Handler.Release(stream)
	h.note("released " + stream)
}

// A Release that does not return (a camera slow to close) holds up
// neither the renewal of the node's other leases nor its heartbeat; the
// lease of the stream being released is handed back only once Release has
// returned, and the node does not claim that stream again before then.
func TestFleetRenewsWhileAReleaseIsBlocked(t *testing.T) {
	l := newLedger()
	h := &slowHandler{Handler: l.handler("n1"), slow: "slow", gate: make(chan struct{})}
	streams := []string{"keep", "slow"}
	ms := fleetOf(t, l, 1, streams, func(c *Config) { c.Handler = h })
	eventually(t, "both placed", allPlaced(l, streams))

	js, err := jetstream.New(ms[0].nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	leases, err := js.KeyValue(ctx, LeasesBucket(name))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := js.KeyValue(ctx, NodesBucket(name))
	if err != nil {
		t.Fatal(err)
	}
	keepW, err := leases.Watch(ctx, "keep", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch(keepW)
	hbW, err := nodes.Watch(ctx, "n1", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer stopWatch(hbW)

	// slow is no longer the fleet's: its Release begins, and blocks.
	ms[0].SetStreams([]string{"keep"})
	eventually(t, "the release of slow to begin", func() bool { return slices.Contains(h.log(), "release slow") })
	// Its last renewal is done: from here on its lease stays as it is
	// until it expires.
	var slowRev uint64 // 0: expired already
	if e, err := leases.Get(ctx, "slow"); err == nil {
		slowRev = e.Revision()
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatal(err)
	}
	// And it is the fleet's again: the node must wait for the Release.
	ms[0].SetStreams(streams)
	renewals, heartbeats := 0, 0
	for renewals < 4 || heartbeats < 4 {
		select {
		case e := <-keepW.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				renewals++
			}
		case e := <-hbW.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				heartbeats++
			}
		case <-ctx.Done():
			t.Fatalf("while a Release was blocked: %d renewals of another lease, %d heartbeats, want 4 each", renewals, heartbeats)
		}
	}
	if got := ms[0].Owned(); !slices.Equal(got, []string{"keep"}) {
		t.Errorf("while slow's Release is blocked the node owns %v, want [keep]", got)
	}
	// Four renewals are more than a lease: slow's lease, no longer
	// renewed, has expired; it was not handed back (deleted at its
	// revision) before Release returned, nor claimed again.
	if e, err := leases.Get(ctx, "slow"); err == nil && e.Revision() != slowRev {
		t.Errorf("slow's lease changed (revision %d to %d) while its Release was blocked", slowRev, e.Revision())
	}
	if got := h.log(); got[len(got)-1] != "release slow" {
		t.Errorf("calls while slow's Release was blocked: %v", got)
	}

	close(h.gate)
	eventually(t, "slow acquired again", func() bool {
		return len(slices.DeleteFunc(h.log(), func(c string) bool { return c != "acquire slow" })) == 2
	})
	want := []string{"release slow", "released slow", "acquire slow"}
	got := h.log()
	if i := slices.Index(got, "release slow"); i < 0 || !slices.Equal(got[i:], want) {
		t.Errorf("calls %v, want them to end with %v", got, want)
	}
	l.check(t)
}

// A drain hands a stream over gracefully (Release alone: the camera is
// hung up as usual, then the lease handed back); a node that cannot
// renew (it lost NATS) cuts the camera first (Cut, then Release).
func TestFleetCutsOnlyWhatItLoses(t *testing.T) {
	l := newLedger()
	hs := map[string]*slowHandler{}
	var mu sync.Mutex
	handlerOf := func(node string) *slowHandler {
		mu.Lock()
		defer mu.Unlock()
		return hs[node]
	}
	ms := fleetOf(t, l, 2, []string{"a"}, func(c *Config) {
		h := &slowHandler{Handler: c.Handler}
		mu.Lock()
		hs[c.Node] = h
		mu.Unlock()
		c.Handler = h
	})
	eventually(t, "a placed", allPlaced(l, []string{"a"}))
	from := l.ownerOf("a")
	to := map[string]string{"n1": "n2", "n2": "n1"}[from]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ms[0].DrainNode(ctx, from); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a moved by the drain", func() bool {
		return l.ownerOf("a") == to && slices.Contains(handlerOf(from).log(), "released a")
	})
	if got, want := handlerOf(from).log(), []string{"acquire a", "release a", "released a"}; !slices.Equal(got, want) {
		t.Errorf("calls on the drained node %s: %v, want %v", from, got, want)
	}
	// The node that plays a now loses NATS.
	ms[slices.IndexFunc(ms, func(m *member) bool { return m.Name() == to })].nc.Close()
	eventually(t, "a stopped on "+to, func() bool { return slices.Contains(handlerOf(to).log(), "released a") })
	if got, want := handlerOf(to).log(), []string{"acquire a", "cut a", "release a", "released a"}; !slices.Equal(got, want) {
		t.Errorf("calls on %s, which lost NATS: %v, want %v", to, got, want)
	}
	l.check(t)
}
