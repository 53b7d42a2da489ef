//go:build race

package server

// raceEnabled: the race detector's own memory (shadow memory, per-goroutine
// state) grows with what the test did and is never handed back, so RSS
// bounds of leak tests are looser under it.
const raceEnabled = true
