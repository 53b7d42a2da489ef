package server

import (
	"runtime/debug"
	"testing"
)

// TuneMemory sets GOGC 25 and two malloc arenas unless the environment
// sets its own, which it then leaves alone.
func TestTuneMemory(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if gc, arenas := TuneMemory(func(string) string { return "50" }); gc != 0 || arenas != 0 {
		t.Errorf("with GOGC and MALLOC_ARENA_MAX set: set GC percent %d and %d arenas, want neither", gc, arenas)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, the GC percent became %d", got)
	}
	gc, arenas := TuneMemory(func(string) string { return "" })
	if gc != DefaultGCPercent || arenas != DefaultMallocArenas {
		t.Errorf("unset: GC percent %d and %d arenas, want %d and %d", gc, arenas, DefaultGCPercent, DefaultMallocArenas)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("unset: the GC percent is %d, want %d", got, DefaultGCPercent)
	}
}
