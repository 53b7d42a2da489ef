package soak

import (
	"math"
	"slices"
	"time"

	"github.com/actiond/actiond/internal/stats"
)

// percentile returns the p-th percentile (0..100) of v by nearest rank;
// 0 for no values. v is not modified.
func percentile(v []time.Duration, p float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return stats.Percentile(s, p/100)
}

// linearFit returns the least-squares slope and intercept of y over x; a
// slope of 0 when x does not vary.
func linearFit(x, y []float64) (slope, intercept float64) {
	n := float64(len(x))
	if n == 0 {
		return 0, 0
	}
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return 0, my
	}
	slope = sxy / sxx
	return slope, my - slope*mx
}

// median of v (not modified); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Sample is one reading of the server process.
type Sample struct {
	At         time.Time
	RSS        int64 // bytes; from /proc/PID/status
	Goroutines int   // go_goroutines; -1 when the scrape failed
	FDs        int   // process_open_fds; -1 when the scrape failed
	// Load is the machine's 1-minute load average (/proc/loadavg): on a
	// shared machine, what the server competed with.
	Load float64
}

// Drift is how the server's resident memory moved after the warm-up.
type Drift struct {
	Samples int
	// SlopePerHour is the least-squares slope of RSS over time, in bytes
	// per hour.
	SlopePerHour float64
	// First and Last are the medians of the first and the last 10% of the
	// samples (at least one each): medians, because a garbage-collected
	// heap breathes from sample to sample.
	First, Last float64
	Min, Max    int64
}

// Growth is Last over First, minus one (0.05 is 5% more).
func (d Drift) Growth() float64 {
	if d.First == 0 {
		return 0
	}
	return d.Last/d.First - 1
}

// computeDrift takes the samples at or after from.
func computeDrift(samples []Sample, from time.Time) Drift {
	var xs, ys []float64
	d := Drift{Min: math.MaxInt64}
	for _, s := range samples {
		if s.At.Before(from) || s.RSS <= 0 {
			continue
		}
		xs = append(xs, s.At.Sub(from).Hours())
		ys = append(ys, float64(s.RSS))
		d.Min, d.Max = min(d.Min, s.RSS), max(d.Max, s.RSS)
	}
	d.Samples = len(ys)
	if d.Samples == 0 {
		d.Min = 0
		return d
	}
	d.SlopePerHour, _ = linearFit(xs, ys)
	k := max(1, len(ys)/10)
	d.First, d.Last = median(ys[:k]), median(ys[len(ys)-k:])
	return d
}
