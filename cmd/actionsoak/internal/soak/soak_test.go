package soak

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/procstat"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const stride = 625 * time.Millisecond

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// feed plays one stream's events into a tracker as the server would send
// them: a WindowResult per window, numbered, ending every stride in media
// time (at t0 + media end in absolute time), received lat later.
type feed struct {
	tr     *Tracker
	stream string
	seq    uint64
	media  time.Duration // the last window's end
	epoch  uint64
	lat    time.Duration
}

func newFeed(tr *Tracker, stream string) *feed {
	return &feed{tr: tr, stream: stream, epoch: 1, lat: 100 * time.Millisecond, media: 2500 * time.Millisecond}
}

// windows sends n windows, each a stride after the last.
func (f *feed) windows(n int) {
	for range n {
		f.media += stride
		f.send(&actiondv1.Event{Kind: &actiondv1.Event_WindowResult{WindowResult: &actiondv1.WindowResult{
			MediaStart: durationpb.New(f.media - 2500*time.Millisecond),
			MediaEnd:   durationpb.New(f.media),
			EndTime:    timestamppb.New(t0.Add(f.media)),
			Clock:      actiondv1.Clock_CLOCK_RTCP,
			Epoch:      f.epoch,
		}}})
	}
}

// skip leaves out n windows, as a fault would.
func (f *feed) skip(n int) { f.media += time.Duration(n) * stride }

// status sends a StreamStatus.
func (f *feed) status() {
	f.send(&actiondv1.Event{Kind: &actiondv1.Event_StreamStatus{StreamStatus: &actiondv1.StreamStatus{}}})
}

func (f *feed) send(ev *actiondv1.Event) {
	f.seq++
	ev.Stream, ev.Sequence = f.stream, f.seq
	recv := f.at().Add(f.lat)
	f.tr.Observe(ev, recv)
}

// at is the absolute time of the last window's end.
func (f *feed) at() time.Time { return t0.Add(f.media) }

func testConfig() Config {
	c := NewConfig()
	c.Stride, c.Window, c.Slack = stride, 2500*time.Millisecond, 5*time.Second
	c.Duration, c.WarmUp = 10*time.Minute, time.Minute
	return c
}

// The gaps a user would be told about: missing windows during a fault on
// the same camera are the fault's; the same on a camera without a fault,
// a new epoch out of the blue, or a hole in the sequence numbers, are
// lost, and fail the run.
func TestAnalyzeClassifiesGaps(t *testing.T) {
	cfg := testConfig()
	tr := NewTracker(stride)
	cam1, cam2, cam3 := newFeed(tr, "cam1"), newFeed(tr, "cam2"), newFeed(tr, "cam3")
	for _, f := range []*feed{cam1, cam2, cam3} {
		f.status()
		f.windows(20)
	}

	// cam1: dropped at the end of its 20th window; it reconnects, a new
	// epoch whose first window ends 9 strides later.
	drop := Fault{N: 1, Stream: "cam1", Kind: FaultDrop, Start: cam1.at().Add(100 * time.Millisecond)}
	drop.End = drop.Start
	cam1.status()
	cam1.skip(8)
	cam1.epoch++
	cam1.status()
	cam1.windows(10)
	// cam2 loses 3 windows with no fault anywhere near: lost.
	cam2.skip(3)
	cam2.windows(10)
	// cam3 has a hole in its sequence numbers (2 events never arrive),
	// with its windows intact.
	cam3.seq += 2
	cam3.windows(10)
	// cam1 again, far from its fault: a new epoch out of the blue.
	cam1.windows(40)
	cam1.epoch++
	cam1.skip(5)
	cam1.windows(5)

	end := cam1.at().Add(time.Second)
	start := t0
	res := analyze(cfg, tr, []Fault{drop}, nil, start, end)

	if res.FaultGaps != 1 || res.FaultWindows != 8 {
		t.Errorf("gaps in faults = %d (%d windows), want 1 (8 windows)", res.FaultGaps, res.FaultWindows)
	}
	if res.LostGaps != 2 || res.LostWindows != 3+5 {
		t.Errorf("lost gaps = %d (%d windows), want 2 (8 windows): %+v", res.LostGaps, res.LostWindows, res.Gaps)
	}
	if res.SequenceHoles != 2 {
		t.Errorf("sequence holes = %d, want 2", res.SequenceHoles)
	}
	want := map[string][2]int{"cam1": {1, 1}, "cam2": {0, 1}, "cam3": {0, 0}} // fault gaps, lost gaps
	for _, s := range res.Streams {
		if got := [2]int{s.FaultGaps, s.LostGaps}; got != want[s.Name] {
			t.Errorf("%s: fault/lost gaps = %v, want %v", s.Name, got, want[s.Name])
		}
	}
	if got := res.Streams[0]; got.Name != "cam1" || got.Epochs != 3 || got.Statuses != 3 || got.Windows != 75 {
		t.Errorf("cam1 = %+v, want 3 epochs, 3 status events, 75 windows", got)
	}
	// Recovery: from the drop to the end of the first window after it.
	if got, want := res.Recovery[FaultDrop], 9*stride-100*time.Millisecond; got != want {
		t.Errorf("drop recovery = %v, want %v", got, want)
	}
	joined := strings.Join(res.Failures, "; ")
	for _, w := range []string{"2 events lost (holes in sequence numbers)", "2 window gaps outside faults (8 windows lost)"} {
		if !strings.Contains(joined, w) {
			t.Errorf("failures %q lack %q", joined, w)
		}
	}
}

// Where a fault ends and the slack after it: a gap that starts within the
// slack after the fault's end is the fault's; one that starts after it,
// or is on another camera, is not; a fault still open at the end covers
// the gaps until then.
func TestClassifySlack(t *testing.T) {
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	faults := []Fault{
		{N: 1, Stream: "cam1", Kind: FaultLoss, Start: at(10), End: at(15)},
		{N: 2, Stream: "cam2", Kind: FaultStall, Start: at(50)}, // still open
	}
	for _, tc := range []struct {
		name string
		gap  Gap
		want int
	}{
		{"during", Gap{Stream: "cam1", Kind: GapWindows, From: at(11), To: at(14)}, 1},
		{"across the start", Gap{Stream: "cam1", Kind: GapWindows, From: at(9.5), To: at(12)}, 1},
		{"starts within the slack, ends long after", Gap{Stream: "cam1", Kind: GapWindows, From: at(19.9), To: at(40)}, 1},
		{"starts after the slack", Gap{Stream: "cam1", Kind: GapWindows, From: at(20.1), To: at(21)}, 0},
		{"ends before the fault", Gap{Stream: "cam1", Kind: GapWindows, From: at(5), To: at(9.9)}, 0},
		{"another camera", Gap{Stream: "cam3", Kind: GapWindows, From: at(11), To: at(14)}, 0},
		{"silent during an open fault", Gap{Stream: "cam2", Kind: GapSilent, From: at(49), To: at(60)}, 2},
		{"a sequence hole is never a fault's", Gap{Stream: "cam1", Kind: GapSequence, From: at(11), To: at(12)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gaps := []Gap{tc.gap}
			classify(gaps, faults, 5*time.Second, at(60))
			if gaps[0].Fault != tc.want {
				t.Errorf("fault = %d, want %d", gaps[0].Fault, tc.want)
			}
		})
	}
}

// At the end: a camera that went quiet and one that never gave a window
// are silent gaps, lost unless a fault explains them; a Dropped event
// fails the run too.
func TestFinishAndDropped(t *testing.T) {
	cfg := testConfig()
	tr := NewTracker(stride)
	cam1, cam2 := newFeed(tr, "cam1"), newFeed(tr, "cam2")
	cam1.windows(100)
	cam2.windows(20) // then nothing
	tr.Observe(&actiondv1.Event{Kind: &actiondv1.Event_Dropped{Dropped: &actiondv1.Dropped{Count: 7}}}, cam1.at())
	end := cam1.at()
	tr.Finish([]string{"cam1", "cam2", "cam3"}, t0, end, cfg.quiet())
	res := analyze(cfg, tr, nil, nil, t0, end)
	var silent []string
	for _, g := range res.Gaps {
		if g.Kind == GapSilent {
			silent = append(silent, g.Stream)
		}
	}
	if strings.Join(silent, ",") != "cam2,cam3" {
		t.Errorf("silent streams = %v, want cam2, cam3", silent)
	}
	if res.Dropped != 7 || !strings.Contains(strings.Join(res.Failures, ";"), "7 events dropped") {
		t.Errorf("dropped = %d, failures %q", res.Dropped, res.Failures)
	}
}

// Latency is receipt minus the window's end in absolute time; the
// percentiles are over the measured run only.
func TestLatency(t *testing.T) {
	cfg := testConfig()
	tr := NewTracker(stride)
	f := newFeed(tr, "cam1")
	f.lat = 5 * time.Second // start-up: left out
	f.windows(10)
	start := f.at().Add(6 * time.Second)
	f.skip(20)
	for i := range 100 {
		f.lat = time.Duration(i+1) * time.Millisecond
		f.windows(1)
	}
	res := analyze(cfg, tr, nil, nil, start, f.at().Add(time.Second))
	if len(res.Latency) != 100 || res.P50 != 50*time.Millisecond || res.P99 != 99*time.Millisecond || res.PMax != 100*time.Millisecond {
		t.Errorf("latency: %d samples, p50 %v p99 %v max %v; want 100, 50ms, 99ms, 100ms", len(res.Latency), res.P50, res.P99, res.PMax)
	}
}

// Drift: a steady climb beyond both bounds fails; a heap that breathes
// around a flat line, or that grows in one step during the warm-up,
// passes.
func TestDrift(t *testing.T) {
	cfg := testConfig() // 10 min, warm-up 1 min; bounds 32 MiB/h and 5%
	const mb = 1 << 20
	samples := func(f func(min float64) float64) []Sample {
		var s []Sample
		for i := 0; i <= 120; i++ { // every 5 s
			m := float64(i) / 12
			s = append(s, Sample{At: t0.Add(time.Duration(i) * 5 * time.Second), RSS: int64(f(m) * mb)})
		}
		return s
	}
	for _, tc := range []struct {
		name   string
		rss    func(min float64) float64
		failed bool
	}{
		{"leak: +10 MiB a minute", func(m float64) float64 { return 500 + 10*m }, true},
		{"breathing", func(m float64) float64 {
			if int(m*12)%2 == 0 {
				return 500
			}
			return 560
		}, false},
		{"step in the warm-up", func(m float64) float64 {
			if m < 0.5 {
				return 200
			}
			return 500
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := analyze(cfg, NewTracker(stride), nil, samples(tc.rss), t0, t0.Add(10*time.Minute))
			failed := strings.Contains(strings.Join(res.Failures, ";"), "RSS drifted")
			if failed != tc.failed {
				t.Errorf("drift %+.1f MiB/h, %+.1f%%: failed = %v, want %v (%q)",
					res.Drift.SlopePerHour/mb, 100*res.Drift.Growth(), failed, tc.failed, res.Failures)
			}
		})
	}
	d := computeDrift(samples(func(m float64) float64 { return 500 + 10*m }), t0.Add(time.Minute))
	if slope := d.SlopePerHour / mb; slope < 599 || slope > 601 {
		t.Errorf("slope = %v MiB/h, want 600", slope)
	}
}

// Every camera meets every kind of fault, in turn.
func TestSchedule(t *testing.T) {
	seen := make(map[int]map[FaultKind]bool)
	for k := range 8 * 4 {
		cam, kind := schedule(k, 8, AllFaults)
		if cam != k%8 {
			t.Fatalf("fault %d on camera %d, want %d", k, cam, k%8)
		}
		if seen[cam] == nil {
			seen[cam] = make(map[FaultKind]bool)
		}
		seen[cam][kind] = true
	}
	for cam, kinds := range seen {
		if len(kinds) != len(AllFaults) {
			t.Errorf("camera %d met %v in 4 rounds, want all %d kinds", cam, kinds, len(AllFaults))
		}
	}
	if _, err := ParseFaults("drop,lag"); err == nil || !strings.Contains(err.Error(), `unknown fault "lag"`) {
		t.Errorf("ParseFaults(drop,lag) = %v", err)
	}
}

func TestParseMetrics(t *testing.T) {
	body := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 87
process_open_fds 41
actiond_stream_dropped_windows_total{stream="cam1"} 2
actiond_stream_dropped_windows_total{stream="cam2",x="a}b"} 3
actiond_window_to_event_seconds_sum{stream="cam1"} 1.5e-01
`
	m := procstat.ParseMetrics([]byte(body))
	for name, want := range map[string]float64{"go_goroutines": 87, "process_open_fds": 41,
		"actiond_stream_dropped_windows_total": 5, "actiond_window_to_event_seconds_sum": 0.15} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}

// The report replaces what is between the markers and nothing else.
func TestReplaceSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "RELIABILITY.md")
	before := "# R\n\n## Soak\n\nintro\n\n" + SectionBegin + "\nold figures\n" + SectionEnd + "\n\n## After\n"
	if err := os.WriteFile(p, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // twice: the markers survive
		if err := replaceSection(p, "new figures"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	want := "# R\n\n## Soak\n\nintro\n\n" + SectionBegin + "\n\nnew figures\n" + SectionEnd + "\n\n## After\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if err := replaceSection(filepath.Join(t.TempDir(), "none.md"), "x"); err == nil {
		t.Error("no file: no error")
	}
}

// The report and the plot are written for a run with gaps, faults and
// samples (the plot is checked by eye: soak/soak.png).
func TestWriteReport(t *testing.T) {
	cfg := testConfig()
	cfg.Out, cfg.Progress = t.TempDir(), &strings.Builder{}
	tr := NewTracker(stride)
	f := newFeed(tr, "cam1")
	f.windows(50)
	f.skip(4)
	f.windows(50)
	var samples []Sample
	for i := range 30 {
		samples = append(samples, Sample{At: t0.Add(time.Duration(i) * 5 * time.Second), RSS: int64(300+i%3) << 20})
	}
	faults := []Fault{{N: 1, Stream: "cam1", Kind: FaultStall, Start: t0.Add(33 * time.Second), End: t0.Add(39 * time.Second)}}
	res := analyze(cfg, tr, faults, samples, t0, f.at())
	if err := writeReport(cfg, res); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(cfg.Out, "soak-report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Result: **PASS**", "| window gaps inside faults | 1 (4 windows) |", "| stall | 1 | 1 | 4 |", "![actiond RSS and window latency over the soak](soak.png)"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("report lacks %q:\n%s", w, md)
		}
	}
	if st, err := os.Stat(filepath.Join(cfg.Out, "soak.png")); err != nil || st.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}
}
