package ingest

import "sync"

// A Lease is a window's tensor that has not been copied out of the
// stream's ring yet: a window of a stream with a TensorPool carries one
// (Window.Lease) instead of a Tensor. The ring keeps the window's slots
// until the stream would overwrite one of them; only then, if the lease
// is still held, does the stream copy them into a tensor from the pool.
// Under latest wins the scheduler replaces a stream's waiting window with
// the next one before that, so a waiting window costs the ring a few more
// slots (2 strides) instead of a tensor of its own (16 slots).
//
// Its methods are safe for concurrent use with the stream, which goes on
// writing other slots of its ring.
type Lease struct {
	mu     sync.Mutex
	slots  [][]float32 // the window's slots, in order, in the ring; nil once copied out
	idx    []int       // their ring buffers (the stream's, to know what it may overwrite)
	tensor []float32   // the copy, once made
	done   bool        // released
	pool   *TensorPool
	size   int // values of the whole tensor
}

// CopyTo copies the window's tensor into dst, which must hold it all.
func (l *Lease) CopyTo(dst []float32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tensor != nil {
		copy(dst, l.tensor)
		return
	}
	n := 0
	for _, s := range l.slots {
		n += copy(dst[n:], s)
	}
}

// Tensor returns the window's tensor, copied out of the ring first if it
// is not yet; it stays the lease's until Release.
func (l *Lease) Tensor() []float32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.materializeLocked()
	return l.tensor
}

// Release gives the lease up: its tensor, if copied out, goes back to the
// pool, and the stream may overwrite its slots. Safe to call twice, and on
// a nil Lease.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pool.Put(l.tensor)
	l.tensor, l.slots, l.done = nil, nil, true
}

func (l *Lease) materializeLocked() {
	if l.done || l.tensor != nil {
		return
	}
	l.tensor = l.pool.Get(l.size)
	n := 0
	for _, s := range l.slots {
		n += copy(l.tensor[n:], s)
	}
	l.slots = nil
}

// protect is called by the stream before it writes ring buffer i: a held
// lease on it is copied out first. It reports whether the lease no longer
// depends on the ring (released or copied out), so the stream can forget
// it.
func (l *Lease) protect(i int) (free bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done || l.tensor != nil {
		return true
	}
	for _, j := range l.idx {
		if j == i {
			l.materializeLocked()
			return true
		}
	}
	return false
}
