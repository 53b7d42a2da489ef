package bench

import (
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/cmd/internal/plot"
	"github.com/actiond/actiond/internal/procstat"
	"github.com/actiond/actiond/internal/stats"
)

// The plot is a PNG of the stated size with every series drawn in its
// colour.
func TestLivePlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "live.png")
	pts := []livePoint{
		{N: 1, P50: 300 * time.Millisecond, P99: 500 * time.Millisecond, CPU: 0.3, BenchCPU: 0.01, MachineCPU: 0.5, RSS: 300 << 20, EffStride: 1250 * time.Millisecond},
		{N: 4, P50: 600 * time.Millisecond, P99: 900 * time.Millisecond, CPU: 1.1, BenchCPU: 0.04, MachineCPU: 1.3, RSS: 380 << 20, EffStride: 1250 * time.Millisecond},
		{N: 8, P50: 2 * time.Second, P99: 4 * time.Second, CPU: 1.9, BenchCPU: 0.08, MachineCPU: 2, RSS: 500 << 20, EffStride: 2500 * time.Millisecond},
	}
	if err := writeLivePlot(path, pts, 250<<20); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != 880 {
		t.Errorf("size %v", b)
	}
	count := map[color.RGBA]int{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, a := img.At(x, y).RGBA()
			count[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}]++
		}
	}
	for name, c := range map[string]color.RGBA{"p50": plot.Blue, "p99": plot.Red, "actiond": plot.Green, "simulator": plot.Orange, "text": plot.Ink} {
		// Lines between three points and a legend: well over 100 pixels.
		if count[c] < 100 {
			t.Errorf("%s: %d pixels of its colour", name, count[c])
		}
	}
}

func TestQuantile(t *testing.T) {
	var v []time.Duration
	for i := 1; i <= 200; i++ {
		v = append(v, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := stats.Percentile(v, 0.5), stats.Percentile(v, 0.99); p50 != 100*time.Millisecond || p99 != 198*time.Millisecond {
		t.Errorf("p50 %v p99 %v, want 100ms 198ms", p50, p99)
	}
	if q := stats.Percentile(v[:1], 0.99); q != time.Millisecond {
		t.Errorf("one value: %v", q)
	}
}

// /proc readings of this process: CPU time grows with work, RSS is
// plausible.
func TestProcReadings(t *testing.T) {
	c0, err := procCPU("self")
	if err != nil {
		t.Fatal(err)
	}
	// Busy until the clock ticks (10 ms of CPU), at most 10 s on a
	// crowded machine.
	c1 := c0
	for start := time.Now(); c1 <= c0 && time.Since(start) < 10*time.Second; c1, _ = procCPU("self") {
		for range 1000 {
			_ = strings.Repeat("x", 1000)
		}
	}
	if c1 <= c0 {
		t.Errorf("CPU time %v then %v after a busy loop", c0, c1)
	}
	if m, err := machineCPU(); err != nil || m <= 0 {
		t.Errorf("machine CPU %v, %v", m, err)
	}
	if r, err := procstat.RSS(os.Getpid()); err != nil || r < 1<<20 || r > 1<<34 {
		t.Errorf("RSS %d, %v", r, err)
	}
}

func TestParseInts(t *testing.T) {
	if got, err := parseInts("1, 2,4,,16"); err != nil || len(got) != 4 || got[3] != 16 {
		t.Errorf("got %v, %v", got, err)
	}
	if _, err := parseInts("1,x"); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad count: %v", err)
	}
}

// pprof -top rows, as go tool pprof prints them, become the pipeline's
// shares.
func TestCPUShares(t *testing.T) {
	top := strings.Split(`Duration: 20s, Total samples = 10s (50.00%)
      flat  flat%   sum%        cum   cum%
     3s 30.00% 30.00%      3s 30.00%  [libavcodec.so.59.37.100]
     2s 20.00% 50.00%      2s 20.00%  [libonnxruntime.so.1]
     2.5s 25.00% 75.00%      2.5s 25.00%  runtime.cgocall
         0     0% 75.00%      2s 20.00%  github.com/actiond/actiond/engine.(*Session).RunShape
         0     0% 75.00%      2s 20.00%  github.com/actiond/actiond/engine.(*Session).Run
         0     0% 75.00%      0.5s 5.00%  github.com/actiond/actiond/ingest.(*decoder).decode
     0.1s  1% 76.00%      0.4s 4.00%  github.com/actiond/actiond/ingest.Preprocessor.Frame`, "\n")
	want := "H.264 decoding about 35%, inference about 40%, preprocessing about 4%"
	if got := cpuShares(top); !strings.HasPrefix(got, want) {
		t.Errorf("got %q, want %q…", got, want)
	}
}

// Round robin over 16 streams with a round of 6.35 s gives each stream 3
// or 4 results in 25 s: the count ratio would read 0.75, the served
// strides are alike. A stream served half as often, or no longer served
// at the end of the period, shows.
func TestServedFairness(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	const round = 6350 * time.Millisecond
	end := t0.Add(25 * time.Second)
	rr := func(every time.Duration, until time.Time) map[string]streamServed {
		m := map[string]streamServed{}
		for k := range 16 {
			name := camName(k)
			offset := time.Duration(k) * every / 16
			s := streamServed{Before: t0.Add(offset - every)}
			for at := t0.Add(offset); at.Before(until); at = at.Add(every) {
				s.In = append(s.In, at)
			}
			m[name] = s
		}
		return m
	}
	fair, fewest, most := servedFairness(rr(round, end), end)
	if fewest != 3 || most != 4 || fair < 0.95 {
		t.Errorf("round robin: fairness %.2f, results %d–%d; want about 1 with 3–4", fair, fewest, most)
	}

	half := rr(round, end)
	s := half["cam01"]
	s.In = s.In[:0]
	for at := t0; at.Before(end); at = at.Add(2 * round) {
		s.In = append(s.In, at)
	}
	s.Before = t0.Add(-2 * round)
	half["cam01"] = s
	if fair, _, _ := servedFairness(half, end); fair < 0.45 || fair > 0.55 {
		t.Errorf("one stream served half as often: fairness %.2f, want about 0.5", fair)
	}

	stopped := rr(round, end)
	s = stopped["cam02"]
	s.In = s.In[:1] // served at the start, then no more
	stopped["cam02"] = s
	if fair, _, _ := servedFairness(stopped, end); fair > 0.5 {
		t.Errorf("one stream no longer served: fairness %.2f, want well under 1", fair)
	}

	none := rr(round, end)
	none["cam03"] = streamServed{}
	if fair, fewest, _ := servedFairness(none, end); fair != 0 || fewest != 0 {
		t.Errorf("one stream without results: fairness %.2f, fewest %d; want 0, 0", fair, fewest)
	}

	// Served at the full stride: 1 exactly.
	full := rr(liveStride*16, end)
	for k, s := range full {
		s.In = nil
		for at := t0; at.Before(end); at = at.Add(liveStride) {
			s.In = append(s.In, at)
		}
		s.Before = t0.Add(-liveStride)
		full[k] = s
	}
	if fair, fewest, most := servedFairness(full, end); fair != 1 || fewest != 20 || most != 20 {
		t.Errorf("full stride: fairness %v, results %d–%d; want 1, 20–20", fair, fewest, most)
	}
}

// The table names every column once and each row fills them all; the
// period, the results per stream and the run time are in it.
func TestLiveTableFormat(t *testing.T) {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	se := &liveSeries{Name: "this actiond", BaseRSS: 300 << 20, Points: []livePoint{
		{N: 1, Period: 25 * time.Second, Events: 20, Expected: 20, Fairness: 1, Fewest: 20, Most: 20, RSS: 320 << 20, RunMean: 120 * time.Millisecond, MeanBatch: 1},
		{N: 16, Period: 51 * time.Second, Events: 128, Expected: 652, Skipped: 500, Fairness: 0.97, Fewest: 8, Most: 9, RSS: 900 << 20, RunMean: 430 * time.Millisecond, MeanBatch: 1},
	}}
	liveTable(p, se)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) < 4 {
		t.Fatalf("table:\n%s", b.String())
	}
	cols := strings.Count(lines[0], "|")
	for _, l := range lines[1:4] {
		if strings.Count(l, "|") != cols {
			t.Errorf("%d separators, the header has %d: %s", strings.Count(l, "|"), cols, l)
		}
	}
	for _, want := range []string{"| period s |", "| results/stream |", "| run ms |", "| 16 | 51 |", "| 0.97 | 8–9 |", "| 430 |"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in\n%s", want, b.String())
		}
	}
}

// The latency bound is stated for the largest overloaded N, with its
// figures; nothing when no N skipped a window.
func TestLatencyBound(t *testing.T) {
	pts := []livePoint{
		{N: 8, P99: 700 * time.Millisecond, RunMean: 120 * time.Millisecond},
		{N: 12, Skipped: 100, P99: 1900 * time.Millisecond, RunMean: 300 * time.Millisecond},
		{N: 16, Skipped: 250, P99: 2100 * time.Millisecond, RunMean: 430 * time.Millisecond, DroppedFrames: 7},
	}
	got := latencyBound(pts)
	if want := "At N = 16: stride 1.25 s + mean run 0.43 s = 1.68 s, p99 2.10 s: beyond it"; !strings.Contains(got, want) || !strings.Contains(got, "7 frames dropped before decoding") {
		t.Errorf("got %q, want it to say %q and the 7 frames", got, want)
	}
	if got := latencyBound(pts[:2]); !strings.Contains(got, "At N = 12: stride 1.25 s + mean run 0.30 s = 1.55 s, p99 1.90 s: beyond it are decoding and delivery") {
		t.Errorf("N = 12 without frame drops: got %q", got)
	}
	pts[2].P99 = 1500 * time.Millisecond
	if got := latencyBound(pts); !strings.Contains(got, "p99 1.50 s, within it.") {
		t.Errorf("p99 within the bound: got %q", got)
	}
	if got := latencyBound(pts[:1]); got != "" {
		t.Errorf("no overload: got %q", got)
	}
}

// With the same capacity as the peer, the reading names the cost per camera
// of both and what differs past capacity; the still series' capacity at
// the largest N measured is a lower bound.
func TestPeerReading(t *testing.T) {
	full := func(n int, cpu float64) livePoint {
		return livePoint{N: n, CPU: cpu, InferBusy: 0.8, P99: 300 * time.Millisecond, Events: 20 * n, Expected: 20 * n, RSS: 700 << 20}
	}
	main := &liveSeries{Name: "this actiond", Points: []livePoint{full(12, 1.62),
		{N: 16, CPU: 1.5, InferBusy: 1, P99: 1840 * time.Millisecond, Events: 142, Expected: 320, Skipped: 183, EffStride: 2750 * time.Millisecond, RSS: 918 << 20}}}
	peer := &liveSeries{Name: "peer bin/actiond-peer", Points: []livePoint{full(12, 1.56),
		{N: 16, CPU: 1.9, InferBusy: 0.99, P99: 7970 * time.Millisecond, Events: 208, Expected: 320, DroppedWindows: 49, RSS: 2163 << 20}}}
	still := &liveSeries{Name: "this actiond, half the cameras still (skip_static)", Static: true, Points: []livePoint{full(12, 1.1), full(16, 1.42)}}
	got := liveCompare(main, []*liveSeries{peer, still})
	main.Points[0].CPU = 1.71 // 0.143 cores a camera, 1.10× the peer's
	if dear := liveCompare(main, []*liveSeries{peer, still}); !strings.Contains(dear, "this actiond's camera costs 1.10× the peer's, so both run out of cores at about the same N") {
		t.Errorf("a camera 1.10× as dear is not named:\n%s", dear)
	}
	for _, want := range []string{
		"Against the peer: 1.00× (goal ≥ 1.25×: **not met**)",
		"with half the cameras still 1.33× (goal ≥ 2×: **not met**)",
		"At N = 12, the largest both serve, a camera costs this actiond 0.135 cores and the peer 0.130",
		"about the same, so both run out of cores at about the same N",
		"Past it, at N = 16: this actiond p99 1.84 s, RSS 918 MiB, 183 windows skipped (latest wins), effective stride 2.75 s; the peer p99 7.97 s, RSS 2163 MiB, 49 windows dropped.",
		"at N = 16 a camera costs 0.089 cores (the model busy 80%), and that is the largest N measured: the capacity is at least this.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}
