package server

import (
	"context"
	"fmt"
	"sync/atomic"
)

// classifyGate admits Classify calls: n decode at once, at most n more
// wait for a place (each until its own deadline), and any beyond are
// refused at once, so that a burst of calls holds neither memory nor disk
// for long.
type classifyGate struct {
	slots   chan struct{}
	waiting atomic.Int64
}

func newClassifyGate(n int) *classifyGate {
	return &classifyGate{slots: make(chan struct{}, n)}
}

// enter takes a place, waiting for one while ctx lasts; the caller calls
// leave when done. It is ErrClassifyBusy when as many calls wait as decode.
func (g *classifyGate) enter(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	n := int64(cap(g.slots))
	if g.waiting.Add(1) > n {
		g.waiting.Add(-1)
		return fmt.Errorf("%w: %d Classify calls are decoding and %d more are waiting (classify.max_concurrent); retry later", ErrClassifyBusy, n, n)
	}
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// leave gives back the place that enter took.
func (g *classifyGate) leave() { <-g.slots }
