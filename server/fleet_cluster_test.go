package server

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATSCluster starts three clustered NATS servers with JetStream in
// the test process and waits until an R3 stream can be placed.
func startNATSCluster(t *testing.T) []*natsserver.Server {
	t.Helper()
	var ports []int
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var servers []*natsserver.Server
	for i, p := range ports {
		s, err := natsserver.NewServer(&natsserver.Options{
			ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "actiond-fleet-test", Host: "127.0.0.1", Port: p},
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
	nc, err := nats.Connect(servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3})
		if err == nil {
			err = js.DeleteStream(ctx, "PROBE")
		}
		cancel()
		if err == nil {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatalf("no R3 stream placed within 60s: %v", err)
		}
	}
}

// Two fleet nodes on a three-server NATS cluster with R3 (nats.replicas
// 3): one NATS server is killed, and the fleet carries on: both cameras
// keep playing, once each, their events logged.
func TestFleetOnNATSClusterLosesOneServer(t *testing.T) {
	cluster := startNATSCluster(t)
	var urls []string
	for _, s := range cluster {
		urls = append(urls, s.ClientURL())
	}
	sim, _ := startCamera(t, "", "")
	opts := &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP}
	var nodes []*testServer
	for i := range 2 {
		nodes = append(nodes, startServer(t, Config{
			NATS:  NATSConfig{URL: strings.Join(urls, ","), Replicas: 3},
			Node:  NodeConfig{Name: fmt.Sprintf("c%d", i)},
			Fleet: FleetConfig{Lease: 3 * time.Second},
		}))
	}
	ctx := ctxT(t, 120*time.Second)
	for _, name := range []string{"left", "right"} {
		if _, err := nodes[0].streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: name, Url: sim.URL("bounce"), Options: opts}); err != nil {
			t.Fatal(err)
		}
	}
	// logged waits until both streams have a logged window, seen from the
	// second node, after the time given.
	logged := func(why string, after time.Time) {
		t.Helper()
		t.Logf("waiting for both streams' logged windows %s", why)
		sub := subscribe(t, ctx, nodes[1].recog, &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}})
		want := map[string]bool{"left": true, "right": true}
		sub.until(60*time.Second, func(ev *actiondv1.Event) bool {
			if ev.GetLogged() && ev.GetFence() != 0 && ev.GetWindowResult().GetEndTime().AsTime().After(after) {
				delete(want, ev.GetStream())
			}
			return len(want) == 0
		})
	}
	logged("before", time.Time{})
	cluster[0].Shutdown()
	cluster[0].WaitForShutdown()
	killed := time.Now()
	logged("after a NATS server was killed", killed.Add(5*time.Second))
	resp, err := nodes[1].streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range resp.GetStreams() {
		if s.GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || s.GetStatus().GetNode() == "" {
			t.Errorf("stream %s after a NATS server was killed: %v on %q", s.GetName(), s.GetStatus().GetState(), s.GetStatus().GetNode())
		}
	}
	if r := sim.Stats("bounce").Readers; r != 2 {
		t.Errorf("the camera has %d sessions, want one per stream (2)", r)
	}
}
