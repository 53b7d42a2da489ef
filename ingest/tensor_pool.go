package ingest

import (
	"sync"
	"time"
)

// TensorPool lends window-sized tensors, so that a server with many
// streams reuses a few of them instead of allocating one per window (a
// 16-frame 224² window is 9.6 MB). A stream with a pool hands its windows
// over as Leases on its ring and takes a tensor from the pool only when it
// must copy a window out (Lease); whoever is done with the window (the
// scheduler, once it is copied into a batch or replaced by a newer window)
// releases it, and a tensor goes back with Put. The pool keeps as many tensors as
// were lent at once lately (over the last one to two TensorPoolPeriods):
// a burst, such as every stream's first window waiting for the model's
// first run, does not leave its tensors in the pool for good. The
// consumer bounds the tensors lent (one waiting window per stream), and
// SetKeep bounds what the pool keeps (when streams go, their tensors go
// with them). Tensors not kept, and any never given back, are left to the
// garbage collector.
//
// A tensor of another size than the pool's is allocated and dropped as
// usual. It is safe for concurrent use.
type TensorPool struct {
	size int

	mu        sync.Mutex
	free      [][]float32
	allocated uint64 // tensors made, over the pool's life
	lent      int    // out now
	maxLent   int
	keep      int    // at most this many, lent and free; 0: no bound
	dropped   uint64 // tensors given back but not kept

	// peak is the most lent at once since since, prevPeak in the
	// period before: the pool keeps the larger.
	peak, prevPeak int
	since          time.Time
	now            func() time.Time // time.Now; tests set it
}

// TensorPoolPeriod is how long the pool remembers how many tensors were
// lent at once: it keeps that many for one to two periods.
const TensorPoolPeriod = 30 * time.Second

// TensorPoolStats is the pool's accounting.
type TensorPoolStats struct {
	// Allocated counts the tensors the pool ever made: it stops growing
	// once the pool holds as many as are lent at once.
	Allocated uint64
	// Lent is how many are out now, MaxLent the most that ever were.
	Lent, MaxLent int
	// Free is how many wait in the pool.
	Free int
	// Size is the values per tensor.
	Size int
	// Dropped counts tensors given back and left to the garbage
	// collector because the pool held as many as it keeps (SetKeep).
	Dropped uint64
}

// NewTensorPool returns a pool of tensors of size float32 values.
func NewTensorPool(size int) *TensorPool { return &TensorPool{size: size, now: time.Now} }

// rollLocked starts a new period when the current one is over.
func (p *TensorPool) rollLocked() {
	now := p.now()
	switch d := now.Sub(p.since); {
	case d < TensorPoolPeriod:
		return
	case d < 2*TensorPoolPeriod:
		p.prevPeak = p.peak
	default: // a period without a Get or Put: nothing was lent beyond lent
		p.prevPeak = p.lent
	}
	p.peak, p.since = p.lent, now
}

// Get returns a tensor of n values, from the pool when n is its size. Its
// values are whatever they were: the caller overwrites them all. A nil
// pool allocates.
func (p *TensorPool) Get(n int) []float32 {
	if p == nil || n != p.size {
		return make([]float32, n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rollLocked()
	p.lent++
	p.maxLent = max(p.maxLent, p.lent)
	p.peak = max(p.peak, p.lent)
	if k := len(p.free); k > 0 {
		t := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		return t
	}
	p.allocated++
	return make([]float32, n)
}

// Put gives t back. t must not be used afterwards. A tensor of another
// size, or nil, is ignored, as is any Put on a nil pool.
func (p *TensorPool) Put(t []float32) {
	if p == nil || len(t) != p.size || cap(t) != p.size {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rollLocked()
	if p.lent > 0 {
		p.lent--
	}
	need := max(p.peak, p.prevPeak)
	if p.keep > 0 {
		need = min(need, p.keep)
	}
	p.free = append(p.free, t)
	// Beyond the need: t and any free ones past it go.
	for len(p.free) > 0 && p.lent+len(p.free) > need {
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		p.dropped++
	}
}

// SetKeep bounds the tensors the pool keeps, lent and free together, to
// n (0: no bound, the default): tensors given back beyond it, and free
// ones now beyond it, are left to the garbage collector. A server sets it
// from its stream count, so that the tensors of streams that are gone do
// not stay in the pool. Get still lends as many as are asked for.
func (p *TensorPool) SetKeep(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keep = max(n, 0)
	for p.keep > 0 && len(p.free) > 0 && p.lent+len(p.free) > p.keep {
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		p.dropped++
	}
}

// Stats returns the pool's accounting now.
func (p *TensorPool) Stats() TensorPoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return TensorPoolStats{Allocated: p.allocated, Lent: p.lent, MaxLent: p.maxLent, Free: len(p.free), Size: p.size, Dropped: p.dropped}
}

// SetTensorPool makes the stream's windows carry their tensors as Leases
// on its ring, copied into tensors from pool only when the stream needs
// their slots back first: the receiver of a Window releases its Lease when
// done with it. Windows the stream drops because the receiver is slow are
// released by themselves. It must be called before Start; nil (the default)
// allocates a tensor per window.
func (s *Stream) SetTensorPool(pool *TensorPool) { s.set.grid.pool = pool }

// sendWindow queues w for the receiver without blocking: when the queue is
// full, its oldest window is dropped (counted) and its tensor given back.
func (s *Stream) sendWindow(w Window) {
	for {
		select {
		case s.windows <- w:
			return
		default:
		}
		select {
		case old := <-s.windows:
			s.ctr.droppedWindows.Add(1)
			old.Lease.Release()
		default:
		}
	}
}
