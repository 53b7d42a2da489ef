package camsim

import (
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
)

// A copy plays the same clip as a camera of its own: readers get packets
// from both, and a fault on the copy leaves the original alone.
func TestSimulatorAddCopy(t *testing.T) {
	t.Parallel()
	sim := startSim(t, SimulatorConfig{})
	if err := sim.AddCopy("copy", "scene"); err != nil {
		t.Fatal(err)
	}
	orig := playRTP(t, sim.URL("scene"), gortsplib.TransportTCP)
	cp := playRTP(t, sim.URL("copy"), gortsplib.TransportTCP)
	waitFor(t, 5*time.Second, "packets from both", func() bool {
		return orig.stats().packets >= 10 && cp.stats().packets >= 10
	})
	streams, err := ffprobe(t, sim.URL("copy"), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	wantVideo(t, streams, testScene.Width, testScene.Height)

	if err := sim.Stall("copy", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // packets already on their way
	o, c := orig.stats().packets, cp.stats().packets
	time.Sleep(time.Second)
	if got := cp.stats().packets; got != c {
		t.Errorf("the stalled copy delivered %d packets", got-c)
	}
	if got := orig.stats().packets; got == o {
		t.Error("the original stalled with its copy")
	}

	for _, tc := range []struct{ name, from string }{{"copy2", "nope"}, {"copy", "scene"}} {
		err := sim.AddCopy(tc.name, tc.from)
		if err == nil {
			t.Errorf("AddCopy(%q, %q): no error", tc.name, tc.from)
		} else if tc.from == "nope" && !errors.Is(err, ErrSimPathNotFound) {
			t.Errorf("AddCopy of an unknown path: %v, want ErrSimPathNotFound", err)
		}
	}
}
