package server

import (
	"runtime/debug"

	"github.com/actiond/actiond/engine"
)

// Process-wide memory settings of `actiond serve` (TuneMemory).
const (
	// DefaultGCPercent is Go's GOGC for the server: the heap may grow by
	// a quarter of what is live before a collection, not by all of it
	// (Go's 100). Nearly all of a server's heap is its streams' window
	// buffers (a ring of 20 slots of features, 15 MiB, per stream):
	// long-lived arrays without pointers, which cost a collection next to
	// nothing to mark, so headroom in proportion to them buys little CPU
	// and costs RSS per stream.
	DefaultGCPercent = 25
	// DefaultMallocArenas is glibc's M_ARENA_MAX for the server: two C
	// heap arenas instead of up to eight per core (engine.LimitMallocArenas).
	DefaultMallocArenas = 2
)

// TuneMemory applies the server's memory settings to this process, each
// unless the environment (getenv) sets its own: GOGC, else GC percent
// DefaultGCPercent; MALLOC_ARENA_MAX, else DefaultMallocArenas. GOMEMLIMIT
// (Go's soft limit on its own memory) is Go's to read: unset, there is
// none. It returns what it set, 0 for what it left alone. Call it first
// thing, before threads start.
func TuneMemory(getenv func(string) string) (gcPercent, arenas int) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
		gcPercent = DefaultGCPercent
	}
	if getenv("MALLOC_ARENA_MAX") == "" && engine.LimitMallocArenas(DefaultMallocArenas) {
		arenas = DefaultMallocArenas
	}
	return gcPercent, arenas
}
