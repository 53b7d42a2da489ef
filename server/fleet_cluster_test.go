package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/natstest"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// Two fleet nodes on a three-server NATS cluster with R3 (nats.replicas
// 3): one NATS server is killed, and the fleet carries on: both cameras
// keep playing, once each, their events logged.
func TestFleetOnNATSClusterLosesOneServer(t *testing.T) {
	cluster := natstest.Cluster(t, "actiond-fleet-test")
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
