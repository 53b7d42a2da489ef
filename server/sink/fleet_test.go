package sink

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/actiond/actiond/server/eventlog"
)

// Two nodes of a fleet run the same webhook sink on one shared log: it is
// one consumer for the fleet, so the receiver gets every event once, in
// log order, whichever node delivered it; a node that stops leaves the
// rest to the other.
func TestFleetSinkDeliversOncePerFleet(t *testing.T) {
	l := openLog(t, t.TempDir())
	h := &hook{answer: func(int, string) (int, time.Duration) { return http.StatusOK, 0 }}
	srv := httptest.NewServer(h)
	defer srv.Close()
	spec := settled(t, Spec{Name: "tickets", Type: "webhook", URL: srv.URL})
	var nodes []*Manager
	for _, node := range []string{"n1", "n2"} {
		m := NewManager(l.js, testLogger(t).With("node", node))
		m.SetFleet("site", node)
		defer m.Close()
		if err := m.Apply([]Spec{spec}, nil); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, m)
	}
	waitFor(t, 20*time.Second, "the fleet's consumer", func() bool {
		_, err := l.js.Consumer(t.Context(), eventlog.StreamName, "site_tickets")
		return err == nil
	})
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
