//go:build !race

package pptsmv2

const (
	raceEnabled = false
	testSize    = 64
)
