package soak

import (
	"fmt"
	"strings"
	"time"
)

// FaultKind is one way the soak breaks a camera.
type FaultKind string

// The faults the simulator injects (camsim.Simulator).
const (
	// FaultDrop closes the camera's connections (a reboot, a network
	// drop): the stream must reconnect.
	FaultDrop FaultKind = "drop"
	// FaultStall sends nothing for a while, connections open: the stream
	// starts a new epoch when video comes back.
	FaultStall FaultKind = "stall"
	// FaultJump restarts the camera's clock at zero: a new epoch.
	FaultJump FaultKind = "jump"
	// FaultLoss loses a share of the RTP packets for a while: frames fail
	// to decode until the next key frame.
	FaultLoss FaultKind = "loss"
)

// AllFaults is the default rotation.
var AllFaults = []FaultKind{FaultDrop, FaultStall, FaultJump, FaultLoss}

// ParseFaults reads a comma-separated list of fault kinds; "" or "none"
// is no faults.
func ParseFaults(s string) ([]FaultKind, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var kinds []FaultKind
	for f := range strings.SplitSeq(s, ",") {
		k := FaultKind(strings.TrimSpace(f))
		switch k {
		case FaultDrop, FaultStall, FaultJump, FaultLoss:
			kinds = append(kinds, k)
		default:
			return nil, fmt.Errorf("unknown fault %q (want drop, stall, jump, loss)", f)
		}
	}
	return kinds, nil
}

// Fault is one injected fault: when it started and ended on which camera
// (an instant one, drop or jump, ends when it starts).
type Fault struct {
	N      int // 1, 2, 3, … in the order injected
	Stream string
	Kind   FaultKind
	Detail string // "4s", "5% for 5s"
	Start  time.Time
	End    time.Time // zero while it lasts
}

// schedule says which camera gets the k-th fault (from 0) and which kind:
// the cameras round-robin, and each camera's successive faults walk
// through the kinds, whatever the number of cameras (with 8 cameras and 4
// kinds, a plain k mod 4 would give each camera one kind forever).
func schedule(k, cameras int, kinds []FaultKind) (camera int, kind FaultKind) {
	return k % cameras, kinds[(k+k/cameras)%len(kinds)]
}

// GapKind tells what is missing.
type GapKind string

const (
	// GapWindows: windows missing from a stream's results, by media time
	// (each stream's windows end every stride), within an epoch or across
	// a new one.
	GapWindows GapKind = "windows"
	// GapSequence: events numbered but never received (holes in a
	// stream's sequence numbers). The server numbers what it emits, so no
	// camera fault explains one: it is always lost.
	GapSequence GapKind = "sequence"
	// GapSilent: at the end, a stream whose last window is long past.
	GapSilent GapKind = "silent"
)

// Gap is an absence in one stream's events.
type Gap struct {
	Stream string
	Kind   GapKind
	// From and To bound the absence in absolute time: the end of the
	// window before it and of the window after it (for sequence holes,
	// when the events around it arrived; for a silent stream, the end of
	// the run).
	From, To time.Time
	// Missing is how many windows (or events) are missing.
	Missing int
	// NewEpoch says the window after the gap is in a new epoch.
	NewEpoch bool
	// Fault is the N of the fault that explains the gap; 0 means none:
	// lost.
	Fault int
}

// classify sets each gap's Fault: the first fault on the gap's stream
// whose span, extended by slack after its end, the gap overlaps. The gap
// runs from the last window before it, so a gap that begins before the
// fault ends is the fault's doing however long the stream then takes to
// fill a new window; slack covers what a fault leaves behind after its
// end (frames undecodable until the next key frame, the reconnect
// backoff). A fault still open at the end lasts until then. Sequence holes
// are never explained.
func classify(gaps []Gap, faults []Fault, slack time.Duration, end time.Time) {
	for i := range gaps {
		g := &gaps[i]
		g.Fault = 0
		if g.Kind == GapSequence {
			continue
		}
		for _, f := range faults {
			fend := f.End
			if fend.IsZero() {
				fend = end
			}
			if f.Stream == g.Stream && !g.From.After(fend.Add(slack)) && !g.To.Before(f.Start) {
				g.Fault = f.N
				break
			}
		}
	}
}
