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

	dropped0 := sim.Stats("copy").PacketsDropped
	if err := sim.Stall("copy", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Once the copy's stall has held back a few packets, what was on its
	// way has landed; while it holds back more, the original goes on.
	stalled := func(n uint64) func() bool {
		return func() bool { return sim.Stats("copy").PacketsDropped >= dropped0+n }
	}
	waitFor(t, 10*time.Second, "the copy's stall to hold back packets", stalled(5))
	o, c := orig.stats().packets, cp.stats().packets
	waitFor(t, 10*time.Second, "the original to go on", func() bool { return orig.stats().packets > o+5 })
	if !stalled(6)() {
		t.Fatal("the copy's stall held back nothing more meanwhile")
	}
	if got := cp.stats().packets; got != c {
		t.Errorf("the stalled copy delivered %d packets", got-c)
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
