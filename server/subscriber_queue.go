package server

import (
	"context"
	"sync"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// subscriberQueue holds the events waiting for one subscriber. The hub puts
// events in and never waits: when the queue is full, the oldest event is
// dropped and counted. The subscriber's sender takes them out; after a drop
// the next thing it takes is a Dropped event with the count, then the
// newest events. It is safe for one producer and one consumer at once.
type subscriberQueue struct {
	mu      sync.Mutex
	ring    []*actiondv1.Event
	head, n int
	dropped uint64 // since the last Dropped was taken
	closed  bool
	// ready has a value whenever there may be something to take.
	ready chan struct{}
}

func newSubscriberQueue(size int) *subscriberQueue {
	return &subscriberQueue{ring: make([]*actiondv1.Event, size), ready: make(chan struct{}, 1)}
}

// push adds ev, dropping the oldest event when the queue is full. It
// reports whether it dropped one. After close it does nothing.
func (q *subscriberQueue) push(ev *actiondv1.Event) (dropped bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.ring) {
		q.ring[q.head] = nil
		q.head = (q.head + 1) % len(q.ring)
		q.n--
		q.dropped++
		dropped = true
	}
	q.ring[(q.head+q.n)%len(q.ring)] = ev
	q.n++
	q.mu.Unlock()
	q.signal()
	return dropped
}

// close marks the end: the consumer gets what is queued, then nothing.
func (q *subscriberQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *subscriberQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take returns the next event without waiting: a Dropped event first when
// events were dropped since the last one. ok is false when there is none;
// closed then says whether there never will be.
func (q *subscriberQueue) take() (ev *actiondv1.Event, ok, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.dropped > 0 {
		ev = &actiondv1.Event{Kind: &actiondv1.Event_Dropped{Dropped: &actiondv1.Dropped{Count: q.dropped}}}
		q.dropped = 0
		return ev, true, false
	}
	if q.n == 0 {
		return nil, false, q.closed
	}
	ev = q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	return ev, true, false
}

// next waits for the next event. It returns ok false when the queue is
// closed and empty, or ctx is done (then err says so).
func (q *subscriberQueue) next(ctx context.Context) (ev *actiondv1.Event, ok bool, err error) {
	for {
		ev, ok, closed := q.take()
		if ok {
			return ev, true, nil
		}
		if closed {
			return nil, false, nil
		}
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// forgetDropped clears the count of events dropped since the last Dropped
// and reports whether there were any: a resuming subscriber that fell
// behind while it replayed replays the lost events from the log instead.
func (q *subscriberQueue) forgetDropped() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	had := q.dropped > 0
	q.dropped = 0
	return had
}
