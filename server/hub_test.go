package server

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// The hub keeps a stream's events in the order they happened, whichever
// goroutine told it (the stream its status, the scheduler its results):
// the restart's ActionEnded events come first, a result never overtakes
// the stream's add, an action lost with the camera ends before the
// "retrying" status. Close handles what was sent before it: a subscriber
// gets a stream's last events, then the end.
func TestHubKeepsAStreamsOrderAndDrainsAtClose(t *testing.T) {
	h := NewHub(models.Manifest{Name: "m", Labels: []string{"left", "right"}}, 4096, 4, NewMetrics(), slog.New(slog.DiscardHandler))
	h.newID = func() string { return "a1" }
	h.restartEnds = []*actiondv1.Event{{Stream: "cam", Kind: &actiondv1.Event_ActionEnded{ActionEnded: &actiondv1.ActionEnded{
		Label: "left", Reason: actiondv1.ActionEndReason_ACTION_END_REASON_SERVER_RESTARTED}}}}
	h.Start()
	sub, err := h.subscribe(subscriptionFilter{})
	if err != nil {
		t.Fatal(err)
	}
	status := func(s actiondv1.StreamState) *actiondv1.StreamStatus {
		return &actiondv1.StreamStatus{State: s, Epoch: 1}
	}
	result := func(stream string, i int, scores []float32) hubResult {
		return hubResult{name: stream, gen: 1, epoch: 1, made: time.Now(), scores: scores,
			span: ingest.Span{MediaStart: time.Duration(i) * time.Second, MediaEnd: time.Duration(i+1) * time.Second, Clock: ingest.ClockReceive}}
	}
	// Each step runs on its own goroutine, after the one before returned.
	step := func(f func()) {
		done := make(chan struct{})
		go func() { f(); close(done) }()
		<-done
	}
	opts := streamOptions{topK: 1, on: 0.5, off: 0.3, consecutive: 1}
	step(func() {
		h.streamChanged(streamChange{kind: streamAdded, name: "cam", gen: 1, opts: opts, status: status(actiondv1.StreamState_STREAM_STATE_PLAYING)})
	})
	step(func() {
		for i := range 3 {
			h.windowResult(result("cam", i, []float32{0.9, 0.1}))
		}
	})
	step(func() {
		h.streamChanged(streamChange{kind: streamStatus, name: "cam", gen: 1, status: status(actiondv1.StreamState_STREAM_STATE_RETRYING)})
	})
	want := []string{
		"cam#2 status STREAM_STATE_PLAYING epoch 1 ",
		"cam#3 window 0.000-1.000 left 0.900 (CLOCK_RECEIVE, epoch 1)",
		"cam#4 started left at 0.000 (a1)",
		"cam#5 window 1.000-2.000 left 0.900 (CLOCK_RECEIVE, epoch 1)",
		"cam#6 window 2.000-3.000 left 0.900 (CLOCK_RECEIVE, epoch 1)",
		"cam#7 ended left 0.000-3.000 ACTION_END_REASON_STREAM_LOST",
		"cam#8 status STREAM_STATE_RETRYING epoch 1 ",
	}

	// Sent just before Close, not waited for: handled before the end.
	const n = 100
	never := streamOptions{topK: 1, on: 2, off: 1, consecutive: 1}
	h.streamChanged(streamChange{kind: streamAdded, name: "b", gen: 1, opts: never, status: status(actiondv1.StreamState_STREAM_STATE_PLAYING)})
	want = append(want, "b#1 status STREAM_STATE_PLAYING epoch 1 ")
	for i := range n {
		h.windowResult(result("b", i, []float32{0.2, 0.8}))
		want = append(want, fmt.Sprintf("b#%d window %d.000-%d.000 right 0.800 (CLOCK_RECEIVE, epoch 1)", i+2, i, i+1))
	}
	h.streamChanged(streamChange{kind: streamRemoved, name: "b", gen: 1, status: status(actiondv1.StreamState_STREAM_STATE_STOPPED)})
	want = append(want, fmt.Sprintf("b#%d status STREAM_STATE_STOPPED epoch 1 ", n+2))
	h.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for {
		ev, ok, err := sub.queue.next(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if !ok {
			break
		}
		got = append(got, describeEvent(ev))
	}
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d:\n%q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is %q, want %q; all:\n%q", i, got[i], want[i], got)
		}
	}
	if _, err := h.subscribe(subscriptionFilter{}); err == nil {
		t.Error("Subscribe after Close: no error")
	}
}
