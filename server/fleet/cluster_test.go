package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// freePort is a loopback port nobody listens on (for cluster routes,
// which every server must know before the first starts).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsCluster starts three clustered NATS servers with JetStream.
func natsCluster(t *testing.T) []*server.Server {
	t.Helper()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var servers []*server.Server
	for i, p := range ports {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "actiond-test", Host: "127.0.0.1", Port: p},
			Routes:  routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers = append(servers, s)
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatal("nats server not ready")
		}
	}
	// JetStream answers once the cluster has a meta leader.
	nc, err := nats.Connect(servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	eventually(t, "a JetStream meta leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	// R3 placement needs every peer known to the meta leader, which comes
	// later than the leader on a loaded machine: place a probe until it fits.
	eventually(t, "three JetStream peers for R3", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3}); err != nil {
			return false
		}
		return js.DeleteStream(ctx, "PROBE") == nil
	})
	return servers
}

// A fleet of three on a three-server NATS cluster with R3 buckets: one
// NATS server dies, the fleet carries on (every stream playing, never two
// owners).
func TestFleetOnNATSClusterLosingAServer(t *testing.T) {
	servers := natsCluster(t)
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
