package server

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/actiond/actiond/models"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// In a fleet, the hub sends subscribers the shared log's events in the
// order they come, and drops those of an owner that has been replaced: an
// event whose fence is below one already seen for its stream.
func TestHubDropsStaleFences(t *testing.T) {
	h := NewHub(models.Manifest{}, 16, 4, NewMetrics(), slog.New(slog.DiscardHandler))
	h.inFleet = true
	h.Start()
	defer h.Close()
	sub, err := h.subscribe(subscriptionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	status := func(stream string, pos, fence uint64) *actiondv1.Event {
		return &actiondv1.Event{Stream: stream, Position: pos, Logged: true, Fence: fence,
			Kind: &actiondv1.Event_StreamStatus{StreamStatus: &actiondv1.StreamStatus{}}}
	}
	for _, ev := range []*actiondv1.Event{
		status("a", 1, 5), status("b", 2, 7), status("a", 3, 9), // a moved: fence 9
		status("a", 4, 5), // the old owner of a, late: dropped
		status("b", 5, 7), status("a", 6, 9), status("c", 7, 0),
	} {
		h.remoteEvent(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []uint64
	for len(got) < 6 {
		ev, ok, err := sub.queue.next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if ok {
			got = append(got, ev.GetPosition())
		}
	}
	want := []uint64{1, 2, 3, 5, 6, 7}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("positions %v, want %v", got, want)
		}
	}
}
