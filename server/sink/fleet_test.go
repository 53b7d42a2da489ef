package sink

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
)

// fleetSink runs spec on two nodes, n1 and n2, of fleet "site", and
// waits for the fleet's consumer; cleanup stops them.
func fleetSink(t *testing.T, l *eventLog, spec Spec) []*Manager {
	t.Helper()
	var nodes []*Manager
	for _, node := range []string{"n1", "n2"} {
		m := NewManager(l.js, testLogger(t).With("node", node))
		m.SetFleet("site", node)
		t.Cleanup(m.Close)
		if err := m.Apply([]Spec{spec}, nil); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, m)
	}
	waitFor(t, 20*time.Second, "the fleet's consumer", func() bool {
		_, err := l.js.Consumer(t.Context(), eventlog.StreamName, "site_"+spec.Name)
		return err == nil
	})
	return nodes
}

// Two nodes of a fleet run the same webhook sink on one shared log: it is
// one consumer for the fleet, so the receiver gets every event once, in
// log order, whichever node delivered it; a node that stops leaves the
// rest to the other.
func TestFleetSinkDeliversOncePerFleet(t *testing.T) {
	l := openLog(t, t.TempDir())
	h := &hook{answer: func(int, string) (int, time.Duration) { return http.StatusOK, 0 }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	nodes := fleetSink(t, l, settled(t, Spec{Name: "tickets", Type: "webhook", URL: srv.URL}))
	var want []uint64
	for i := range 20 {
		want = append(want, l.append(t, started("gate", fmt.Sprintf("a%d", i), "welding", uint64(i+1))))
	}
	waitFor(t, 20*time.Second, "twenty events", func() bool { return len(h.got()) >= 20 })
	nodes[0].Close()
	for i := range 10 {
		want = append(want, l.append(t, started("gate", fmt.Sprintf("b%d", i), "welding", uint64(i+21))))
	}
	waitFor(t, 20*time.Second, "thirty events", func() bool { return len(h.got()) >= 30 })
	time.Sleep(200 * time.Millisecond) // a duplicate would come now
	got := h.got()
	if len(got) != len(want) {
		t.Fatalf("the receiver got %d events, want %d once each", len(got), len(want))
	}
	for i, ev := range got {
		if ev.GetPosition() != want[i] {
			t.Errorf("event %d at position %d, want %d", i, ev.GetPosition(), want[i])
		}
	}
}

// A fleet's sink never delivers an event of a replaced owner: one whose
// fence is below a fence already seen for its stream earlier in the log
// (a node cut off from NATS whose last events arrive after the new
// owner's), whichever node of the fleet took either event. The events of
// other streams, and of one node outside a fleet (fence 0), all go out.
func TestFleetSinkDropsStaleFences(t *testing.T) {
	l := openLog(t, t.TempDir())
	h := &hook{answer: func(int, string) (int, time.Duration) { return http.StatusOK, 0 }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	fleetSink(t, l, settled(t, Spec{Name: "alerts", Type: "webhook", URL: srv.URL, Kinds: []string{"started"}}))
	fenced := func(ev *actiondv1.Event, fence uint64) *actiondv1.Event { ev.Fence = fence; return ev }
	status := func(stream string, fence uint64) *actiondv1.Event {
		return &actiondv1.Event{Stream: stream, Fence: fence, Kind: &actiondv1.Event_StreamStatus{StreamStatus: &actiondv1.StreamStatus{
			State: actiondv1.StreamState_STREAM_STATE_CONNECTING}}}
	}
	var want []string
	for i, step := range []struct {
		ev      *actiondv1.Event
		fence   uint64
		deliver bool
	}{
		{started("gate", "a1", "welding", 1), 5, true},
		{started("dock", "d1", "welding", 1), 7, true},
		// gate moves to another node: its status is the first event of
		// fence 9, and the old owner's late actions after it are dropped.
		{status("gate", 9), 9, false},
		{started("gate", "a2", "welding", 2), 5, false},
		{started("gate", "b1", "welding", 1), 9, true},
		{started("gate", "a3", "welding", 3), 5, false},
		{started("dock", "d2", "welding", 2), 7, true},
		{started("yard", "y1", "welding", 1), 0, true},
		{started("gate", "b2", "welding", 2), 9, true},
	} {
		l.append(t, fenced(step.ev, step.fence))
		if step.deliver {
			want = append(want, step.ev.GetActionStarted().GetActionId())
		}
		if i == 3 {
			// Enough for both nodes to have taken events.
			waitFor(t, 20*time.Second, "the first events", func() bool { return len(h.got()) >= 2 })
		}
	}
	waitFor(t, 20*time.Second, "the acknowledgement of every event", func() bool {
		c, err := l.js.Consumer(t.Context(), eventlog.StreamName, "site_alerts")
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	var got []string
	for _, ev := range h.got() {
		got = append(got, ev.GetActionStarted().GetActionId())
	}
	if !slices.Equal(got, want) {
		t.Errorf("the receiver got %v, want %v (the old owner's a2 and a3 dropped)", got, want)
	}
}
