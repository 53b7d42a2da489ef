package fleet

import "sync"

// Fences drops events of an owner that has been replaced: it remembers the
// highest fence seen per stream and refuses anything lower. Readers of the
// shared log (history, sinks, subscribers) keep one.
type Fences struct {
	mu  sync.Mutex
	max map[string]uint64
}

// Admit reports whether an event of stream with fence may be used, and
// raises the stream's fence if it is newer. Fence 0 (a node outside a
// fleet) is always admitted.
func (f *Fences) Admit(stream string, fence uint64) bool {
	if fence == 0 {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.max == nil {
		f.max = make(map[string]uint64)
	}
	if fence < f.max[stream] {
		return false
	}
	f.max[stream] = fence
	return true
}
