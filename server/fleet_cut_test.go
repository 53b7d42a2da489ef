package server

import (
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetStream connects a client of the test's own to n; cleanup closes it.
func (n *natsServer) jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect("nats://" + n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// freezeProxy forwards TCP connections to a NATS server. Frozen, it holds
// up every byte both ways without closing anything, as a network
// partition, or a node starved of CPU, does to a node's NATS traffic.
type freezeProxy struct {
	ln   net.Listener
	to   string
	gate sync.RWMutex // held for writing while frozen
	wg   sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	frozen bool
}

func newFreezeProxy(t *testing.T, to string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, to: to}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.to)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate.RLock()
			_, werr := dst.Write(buf[:n])
			p.gate.RUnlock()
			if werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.gate.Lock()
		p.frozen = true
	}
}

func (p *freezeProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.gate.Unlock()
		p.frozen = false
	}
}

func (p *freezeProxy) close() {
	p.thaw()
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// A node that cannot renew its leases (its NATS traffic held up) hangs up
// its camera before the lease can expire, even when the rest of the
// stream's stop is stuck (here Release waits until the test lets it go):
// the camera's session at the simulator ends before the lease expires
// and before another node claims the stream, which then plays there. A
// camera never has two sessions (fleetCams samples them).
func TestFleetLostLeaseCutsTheCameraFirst(t *testing.T) {
	ns := startNATS(t, t.TempDir(), "")
	sim, specs := fleetCams(t, 1)
	ctx := ctxT(t, 180*time.Second)
	proxy := newFreezeProxy(t, ns.addr)
	gate := make(chan struct{})
	node := func(name, addr string, hook func(string)) *testServer {
		return fleetServerWith(t, addr, name, specs, 6*time.Second, func(ts *testServer) { ts.releaseHook = hook })
	}
	playsOn := func(node string) func(fleetView) bool {
		return func(v fleetView) bool {
			return v.owner["cam0"] == node && v.state["cam0"] == actiondv1.StreamState_STREAM_STATE_PLAYING
		}
	}
	n1 := node("n1", proxy.addr(), func(string) { <-gate })
	waitView(t, ctx, n1, "cam0 plays on n1", playsOn("n1"))
	n2 := node("n2", ns.addr, nil)
	waitView(t, ctx, n2, "n2 sees cam0 playing on n1", playsOn("n1"))
	// Registered after the servers, so run before they close.
	unblock := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(unblock)
	t.Cleanup(proxy.thaw)
	if r := sim.Stats("cam0").Readers; r != 1 {
		t.Fatalf("cam0 has %d sessions before n1 is cut off, want 1", r)
	}

	leases, err := ns.jetStream(t).KeyValue(ctx, fleet.LeasesBucket("actiond"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := leases.Watch(ctx, "cam0", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	// n1's renewals now fail; its Release of cam0 will not return.
	proxy.freeze()
	var events []string
	closed := false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for claimed := false; !claimed; {
		select {
		case <-ctx.Done():
			t.Fatalf("cam0 not claimed by another node: events %v", events)
		case <-tick.C:
			if !closed && sim.Stats("cam0").Readers == 0 {
				closed = true
				events = append(events, "session closed")
			}
		case e := <-w.Updates():
			switch {
			case e == nil:
			case e.Operation() != jetstream.KeyValuePut:
				events = append(events, "lease expired")
			default:
				var l struct {
					Node string `json:"node"`
				}
				if err := json.Unmarshal(e.Value(), &l); err != nil {
					t.Fatal(err)
				}
				if l.Node != "n1" {
					events = append(events, "claimed by "+l.Node)
					claimed = true
				}
			}
		}
	}
	if len(events) < 2 || events[0] != "session closed" {
		t.Errorf("events at the simulator and the lease, in order: %v; want the session closed first", events)
	}

	// Once n1's stop may finish and its NATS is back, cam0 plays on n2.
	unblock()
	proxy.thaw()
	waitView(t, ctx, n2, "cam0 plays on n2", playsOn("n2"))
	waitView(t, ctx, n1, "n1 sees cam0 playing on n2", playsOn("n2"))
}
