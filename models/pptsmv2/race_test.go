//go:build race

package pptsmv2

// The race detector makes the pure-Go loops of these tests (the reference
// convolutions, the pickle codec on 100 MB files) about ten times slower,
// and this package starts no goroutines: under it the numeric tests run
// smaller frames and fewer checkpoint files.
const (
	raceEnabled = true
	testSize    = 32
)
