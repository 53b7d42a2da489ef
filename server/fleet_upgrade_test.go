package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
)

// fleetCams starts a simulator with n bouncing cameras cam0.. and returns
// it with the streams that watch them; cleanup checks that no camera ever
// had two RTSP sessions (sampled every 100 ms).
func fleetCams(t *testing.T, n int) (*camsim.Simulator, []StreamSpec) {
	t.Helper()
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	var specs []StreamSpec
	for i := range n {
		name := fmt.Sprintf("cam%d", i)
		if err := sim.AddSceneSequence(name, 160, 120, 12, camsim.Bounce); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, StreamSpec{Name: name, Window: camsim.BounceWindow, Stride: camsim.BounceStride, Transport: "tcp"})
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	for i := range specs {
		specs[i].URL = sim.URL(specs[i].Name)
	}
	stop := make(chan struct{})
	var sampling sync.WaitGroup
	var doubles []string
	sampling.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, s := range specs {
				if r := sim.Stats(s.Name).Readers; r > 1 {
					doubles = append(doubles, fmt.Sprintf("%s: %d sessions at %s", s.Name, r, time.Now().Format("15:04:05.000")))
				}
			}
		}
	})
	t.Cleanup(func() {
		close(stop)
		sampling.Wait()
		sim.Close()
		if len(doubles) > 0 {
			t.Errorf("cameras with two RTSP sessions: %v", doubles)
		}
	})
	return sim, specs
}

// fleetServer starts an in-process fleet node on the NATS at addr with
// the configuration's streams; previous makes it write the fleet's
// records as the previous minor release did.
func fleetServer(t *testing.T, addr, name string, streams []StreamSpec, previous bool) *testServer {
	t.Helper()
	return fleetServerWith(t, addr, name, streams, 3*time.Second, func(ts *testServer) { ts.fleetPrevious = previous })
}

// fleetServerWith starts an in-process fleet node as fleetServer does,
// with fleet.lease lease, after tune has set what it sets.
func fleetServerWith(t *testing.T, addr, name string, streams []StreamSpec, lease time.Duration, tune func(*testServer)) *testServer {
	t.Helper()
	ts := newTestServer(t, Config{
		NATS:    NATSConfig{URL: "nats://" + addr},
		Node:    NodeConfig{Name: name},
		Fleet:   FleetConfig{Lease: lease},
		Streams: slices.Clone(streams),
	})
	tune(ts)
	ts.start(t)
	ts.waitLoaded(t)
	return ts
}

// fleetView is what a node's API says of the fleet: each stream's owner
// and state, and each live node's streams.
type fleetView struct {
	owner map[string]string
	state map[string]actiondv1.StreamState
	nodes map[string][]string
}

func viewOf(ctx context.Context, ts *testServer) (fleetView, error) {
	v := fleetView{owner: map[string]string{}, state: map[string]actiondv1.StreamState{}, nodes: map[string][]string{}}
	resp, err := ts.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	if err != nil {
		return v, err
	}
	for _, s := range resp.GetStreams() {
		v.owner[s.GetName()], v.state[s.GetName()] = s.GetStatus().GetNode(), s.GetStatus().GetState()
	}
	nodes, err := actiondv1.NewFleetServiceClient(ts.conn).ListNodes(ctx, &actiondv1.ListNodesRequest{})
	if err != nil {
		return v, err
	}
	for _, n := range nodes.GetNodes() {
		v.nodes[n.GetName()] = n.GetStreamsOwned()
	}
	return v, nil
}

// waitView polls ts's view of the fleet until ok holds; the deadline
// only catches hangs.
func waitView(t *testing.T, ctx context.Context, ts *testServer, what string, ok func(fleetView) bool) fleetView {
	t.Helper()
	var v fleetView
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if v, err = viewOf(ctx, ts); err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 60s: owners %v, states %v, nodes %v, %v", what, v.owner, v.state, v.nodes, err)
		}
	}
}

// A rolling upgrade, half done: a node of the previous minor release
// (writing its heartbeats as that release did, without the streams'
// status) and a node of this one share a fleet. Both see each other in
// ListNodes, the streams are placed on both, a stream the old node owns
// is shown with its owner by the new node, the new node drains the old
// one, and the new node's own drain (its shutdown) hands everything to
// another node of the previous release. No camera ever has two sessions.
func TestFleetPreviousMinorRelease(t *testing.T) {
	ns := startNATS(t, t.TempDir(), "")
	sim, specs := fleetCams(t, 4)
	ctx := ctxT(t, 180*time.Second)
	old := fleetServer(t, ns.addr, "old", specs, true)
	cur := fleetServer(t, ns.addr, "cur", specs, false)

	// Both nodes list both, each owning some of the four cameras; the new
	// node shows every stream with its owner, its own ones playing.
	v := waitView(t, ctx, cur, "both nodes own streams", func(v fleetView) bool {
		playing := 0
		for s, o := range v.owner {
			if o == "cur" && v.state[s] == actiondv1.StreamState_STREAM_STATE_PLAYING {
				playing++
			}
			if o == "" {
				return false
			}
		}
		return len(v.owner) == 4 && len(v.nodes["old"]) > 0 && len(v.nodes["cur"]) > 0 &&
			len(v.nodes["old"])+len(v.nodes["cur"]) == 4 && playing == len(v.nodes["cur"])
	})
	for _, s := range v.nodes["old"] {
		if v.owner[s] != "old" {
			t.Errorf("the new node shows %s, which the old node owns, on %q", s, v.owner[s])
		}
	}
	waitView(t, ctx, old, "the old node sees the new one and its streams playing", func(ov fleetView) bool {
		for _, s := range ov.nodes["cur"] {
			if ov.owner[s] != "cur" || ov.state[s] != actiondv1.StreamState_STREAM_STATE_PLAYING {
				return false
			}
		}
		return len(ov.nodes) == 2 && len(ov.nodes["cur"]) > 0
	})

	// The heartbeats in the bucket are each release's own.
	kv, err := ns.jetStream(t).KeyValue(ctx, fleet.NodesBucket("actiond"))
	if err != nil {
		t.Fatal(err)
	}
	for node, wantStatus := range map[string]bool{"old": false, "cur": true} {
		e, err := kv.Get(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatal(err)
		}
		if _, has := rec["status"]; has != wantStatus || string(rec["version"]) != "1" {
			t.Errorf("heartbeat of %s: %s", node, e.Value())
		}
	}

	// The new node drains the old one: everything plays on the new.
	if _, err := actiondv1.NewFleetServiceClient(cur.conn).DrainNode(ctx, &actiondv1.DrainNodeRequest{Name: "old"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, ctx, cur, "the old node drained", func(v fleetView) bool {
		for _, s := range specs {
			if v.owner[s.Name] != "cur" || v.state[s.Name] != actiondv1.StreamState_STREAM_STATE_PLAYING {
				return false
			}
		}
		return len(v.nodes["old"]) == 0
	})

	// Another node of the previous release joins and the new node shuts
	// down (SIGTERM): it drains into the old release's node.
	old2 := fleetServer(t, ns.addr, "old2", specs, true)
	if err := cur.Close(); err != nil {
		t.Fatal(err)
	}
	waitView(t, ctx, old2, "the new node drained into old2", func(v fleetView) bool {
		for _, s := range specs {
			if v.owner[s.Name] != "old2" || v.state[s.Name] != actiondv1.StreamState_STREAM_STATE_PLAYING {
				return false
			}
		}
		_, curLeft := v.nodes["cur"]
		return !curLeft
	})
	waitView(t, ctx, old, "the old node shows old2 as the owner", func(v fleetView) bool {
		for _, s := range specs {
			if v.owner[s.Name] != "old2" {
				return false
			}
		}
		return true
	})
	for _, s := range specs {
		if r := sim.Stats(s.Name).Readers; r != 1 {
			t.Errorf("camera %s has %d sessions, want 1", s.Name, r)
		}
	}
}

// A stream of the configuration files (the same on both nodes) removed
// over the API on one node is removed from the whole fleet: the other
// node stops knowing it, nobody plays it, and a node restarted with the
// same configuration does not bring it back; one whose configuration's
// entry for it changed does. The other streams play on throughout.
func TestFleetConfigStreamRemovedFleetWide(t *testing.T) {
	ns := startNATS(t, t.TempDir(), "")
	sim, specs := fleetCams(t, 3)
	ctx := ctxT(t, 180*time.Second)
	n1 := fleetServer(t, ns.addr, "n1", specs, false)
	n2 := fleetServer(t, ns.addr, "n2", specs, false)
	playing := func(want ...string) func(fleetView) bool {
		return func(v fleetView) bool {
			if len(v.owner) != len(want) {
				return false
			}
			for _, s := range want {
				if v.owner[s] == "" || v.state[s] != actiondv1.StreamState_STREAM_STATE_PLAYING {
					return false
				}
			}
			return true
		}
	}
	waitView(t, ctx, n1, "all three play", playing("cam0", "cam1", "cam2"))

	if _, err := n1.streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: "cam1"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, ctx, n2, "cam1 gone from n2", playing("cam0", "cam2"))
	waitView(t, ctx, n1, "cam1 gone from n1", playing("cam0", "cam2"))
	for deadline := time.Now().Add(30 * time.Second); sim.Stats("cam1").Readers != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cam1 removed, still played: %d sessions after 30s", sim.Stats("cam1").Readers)
		}
	}

	// n2 restarts with the same configuration: cam1 stays removed.
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	n2 = fleetServer(t, ns.addr, "n2", specs, false)
	waitView(t, ctx, n2, "n2 back, without cam1", func(v fleetView) bool {
		return playing("cam0", "cam2")(v) && len(v.nodes) == 2
	})
	if r := sim.Stats("cam1").Readers; r != 0 {
		t.Errorf("cam1 played again after n2 restarted with the same configuration: %d sessions", r)
	}

	// The configuration's entry for cam1 changes, node by node: cam1 is
	// back, and plays once every node has the change (as any change of
	// the configuration's streams: the placement counts on every node
	// knowing every stream).
	changed := slices.Clone(specs)
	changed[1].Stride = 2 * camsim.BounceStride
	if err := n2.Close(); err != nil {
		t.Fatal(err)
	}
	n2 = fleetServer(t, ns.addr, "n2", changed, false)
	waitView(t, ctx, n2, "cam1 back on n2", func(v fleetView) bool { _, ok := v.owner["cam1"]; return ok && len(v.nodes) == 2 })
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	n1 = fleetServer(t, ns.addr, "n1", changed, false)
	waitView(t, ctx, n1, "cam1 back with the changed configuration", playing("cam0", "cam1", "cam2"))
	waitView(t, ctx, n2, "cam1 back with the changed configuration, as n2 says", playing("cam0", "cam1", "cam2"))
}
