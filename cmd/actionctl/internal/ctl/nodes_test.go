package ctl

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server"
	"github.com/actiond/actiond/server/fleet"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
)

// owners is a stand-in stream manager: it records what each node plays.
type owners struct {
	mu sync.Mutex
	by map[string]string
}

type nodeHandler struct {
	o    *owners
	node string
}

func (h nodeHandler) Acquire(stream string, _ uint64) {
	h.o.mu.Lock()
	h.o.by[stream] = h.node
	h.o.mu.Unlock()
}

func (h nodeHandler) Release(stream string) {
	h.o.mu.Lock()
	delete(h.o.by, stream)
	h.o.mu.Unlock()
}

// Cut hangs up at once: a stand-in has no camera; Release follows.
func (h nodeHandler) Cut(string) {}

func (o *owners) count(node string) (n, total int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, v := range o.by {
		if v == node {
			n++
		}
	}
	return n, len(o.by)
}

// A fleet of two on a real embedded NATS JetStream, FleetService on real
// gRPC over loopback: nodes ls lists both, nodes drain --wait moves n2's
// streams to n1.
func TestNodesListAndDrain(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	o := &owners{by: map[string]string{}}
	streams := []string{"cam-1", "cam-2", "cam-3", "cam-4", "cam-5", "cam-6"}
	var members []*fleet.Fleet
	for _, name := range []string{"n1", "n2"} {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		f, err := fleet.Start(t.Context(), fleet.Config{
			Conn: nc, Fleet: "ctl", Node: name, Address: name + ":50051", ServerVersion: "test",
			Lease: 2 * time.Second, Handler: nodeHandler{o: o, node: name}, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close(); nc.Close() })
		f.SetStreams(streams)
		members = append(members, f)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n2, total := o.count("n2")
		if total == len(streams) && n2 > 0 && len(members[0].Nodes()) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("placement: %v", o.by)
		}
		time.Sleep(20 * time.Millisecond)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	actiondv1.RegisterFleetServiceServer(gs, server.NewFleetService(members[0], nil))
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	srv := "--server=" + lis.Addr().String()

	// Heartbeats carry the owned streams a third of a lease later.
	var stdout string
	for {
		stdout, _, _ = runCtl(t, nil, srv, "nodes", "ls")
		if !strings.Contains(stdout, "  0  ") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	n1, _ := o.count("n1")
	n2, _ := o.count("n2")
	for _, want := range []string{
		"NAME  ADDRESS",
		fmt.Sprintf("n1    n1:50051  test     %d", n1),
		fmt.Sprintf("n2    n2:50051  test     %d", n2),
		"active",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("nodes ls: no %q in\n%s", want, stdout)
		}
	}
	stdout, _, code := runCtl(t, nil, srv, "nodes", "ls", "--json")
	if code != exitOK || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"name":"n2"`) || !strings.Contains(stdout, `"address":"n2:50051"`) {
		t.Errorf("nodes ls --json: exit %d\n%s", code, stdout)
	}

	stdout, stderr, code := runCtl(t, nil, srv, "nodes", "drain", "n2", "--wait")
	if code != exitOK || !strings.Contains(stdout, "draining n2:") || !strings.Contains(stdout, "drained n2") {
		t.Fatalf("nodes drain --wait: exit %d\n%s%s", code, stdout, stderr)
	}
	if n2, total := o.count("n2"); n2 != 0 || total != len(streams) {
		// Another node claims each stream just after n2 let it go.
		time.Sleep(time.Second)
		if n2, total = o.count("n2"); n2 != 0 || total != len(streams) {
			t.Errorf("after drain: n2 plays %d, %d of %d playing", n2, total, len(streams))
		}
	}
	stdout, _, _ = runCtl(t, nil, srv, "nodes", "ls")
	if !strings.Contains(stdout, "draining") {
		t.Errorf("nodes ls after drain:\n%s", stdout)
	}
	t.Logf("nodes ls after the drain:\n%s", stdout)

	_, stderr, code = runCtl(t, nil, srv, "nodes", "drain", "nope")
	if code != exitError || !strings.Contains(stderr, "NotFound") || !strings.Contains(stderr, `no live node "nope"`) {
		t.Errorf("drain of an unknown node: exit %d, %s", code, stderr)
	}
	// Outside a fleet: a node lists itself and cannot drain.
	gs2 := grpc.NewServer()
	actiondv1.RegisterFleetServiceServer(gs2, server.NewFleetService(nil, func() *actiondv1.Node {
		return &actiondv1.Node{Name: "solo", Address: "127.0.0.1:50051", StreamsOwned: []string{"demo"}}
	}))
	lis2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs2.Serve(lis2)
	t.Cleanup(gs2.Stop)
	stdout, _, _ = runCtl(t, nil, "--server="+lis2.Addr().String(), "nodes", "ls")
	if !strings.Contains(stdout, "solo") {
		t.Errorf("single node ls:\n%s", stdout)
	}
	_, stderr, code = runCtl(t, nil, "--server="+lis2.Addr().String(), "nodes", "drain", "solo")
	if code != exitError || !strings.Contains(stderr, "FailedPrecondition") {
		t.Errorf("single node drain: exit %d, %s", code, stderr)
	}
}
