package server

import (
	"context"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

func seqEvent(n uint64) *actiondv1.Event { return &actiondv1.Event{Stream: "s", Sequence: n} }

// take drains q without waiting: sequences of events, and Dropped as -count.
func drain(t *testing.T, q *subscriberQueue) []int64 {
	t.Helper()
	var got []int64
	for {
		ev, ok, _ := q.take()
		if !ok {
			return got
		}
		if d := ev.GetDropped(); d != nil {
			got = append(got, -int64(d.GetCount()))
			continue
		}
		got = append(got, int64(ev.GetSequence()))
	}
}

func TestSubscriberQueueDropsOldest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		push  int
		wantQ []int64 // what the consumer takes: -n is Dropped{n}
	}{
		{"under the bound", 4, 3, []int64{1, 2, 3}},
		{"at the bound", 4, 4, []int64{1, 2, 3, 4}},
		{"one over: Dropped first, then the newest", 4, 5, []int64{-1, 2, 3, 4, 5}},
		{"far over", 4, 100, []int64{-96, 97, 98, 99, 100}},
		{"size one", 1, 3, []int64{-2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newSubscriberQueue(tc.size)
			drops := 0
			for i := 1; i <= tc.push; i++ {
				if q.push(seqEvent(uint64(i))) {
					drops++
				}
			}
			if want := max(0, tc.push-tc.size); drops != want {
				t.Errorf("push reported %d drops, want %d", drops, want)
			}
			got := drain(t, q)
			if len(got) != len(tc.wantQ) {
				t.Fatalf("took %v, want %v", got, tc.wantQ)
			}
			for i := range got {
				if got[i] != tc.wantQ[i] {
					t.Fatalf("took %v, want %v", got, tc.wantQ)
				}
			}
		})
	}
}

// The count of a Dropped covers the drops since the last Dropped only.
func TestSubscriberQueueDroppedCountsSinceLast(t *testing.T) {
	q := newSubscriberQueue(2)
	for i := 1; i <= 5; i++ { // drops 1, 2, 3
		q.push(seqEvent(uint64(i)))
	}
	if got := drain(t, q); len(got) != 3 || got[0] != -3 || got[1] != 4 || got[2] != 5 {
		t.Fatalf("first round %v, want [-3 4 5]", got)
	}
	for i := 6; i <= 8; i++ { // drops 6
		q.push(seqEvent(uint64(i)))
	}
	if got := drain(t, q); len(got) != 3 || got[0] != -1 || got[1] != 7 || got[2] != 8 {
		t.Fatalf("second round %v, want [-1 7 8]", got)
	}
	q.push(seqEvent(9))
	if got := drain(t, q); len(got) != 1 || got[0] != 9 {
		t.Fatalf("third round %v, want [9] and no Dropped", got)
	}
}

// A closed queue gives what it holds, then says it is closed; next wakes up
// a waiting consumer on push and on close, and gives up with its context.
func TestSubscriberQueueNextAndClose(t *testing.T) {
	q := newSubscriberQueue(4)
	got := make(chan *actiondv1.Event)
	ended := make(chan error, 1)
	go func() {
		for {
			ev, ok, err := q.next(context.Background())
			if !ok {
				ended <- err
				return
			}
			got <- ev
		}
	}()
	q.push(seqEvent(1))
	select {
	case ev := <-got:
		if ev.GetSequence() != 1 {
			t.Fatalf("got %v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("next did not wake up on push")
	}
	q.push(seqEvent(2))
	q.close()
	q.push(seqEvent(3)) // after close: ignored
	select {
	case ev := <-got:
		if ev.GetSequence() != 2 {
			t.Fatalf("got %v after close, want the queued 2", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued event not delivered after close")
	}
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("closed queue: err %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("next did not end on close")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok, err := newSubscriberQueue(1).next(ctx); ok || err == nil {
		t.Errorf("next with a cancelled context: ok %v err %v, want the context's error", ok, err)
	}
}
