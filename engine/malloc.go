package engine

/*
#include <malloc.h>
*/
import "C"

// LimitMallocArenas caps the C heap's arenas (glibc's M_ARENA_MAX) at n
// for the rest of the process; it reports whether the C library took it.
// glibc otherwise gives threads that allocate at once arenas of their own,
// up to eight per core, and each keeps what was freed in it: a server's
// ONNX Runtime, decoder and cgo threads spread their buffers over many
// arenas that all stay resident. Call it early, before those threads
// allocate. The environment's MALLOC_ARENA_MAX does the same from the
// start.
func LimitMallocArenas(n int) bool {
	return C.mallopt(C.M_ARENA_MAX, C.int(n)) == 1
}
