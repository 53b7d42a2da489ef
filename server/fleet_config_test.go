package server

import (
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// A stream in one node's configuration file exists for the whole fleet:
// node a has cam0 and cam1 in its file, node b only cam0 (with another
// stride). Both list both streams, cam1 plays wherever it is placed, and
// once a is drained both play on b. The two files disagree on cam0: b's
// entry, new to the fleet, replaced the record a shared, and a plays
// cam0 as the record says, with a warning. No camera ever has two
// sessions.
func TestFleetStreamOfOneNodesConfiguration(t *testing.T) {
	ns := startNATS(t, t.TempDir(), "")
	_, specs := fleetCams(t, 2)
	ctx := ctxT(t, 180*time.Second)
	a := fleetServer(t, ns.addr, "a", specs, false)
	onlyCam0 := []StreamSpec{specs[0]}
	onlyCam0[0].Stride = 2 * camsim.BounceStride
	b := fleetServer(t, ns.addr, "b", onlyCam0, false)

	bothPlay := func(v fleetView) bool {
		for _, s := range []string{"cam0", "cam1"} {
			if v.owner[s] == "" || v.state[s] != actiondv1.StreamState_STREAM_STATE_PLAYING {
				return false
			}
		}
		return len(v.owner) == 2 && len(v.nodes) == 2
	}
	waitView(t, ctx, b, "b lists cam1 of a's file, both playing", bothPlay)
	waitView(t, ctx, a, "a lists both, both playing", bothPlay)
	stride := func(ts *testServer) time.Duration {
		t.Helper()
		resp, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: "cam0"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStream().GetOptions().GetStride().AsDuration()
	}
	for deadline := time.Now().Add(30 * time.Second); stride(a) != 2*camsim.BounceStride; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("a plays cam0 with stride %v, want b's %v (the fleet's record)", stride(a), 2*camsim.BounceStride)
		}
	}
	if got := stride(b); got != 2*camsim.BounceStride {
		t.Errorf("b plays cam0 with stride %v, want its own %v", got, 2*camsim.BounceStride)
	}
	if !strings.Contains(a.logs.String(), "changed on another node") {
		t.Errorf("a did not warn that cam0 of its file changed on another node")
	}

	// a drains: cam1, which only a's file has, goes to b and plays.
	if _, err := actiondv1.NewFleetServiceClient(b.conn).DrainNode(ctx, &actiondv1.DrainNodeRequest{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	waitView(t, ctx, b, "both play on b once a is drained", func(v fleetView) bool {
		return bothPlay(v) && v.owner["cam0"] == "b" && v.owner["cam1"] == "b"
	})
}
