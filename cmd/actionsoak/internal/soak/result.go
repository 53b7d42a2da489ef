package soak

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/actiond/actiond/internal/stats"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// Result is what a run found.
type Result struct {
	Start, End  time.Time // the measured run
	Interrupted bool

	Streams []StreamStats // by name
	Gaps    []Gap         // classified
	Faults  []Fault
	Events  uint64
	Windows uint64
	Dropped uint64 // events the server dropped for this subscriber (Dropped)

	SequenceHoles int // events numbered but never received
	LostGaps      int // window gaps outside every fault (silent streams included)
	LostWindows   int
	FaultGaps     int // window gaps inside a fault
	FaultWindows  int
	// Recovery is, per fault kind, the longest time from a fault's end to
	// the first window after its gap.
	Recovery map[FaultKind]time.Duration
	// Unhit counts faults after which no gap was seen (the stream rode it
	// out, e.g. a loss that missed every key frame).
	Unhit int

	Latency                   []Latency
	P50, P90, P99, PMax       time.Duration
	Clocks                    map[actiondv1.Clock]int
	Samples                   []Sample
	WarmUp                    time.Duration
	Drift                     Drift
	StartMetrics, EndMetrics  Metrics
	MaxRSSSlope, MaxRSSGrowth float64
	SoakCPU                   time.Duration // this process's CPU time over the run

	Failures []string
}

// analyze classifies the tracker's gaps against the faults and computes
// the figures and the verdict (the server's own fate is added by Run).
func analyze(cfg Config, tr *Tracker, faults []Fault, samples []Sample, start, end time.Time) *Result {
	streams, gaps, lat, events, dropped, clocks := tr.snapshot()
	r := &Result{Start: start, End: end, Faults: faults, Events: events, Dropped: dropped, Clocks: clocks,
		Samples: samples, WarmUp: cfg.WarmUp, MaxRSSSlope: cfg.MaxRSSSlope, MaxRSSGrowth: cfg.MaxRSSGrowth,
		Recovery: make(map[FaultKind]time.Duration)}
	classify(gaps, faults, cfg.Slack, end)
	r.Gaps = gaps
	byN := make(map[int]Fault, len(faults))
	for _, f := range faults {
		byN[f.N] = f
	}
	hit := make(map[int]bool)
	for _, g := range gaps {
		st := streams[g.Stream]
		switch {
		case g.Kind == GapSequence:
			r.SequenceHoles += g.Missing
		case g.Fault != 0:
			r.FaultGaps++
			r.FaultWindows += g.Missing
			st.FaultGaps++
			st.FaultMissing += g.Missing
			hit[g.Fault] = true
			if f := byN[g.Fault]; g.Kind != GapSilent {
				r.Recovery[f.Kind] = max(r.Recovery[f.Kind], g.To.Sub(f.End))
			}
		default:
			r.LostGaps++
			r.LostWindows += g.Missing
			st.LostGaps++
			st.LostMissed += g.Missing
		}
		streams[g.Stream] = st
	}
	r.Unhit = len(faults) - len(hit)
	for _, st := range streams {
		r.Streams = append(r.Streams, st)
		r.Windows += st.Windows
	}
	slices.SortFunc(r.Streams, func(a, b StreamStats) int { return naturalCmp(a.Name, b.Name) })

	// Latency over the measured run only: the first windows after start-up
	// wait for the model's first runs, and those after the end arrive
	// while the faults' last gaps are being closed.
	ds := make([]time.Duration, 0, len(lat))
	for _, l := range lat {
		if !l.At.Before(start) && !l.At.After(end) {
			r.Latency = append(r.Latency, l)
			ds = append(ds, l.D)
		}
	}
	slices.Sort(ds)
	r.P50, r.P90, r.P99 = stats.Percentile(ds, 0.5), stats.Percentile(ds, 0.9), stats.Percentile(ds, 0.99)
	if len(ds) > 0 {
		r.PMax = ds[len(ds)-1]
	}

	r.Drift = computeDrift(samples, start.Add(cfg.WarmUp))

	if r.SequenceHoles > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d events lost (holes in sequence numbers)", r.SequenceHoles))
	}
	if r.Dropped > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d events dropped by the server for the subscriber", r.Dropped))
	}
	if r.LostGaps > 0 {
		r.Failures = append(r.Failures, fmt.Sprintf("%d window gaps outside faults (%d windows lost)", r.LostGaps, r.LostWindows))
	}
	if r.Windows == 0 {
		r.Failures = append(r.Failures, "no windows at all")
	}
	if r.Drift.Samples < 2 {
		r.Failures = append(r.Failures, "too few memory samples after the warm-up to tell drift")
	} else if r.rssDrifted() {
		r.Failures = append(r.Failures, fmt.Sprintf("RSS drifted: %+.1f MiB/h (bound %g) and %+.1f%% last vs first tenth (bound %g%%)",
			r.Drift.SlopePerHour/(1<<20), cfg.MaxRSSSlope, 100*r.Drift.Growth(), 100*cfg.MaxRSSGrowth))
	}
	return r
}

// rssDrifted applies the drift bound: slope and growth both beyond it.
func (r *Result) rssDrifted() bool {
	return r.Drift.SlopePerHour/(1<<20) > r.MaxRSSSlope && r.Drift.Growth() > r.MaxRSSGrowth
}

func (r *Result) verdictLine() string {
	if len(r.Failures) == 0 {
		return fmt.Sprintf("PASS: %d events, %d windows, 0 lost outside %d faults, p99 %s, RSS %+.1f MiB/h",
			r.Events, r.Windows, len(r.Faults), r.P99.Round(time.Millisecond), r.Drift.SlopePerHour/(1<<20))
	}
	return "FAIL: " + strings.Join(r.Failures, "; ")
}

// serverCores is actiond's average CPU use over the run, in cores; -1
// when unknown.
func (r *Result) serverCores() float64 {
	a, b := r.StartMetrics.CPUSeconds, r.EndMetrics.CPUSeconds
	if a < 0 || b < 0 {
		return -1
	}
	return (b - a) / r.End.Sub(r.Start).Seconds()
}

// serverWindowToEvent is the mean of actiond_window_to_event_seconds over
// the run; -1 when unknown.
func (r *Result) serverWindowToEvent() time.Duration {
	s0, s1 := r.StartMetrics.WindowToEventSum, r.EndMetrics.WindowToEventSum
	c0, c1 := r.StartMetrics.WindowToEventCount, r.EndMetrics.WindowToEventCount
	if s0 < 0 || s1 < 0 || c0 < 0 || c1 <= c0 {
		return -1
	}
	return time.Duration((s1 - s0) / (c1 - c0) * float64(time.Second))
}

// load returns the mean and the largest load average sampled over the
// run; -1 when unknown.
func (r *Result) load() (mean, most float64) {
	n := 0
	most = -1
	for _, s := range r.Samples {
		if s.Load >= 0 && !s.At.Before(r.Start) {
			mean += s.Load
			most = max(most, s.Load)
			n++
		}
	}
	if n == 0 {
		return -1, -1
	}
	return mean / float64(n), most
}

// naturalCmp orders cam2 before cam10.
func naturalCmp(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}
