package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/natstest"
	"github.com/nats-io/nats.go"
)

// A fleet of three on a three-server NATS cluster with R3 buckets: one
// NATS server dies, the fleet carries on (every stream playing, never two
// owners).
func TestFleetOnNATSClusterLosingAServer(t *testing.T) {
	servers := natstest.Cluster(t, "actiond-test")
	l := newLedger()
	streams := streamsN(9)
	var ms []*member
	for i := range 3 {
		// Each node prefers its own server and fails over to the others.
		var urls []string
		for j := range 3 {
			urls = append(urls, servers[(i+j)%3].ClientURL())
		}
		nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		node := fmt.Sprintf("n%d", i+1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		f, err := Start(ctx, Config{
			Conn: nc, Fleet: "cluster", Node: node, Lease: 3 * time.Second, Replicas: 3,
			Handler: l.handler(node), Logger: slog.New(slog.DiscardHandler),
		})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close(); nc.Close() })
		f.SetStreams(streams)
		ms = append(ms, &member{Fleet: f, nc: nc})
	}
	eventually(t, "all nine placed, at most ceil(9/3)+1 per node", func() bool {
		by, orphans := l.byNode(streams)
		return len(orphans) == 0 && len(by["n1"]) <= 4 && len(by["n2"]) <= 4 && len(by["n3"]) <= 4
	})
	servers[1].Shutdown()
	// n2's connection moves to another server; leaders move off s2.
	eventually(t, "n2 reconnected", func() bool {
		return ms[1].nc.IsConnected() && ms[1].nc.ConnectedUrl() != servers[1].ClientURL()
	})
	time.Sleep(2 * 3 * time.Second) // two leases: any lease lost to the election has expired
	eventually(t, "all nine playing again", allPlaced(l, streams))
	if nodes := ms[0].Nodes(); len(nodes) != 3 {
		t.Errorf("n1 sees %d nodes after the NATS server died", len(nodes))
	}
	l.check(t)
}
