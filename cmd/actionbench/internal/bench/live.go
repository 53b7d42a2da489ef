package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/actiond/actiond/client"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/procstat"
	"github.com/actiond/actiond/internal/serveproc"
	"github.com/actiond/actiond/internal/stats"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The live section's fixed workload: what issue #6 item 6 names.
const (
	liveWidth, liveHeight, liveFPS = 1280, 720, 25
	liveWindow                     = 10 * time.Second
	liveStride                     = 1250 * time.Millisecond
	// liveWarmWindows is how many windows every stream must have delivered
	// before the measured period starts: the first one shows the stream
	// runs, the second that it is past its start-up burst.
	liveWarmWindows = 2
	// liveMinResults is how many results every stream should have in the
	// measured period for its served stride to be measured: an overloaded
	// N's period is extended (up to liveMaxPeriod) until each has them.
	liveMinResults = 8
	liveMaxPeriod  = 60 * time.Second
	// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat
	// times: 100 on every Linux that Go supports.
	clockTicks = 100
)

// livePoint is one run of actiond with N cameras.
type livePoint struct {
	N          int
	Period     time.Duration // measured
	CPU        float64       // actiond, cores (utime+stime over the period)
	BenchCPU   float64       // this process: the simulator and the subscriber
	MachineCPU float64       // every process on the machine, cores busy
	RSS        int64         // actiond's VmRSS over the period, bytes: the median of one sample a second
	RSSPeak    int64         // the largest VmRSS sampled during the period
	Expected   int           // N × period / stride
	Events     int           // WindowResults received in the period
	P50, P99   time.Duration // window complete -> subscriber has its result
	Max        time.Duration
	// Ingest losses in the period, summed over the streams.
	DroppedFrames, DroppedWindows, PacketsLost, DecodeErrors, Reconnects uint64
	SubDropped                                                           uint64 // events the subscriber's queue dropped
	// Skipped windows (latest wins) over the period, all streams; Reused
	// results (skip_static) among Events.
	Skipped uint64
	Reused  int
	// Fairness is the shortest served stride of a stream ÷ the longest
	// (servedFairness; 1: every stream served alike); Fewest and Most are
	// the fewest and most results of a stream in the period.
	Fairness     float64
	Fewest, Most int
	// EffStride is the mean of the streams' effective_stride at the end of
	// the period (0 when the server does not report it).
	EffStride time.Duration
	InferBusy float64
	MeanBatch float64
	RunMean   time.Duration // mean time of one model run in the period
	Profiled  bool
	Err       string // why the point is incomplete
}

// perStream is (RSS − base) / N in MiB.
func (p livePoint) perStream(base int64) float64 {
	return float64(p.RSS-base) / float64(p.N) / (1 << 20)
}

// drops is every ingest loss of the period.
func (p livePoint) drops() uint64 {
	return p.DroppedFrames + p.DroppedWindows + p.PacketsLost + p.DecodeErrors
}

// meetsGoal: served at the full stride: p99 within 1 s, nothing lost,
// nothing skipped.
func (p livePoint) meetsGoal() bool {
	return p.Err == "" && p.P99 <= time.Second && p.drops() == 0 && p.SubDropped == 0 && p.Skipped == 0 && p.Events >= p.Expected*9/10
}

// liveSeries is one run of the camera counts: this actiond, the peer, or
// this actiond with half the cameras still.
type liveSeries struct {
	Name    string // in the report
	Actiond string
	Static  bool // odd cameras show a still picture, with skip_static on
	BaseRSS int64
	Points  []livePoint
	Stopped string
}

type liveResult struct {
	Model      string
	Source     string // the 720p file the simulator serves
	Bitrate    float64
	BaseRSS    int64 // model loaded, no streams
	Config     string
	LoadedLine string // actiond's "model loaded" log line: its effective setup
	Command    string
	Points     []livePoint
	Stopped    string // why larger N were not run
	// Others are the peer's series and the half-still one, when run.
	Others      []*liveSeries
	ProfileN    int
	CPUTop      []string // go tool pprof -top of the CPU profile
	AllocTop    []string
	ProfileNote string
	Plot        string
}

// parseInts reads "1,2,4".
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-live: want camera counts like 1,2,4, got %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchLive runs the live capacity benchmark: for each N, one actiond with N
// cameras from the in-process simulator and one subscriber.
func benchLive(ctx context.Context, c config, model string, ns []int) (*liveResult, error) {
	res := &liveResult{Model: model, ProfileN: c.liveProfile}
	if err := ensureModel(c, model); err != nil {
		return nil, err
	}
	src, err := liveSource(c)
	if err != nil {
		return nil, err
	}
	res.Source = src
	// The simulator's logs would drown the progress lines; warnings only.
	simLog := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "sim")
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Bitrate: c.liveBitrate, Logger: simLog})
	if err := sim.Start(); err != nil {
		return nil, err
	}
	defer sim.Close()
	cams := &liveCameras{sim: sim, src: src, c: c, t0: time.Now()}

	progress("live: actiond with the model loaded and no streams")
	if res.BaseRSS, _, err = liveBaseline(ctx, c, model); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	main := &liveSeries{Name: "this actiond", Actiond: c.actiond, BaseRSS: res.BaseRSS}
	series := []*liveSeries{main}
	if c.peer != "" {
		pc := c
		pc.actiond = c.peer
		progress("live: the peer actiond (%s) with the model loaded and no streams", c.peer)
		base, _, err := liveBaseline(ctx, pc, model)
		if err != nil {
			return nil, fmt.Errorf("peer baseline: %w", err)
		}
		series = append(series, &liveSeries{Name: "peer " + c.peer, Actiond: c.peer, BaseRSS: base})
	}
	if c.liveStatic {
		series = append(series, &liveSeries{Name: "this actiond, half the cameras still (skip_static)", Actiond: c.actiond, Static: true, BaseRSS: res.BaseRSS})
	}
	for si, se := range series {
		sc := c
		sc.actiond = se.Actiond
		if si > 0 {
			sc.liveProfile = 0
		}
		for _, n := range ns {
			if err := cams.ensure(ctx, n, se.Static); err != nil {
				return nil, err
			}
			res.Bitrate = sim.Stats(camName(0)).Bitrate
			progress("live: %s: %d camera(s), %s measured", se.Name, n, c.livePeriod)
			pt, info, err := livePointRun(ctx, sc, model, sim, n, res, se, si)
			if err != nil {
				return nil, fmt.Errorf("%s, %d cameras: %w", se.Name, n, err)
			}
			if si == 0 {
				res.Config, res.LoadedLine, res.Command = info.config, info.loaded, info.command
			}
			se.Points = append(se.Points, pt)
			progress("live: %s: N=%d: actiond %.2f cores, bench %.2f, machine %.2f; RSS %.0f MiB (%.1f MiB/stream over the base); events %d/%d (%d reused); skipped %d; fairness %.2f; effective stride %s s; p50 %s p99 %s; drops %d frames, %d windows, %d packets, %d decode errors; model busy %.0f%%, mean batch %.2f %s",
				se.Name, n, pt.CPU, pt.BenchCPU, pt.MachineCPU, mib(pt.RSS), pt.perStream(se.BaseRSS), pt.Events, pt.Expected, pt.Reused, pt.Skipped, pt.Fairness, secs(pt.EffStride),
				secs(pt.P50), secs(pt.P99), pt.DroppedFrames, pt.DroppedWindows, pt.PacketsLost, pt.DecodeErrors, 100*pt.InferBusy, pt.MeanBatch, pt.Err)
			// Every N up to 16 is run: past it, only while it can still
			// tell something.
			if n >= 16 && (pt.P99 > c.liveStopP99 || pt.Events < pt.Expected/2) {
				if i := slices.Index(ns, n); i < len(ns)-1 {
					se.Stopped = fmt.Sprintf("Stopped after N = %d (p99 %s s, %d of %d results): N = %s not run, as they can only be worse.",
						n, secs(pt.P99), pt.Events, pt.Expected, intsList(ns[i+1:]))
					progress("live: %s: %s", se.Name, se.Stopped)
				}
				break
			}
		}
	}
	res.Points, res.Stopped, res.Others = main.Points, main.Stopped, series[1:]
	return res, nil
}

// ensureModel builds the untrained PP-TSMv2 unless it is there.
func ensureModel(c config, model string) error {
	if _, err := os.Stat(model); err == nil {
		return nil
	}
	progress("building the untrained PP-TSMv2 (%s)", model)
	return runQuiet(c.actiond, "model", "build", "pptsmv2", "--random-seed", "1", "--out", model)
}

// liveSource makes the 720p25 clip the cameras show from c.clip (real
// footage, scaled up: texture and motion everywhere, unlike a synthetic
// scene's still background), once. The simulator re-encodes it at
// -live-bitrate.
func liveSource(c config) (string, error) {
	out := filepath.Join(c.work, fmt.Sprintf("live-%dp%d.mp4", liveHeight, liveFPS))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	progress("live: scaling %s to %dx%d at %d fps (%s)", c.clip, liveWidth, liveHeight, liveFPS, out)
	tmp := out + ".tmp.mp4"
	if err := runQuiet("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", c.clip, "-an",
		"-vf", fmt.Sprintf("scale=%d:%d,fps=%d", liveWidth, liveHeight, liveFPS),
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-g", strconv.Itoa(liveFPS), "-bf", "0", tmp); err != nil {
		return "", err
	}
	return out, os.Rename(tmp, out)
}

func camName(i int) string { return fmt.Sprintf("cam%02d", i+1) }

// liveCameras adds the simulator's cameras as N grows, each at its own
// phase within a second: a path starts at its first key frame (one per
// second), so its windows close at that phase plus multiples of the
// stride. Phases of i·0.618 s (mod 1) spread any first N cameras evenly,
// as real cameras, switched on at random moments, are; all at one phase
// would make every window of every stream close at once.
type liveCameras struct {
	sim    *camsim.Simulator
	src    string
	still  string // the source's first frame for 10 s, made on first use
	c      config
	t0     time.Time
	n      int
	stills int
}

// stillName is the path of the i-th camera of a half-still run: odd
// cameras show the still picture.
func stillName(i int) string { return fmt.Sprintf("still%02d", i+1) }

// ensure adds cameras up to n; with still, the odd ones of the first n
// have a still twin too.
func (lc *liveCameras) ensure(ctx context.Context, n int, still bool) error {
	if err := lc.ensureMoving(ctx, n); err != nil || !still {
		return err
	}
	if lc.still == "" {
		out := filepath.Join(lc.c.work, fmt.Sprintf("live-%dp%d-still.mp4", liveHeight, liveFPS))
		if _, err := os.Stat(out); err != nil {
			progress("live: a still %dx%d clip from the first frame of %s (%s)", liveWidth, liveHeight, lc.src, out)
			tmp := out + ".tmp.mp4"
			if err := runQuiet("ffmpeg", "-nostdin", "-v", "error", "-y", "-i", lc.src, "-an",
				"-vf", fmt.Sprintf("trim=end_frame=1,loop=loop=%d:size=1:start=0,setpts=N/%d/TB", 10*liveFPS-1, liveFPS),
				"-c:v", "libx264", "-preset", "veryfast", "-crf", "12", "-g", strconv.Itoa(liveFPS), "-bf", "0", tmp); err != nil {
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
		}
		lc.still = out
	}
	for ; lc.stills < n; lc.stills++ {
		if lc.stills%2 == 1 {
			if err := lc.sim.AddFile(stillName(lc.stills), lc.still); err != nil {
				return err
			}
		}
	}
	return nil
}

func (lc *liveCameras) ensureMoving(ctx context.Context, n int) error {
	for ; lc.n < n; lc.n++ {
		phase := time.Duration(math.Mod(float64(lc.n)*0.6180339887, 1) * float64(time.Second))
		since := time.Since(lc.t0)
		at := since.Truncate(time.Second) + phase
		if at < since {
			at += time.Second
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(at - since):
		}
		if err := lc.sim.AddFile(camName(lc.n), lc.src); err != nil {
			return err
		}
	}
	return nil
}

// startActiond runs `actiond serve` with a pprof listener, killed with
// its process group when the benchmark ends, and by the kernel if the
// benchmark dies first.
func startActiond(ctx context.Context, c config, cfgPath, logPath string) (*serveproc.Proc, error) {
	return serveproc.Start(ctx, c.actiond, []string{"serve", "--config", cfgPath, "--pprof-listen", "127.0.0.1:0"}, logPath, 60*time.Second)
}

// waitServing polls the health service until the model is loaded.
func waitServing(ctx context.Context, cl *client.Client, p *serveproc.Proc) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if st, err := cl.Health(ctx, ""); err == nil && st == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("actiond not SERVING within 3 min: %s", serveproc.Tail(p.LogPath))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.Done():
			return fmt.Errorf("actiond exited while loading (%v): %s", p.Err(), serveproc.Tail(p.LogPath))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// liveConfigYAML is the server's configuration for n cameras: every key
// not named here is at its default, so the run measures what the server
// does by default.
// With static, the odd cameras show the still picture with skip_static on.
func liveConfigYAML(model string, sim *camsim.Simulator, n int, static bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\nmodel: %s\nlog:\n  level: info\n", model)
	if n == 0 {
		return b.String()
	}
	b.WriteString("streams:\n")
	for i := range n {
		url, extra := sim.URL(camName(i)), ""
		if static && i%2 == 1 {
			url, extra = sim.URL(stillName(i)), "    skip_static: true\n"
		}
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    window: %s\n    stride: %s\n%s", camName(i), url, liveWindow, liveStride, extra)
	}
	return b.String()
}

// liveBaseline is actiond's RSS with the model loaded and no streams.
func liveBaseline(ctx context.Context, c config, model string) (int64, string, error) {
	cfgPath := filepath.Join(c.work, "live-0.yaml")
	if err := os.WriteFile(cfgPath, []byte(liveConfigYAML(model, nil, 0, false)), 0o644); err != nil {
		return 0, "", err
	}
	p, err := startActiond(ctx, c, cfgPath, filepath.Join(c.work, "live-0.log"))
	if err != nil {
		return 0, "", err
	}
	defer p.Stop(15 * time.Second) //nolint:errcheck // how it ends does not change the figures
	cl, err := client.Dial(ctx, p.GRPC)
	if err != nil {
		return 0, "", err
	}
	defer cl.Close()
	if err := waitServing(ctx, cl, p); err != nil {
		return 0, "", err
	}
	// Let the loader's garbage go before reading.
	select {
	case <-ctx.Done():
		return 0, "", ctx.Err()
	case <-time.After(3 * time.Second):
	}
	rss, err := procstat.RSS(p.Cmd.Process.Pid)
	return rss, cfgPath, err
}

type liveRunInfo struct{ config, loaded, command string }

// liveLatencies collects the subscriber's view: per WindowResult, when it
// arrived and its latency from the window's completion.
type liveLatencies struct {
	mu      sync.Mutex
	at      []time.Time
	done    []time.Time // the window's completed_time
	lat     []time.Duration
	stream  []string
	reused  []bool
	per     map[string]int
	dropped uint64
	err     error
}

func (l *liveLatencies) subscribe(ctx context.Context, cl *client.Client) {
	req := &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}}
	for ev, err := range cl.Subscribe(ctx, req) {
		now := time.Now()
		l.mu.Lock()
		switch {
		case err != nil:
			if ctx.Err() == nil {
				l.err = err
			}
		case ev.GetDropped() != nil:
			l.dropped += ev.GetDropped().GetCount()
		case ev.GetWindowResult() != nil:
			w := ev.GetWindowResult()
			if w.GetCompletedTime() == nil {
				l.err = errors.New("WindowResult without completed_time: this actiond predates the field")
				break
			}
			l.at = append(l.at, now)
			l.done = append(l.done, w.GetCompletedTime().AsTime())
			l.lat = append(l.lat, now.Sub(w.GetCompletedTime().AsTime()))
			l.stream = append(l.stream, ev.GetStream())
			l.reused = append(l.reused, w.GetReused())
			l.per[ev.GetStream()]++
		}
		l.mu.Unlock()
	}
}

// fewestSince is the fewest results that one of n streams has had since t0.
func (l *liveLatencies) fewestSince(t0 time.Time, n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	per := map[string]int{}
	for i, at := range l.at {
		if !at.Before(t0) {
			per[l.stream[i]]++
		}
	}
	if len(per) < n {
		return 0
	}
	fewest := math.MaxInt
	for _, k := range per {
		fewest = min(fewest, k)
	}
	return fewest
}

// warm reports whether every one of n streams has had min windows.
func (l *liveLatencies) warm(n, min int) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return false, l.err
	}
	if len(l.per) < n {
		return false, nil
	}
	for _, k := range l.per {
		if k < min {
			return false, nil
		}
	}
	return true, nil
}

func livePointRun(ctx context.Context, c config, model string, sim *camsim.Simulator, n int, res *liveResult, se *liveSeries, si int) (livePoint, liveRunInfo, error) {
	pt := livePoint{N: n}
	var info liveRunInfo
	info.config = liveConfigYAML(model, sim, n, se.Static)
	tag := ""
	if si > 0 {
		tag = fmt.Sprintf("-s%d", si)
	}
	cfgPath := filepath.Join(c.work, fmt.Sprintf("live%s-%d.yaml", tag, n))
	if err := os.WriteFile(cfgPath, []byte(info.config), 0o644); err != nil {
		return pt, info, err
	}
	info.command = fmt.Sprintf("%s serve --config %s --pprof-listen 127.0.0.1:0", c.actiond, cfgPath)
	p, err := startActiond(ctx, c, cfgPath, filepath.Join(c.work, fmt.Sprintf("live%s-%d.log", tag, n)))
	if err != nil {
		return pt, info, err
	}
	defer p.Stop(15 * time.Second) //nolint:errcheck // how it ends does not change the figures
	cl, err := client.Dial(ctx, p.GRPC)
	if err != nil {
		return pt, info, err
	}
	defer cl.Close()
	if err := waitServing(ctx, cl, p); err != nil {
		return pt, info, err
	}
	info.loaded = loadedLine(p.LogPath)

	subCtx, cancel := context.WithCancel(ctx)
	lat := &liveLatencies{per: map[string]int{}}
	var subDone sync.WaitGroup
	subDone.Go(func() { lat.subscribe(subCtx, cl) })
	defer func() { cancel(); subDone.Wait() }()

	// Warm up: every stream past its first windows, bounded.
	warmBy := time.Now().Add(liveWindow + 90*time.Second)
	for {
		ok, err := lat.warm(n, liveWarmWindows)
		if err != nil {
			return pt, info, err
		}
		if ok {
			break
		}
		if time.Now().After(warmBy) {
			pt.Err = "not every stream delivered its first windows during the warm-up"
			break
		}
		select {
		case <-ctx.Done():
			return pt, info, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}

	pid := p.Cmd.Process.Pid
	cpu0, err := procCPU(strconv.Itoa(pid))
	if err != nil {
		return pt, info, err
	}
	self0, _ := procCPU("self")
	mach0, _ := machineCPU()
	ing0, err := ingestCounters(ctx, cl)
	if err != nil {
		return pt, info, err
	}
	met0, _ := scrape(p.Metrics)
	lat.mu.Lock()
	drop0 := lat.dropped
	lat.mu.Unlock()

	var prof sync.WaitGroup
	var profErr error
	var cpuProf, alloc0, alloc1 string
	if n == c.liveProfile {
		pt.Profiled = true
		cpuProf = filepath.Join(c.work, fmt.Sprintf("live-%d.cpu.pprof", n))
		alloc0 = filepath.Join(c.work, fmt.Sprintf("live-%d.allocs-start.pprof", n))
		alloc1 = filepath.Join(c.work, fmt.Sprintf("live-%d.allocs-end.pprof", n))
		if err := fetch(p.Pprof+"/debug/pprof/allocs", alloc0); err != nil {
			return pt, info, err
		}
		prof.Go(func() {
			profErr = fetch(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.Pprof, int(c.livePeriod.Seconds())), cpuProf)
		})
	}
	t0 := time.Now()
	var rssSamples []int64
	// An overloaded N serves each stream seldom: its period goes on until
	// every stream has liveMinResults results, at most liveMaxPeriod (the
	// profiled N keeps the profile's period).
	longest := max(c.livePeriod, liveMaxPeriod)
	if pt.Profiled {
		longest = c.livePeriod
	}
	for {
		el := time.Since(t0)
		if el >= longest || (el >= c.livePeriod && lat.fewestSince(t0, n) >= liveMinResults) {
			break
		}
		step := time.Second
		if el < c.livePeriod {
			step = min(step, c.livePeriod-el)
		}
		select {
		case <-ctx.Done():
			return pt, info, ctx.Err()
		case <-p.Done():
			return pt, info, fmt.Errorf("actiond exited during the measurement (%v): %s", p.Err(), serveproc.Tail(p.LogPath))
		case <-time.After(step):
		}
		if r, err := procstat.RSS(pid); err == nil {
			rssSamples = append(rssSamples, r)
		}
	}
	t1 := time.Now()
	pt.Period = t1.Sub(t0)
	cpu1, err := procCPU(strconv.Itoa(pid))
	if err != nil {
		return pt, info, err
	}
	self1, _ := procCPU("self")
	mach1, _ := machineCPU()
	ing1, err := ingestCounters(ctx, cl)
	if err != nil {
		return pt, info, err
	}
	met1, _ := scrape(p.Metrics)
	s := pt.Period.Seconds()
	pt.CPU = (cpu1 - cpu0) / s
	pt.BenchCPU = (self1 - self0) / s
	pt.MachineCPU = (mach1 - mach0) / s
	slices.Sort(rssSamples)
	pt.RSS, pt.RSSPeak = stats.Percentile(rssSamples, 0.5), stats.Percentile(rssSamples, 1)
	pt.DroppedFrames = ing1.droppedFrames - ing0.droppedFrames
	pt.DroppedWindows = ing1.droppedWindows - ing0.droppedWindows
	pt.PacketsLost = ing1.packetsLost - ing0.packetsLost
	pt.DecodeErrors = ing1.decodeErrors - ing0.decodeErrors
	pt.Reconnects = ing1.reconnects - ing0.reconnects
	pt.Skipped = ing1.skipped - ing0.skipped
	pt.EffStride = ing1.effStride
	pt.InferBusy = (met1["actiond_inference_seconds_sum"] - met0["actiond_inference_seconds_sum"]) / s
	if runs := met1["actiond_inference_batch_size_count"] - met0["actiond_inference_batch_size_count"]; runs > 0 {
		pt.MeanBatch = (met1["actiond_inference_batch_size_sum"] - met0["actiond_inference_batch_size_sum"]) / runs
		pt.RunMean = time.Duration((met1["actiond_inference_seconds_sum"] - met0["actiond_inference_seconds_sum"]) / runs * float64(time.Second))
	}
	pt.Expected = int(float64(n) * s / liveStride.Seconds())

	// Results of windows completed during the period may still be on their
	// way: give them a stride and the current p99 at most.
	time.Sleep(liveStride)
	lat.mu.Lock()
	var ls []time.Duration
	served := map[string]streamServed{}
	for i := range n {
		served[camName(i)] = streamServed{}
	}
	for i, at := range lat.at {
		s := served[lat.stream[i]]
		switch {
		case at.Before(t0):
			s.Before = lat.done[i]
		case at.Before(t1):
			ls = append(ls, lat.lat[i])
			s.In = append(s.In, lat.done[i])
			if lat.reused[i] {
				pt.Reused++
			}
		}
		served[lat.stream[i]] = s
	}
	pt.Fairness, pt.Fewest, pt.Most = servedFairness(served, t1)
	pt.SubDropped = lat.dropped - drop0
	lat.mu.Unlock()
	pt.Events = len(ls)
	slices.Sort(ls)
	if len(ls) > 0 {
		pt.P50, pt.P99, pt.Max = stats.Percentile(ls, 0.5), stats.Percentile(ls, 0.99), ls[len(ls)-1]
	}
	if pt.Profiled {
		prof.Wait()
		if profErr == nil {
			profErr = fetch(p.Pprof+"/debug/pprof/allocs", alloc1)
		}
		if profErr != nil {
			res.ProfileNote = fmt.Sprintf("profiles failed: %v", profErr)
		} else {
			res.CPUTop, res.AllocTop, res.ProfileNote = pprofTops(c, cpuProf, alloc0, alloc1, pt)
		}
	}
	return pt, info, nil
}

// streamServed is when one stream's windows that got a result were
// completed: Before, the last one before the period (zero if none); In,
// those in the period.
type streamServed struct {
	Before time.Time
	In     []time.Time
}

// servedStride is how often a stream was served over a period ending at
// end: the time from its last result before the period (or, without one,
// its first in it) to its last in it, over the results in between; when
// the time since its last result is longer than that, as if one came at
// end (a stream no longer served shows as such). ok is false without two
// results to measure between.
func servedStride(s streamServed, end time.Time) (time.Duration, bool) {
	first, k := s.Before, len(s.In)
	if len(s.In) == 0 {
		return 0, false
	}
	if first.IsZero() {
		first, k = slices.MinFunc(s.In, time.Time.Compare), k-1
	}
	if k < 1 {
		return 0, false
	}
	last := slices.MaxFunc(s.In, time.Time.Compare)
	stride := last.Sub(first) / time.Duration(k)
	if end.Sub(last) > stride {
		stride = end.Sub(first) / time.Duration(k+1)
	}
	return stride, true
}

// servedFairness compares how often the streams were served in a period
// ending at end: the shortest servedStride ÷ the longest (1: every stream
// served equally often; 0 when a stream could not be measured). Unlike the
// fewest results ÷ the most, it is not quantised by the count: round robin
// over 16 streams gives each 3 or 4 results in 25 s (0.75 as a count
// ratio) at one served stride. It also returns the fewest and the most
// results of a stream in the period.
func servedFairness(served map[string]streamServed, end time.Time) (fairness float64, fewest, most int) {
	if len(served) == 0 {
		return 0, 0, 0
	}
	fewest = math.MaxInt
	var short, long time.Duration
	measured := true
	for _, s := range served {
		fewest, most = min(fewest, len(s.In)), max(most, len(s.In))
		stride, ok := servedStride(s, end)
		if !ok || stride <= 0 {
			measured = false
			continue
		}
		if short == 0 || stride < short {
			short = stride
		}
		long = max(long, stride)
	}
	if !measured || long <= 0 {
		return 0, fewest, most
	}
	return float64(short) / float64(long), fewest, most
}

// loadedLine is actiond's "model loaded" log line: the setup it runs with,
// in its own words, whatever options a later version adds to it.
func loadedLine(path string) string {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "model loaded") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

type ingestTotals struct {
	droppedFrames, droppedWindows, packetsLost, decodeErrors, reconnects, skipped uint64
	effStride                                                                     time.Duration // mean over the streams reporting it
}

func ingestCounters(ctx context.Context, cl *client.Client) (ingestTotals, error) {
	var t ingestTotals
	streams, err := cl.ListStreams(ctx)
	if err != nil {
		return t, err
	}
	for _, s := range streams {
		st := s.GetStatus()
		t.droppedFrames += st.GetDroppedFrames()
		t.droppedWindows += st.GetDroppedWindows()
		t.packetsLost += st.GetPacketsLost()
		t.decodeErrors += st.GetDecodeErrors()
		t.reconnects += st.GetReconnectCount()
		t.skipped += st.GetSkippedWindows()
	}
	var k int
	for _, s := range streams {
		if d := s.GetStatus().GetEffectiveStride(); d != nil {
			t.effStride += d.AsDuration()
			k++
		}
	}
	if k > 0 {
		t.effStride /= time.Duration(k)
	}
	return t, nil
}

// procCPU is a process's user+system CPU time in seconds (pid or "self").
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis (state is field 3, utime 14, stime 15).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%s/stat: too short", pid)
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%s/stat: %w", pid, err)
	}
	return (ut + st) / clockTicks, nil
}

// machineCPU is the machine's busy CPU time in seconds, all cores: what
// neighbours take shows as machine − actiond − this process.
func machineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy float64
	for i, v := range f[1:8] { // user nice system idle iowait irq softirq
		x, _ := strconv.ParseFloat(v, 64)
		if i != 3 && i != 4 {
			busy += x
		}
	}
	return busy / clockTicks, nil
}

// scrape reads the samples of a Prometheus text page, summed over labels.
func scrape(addr string) (map[string]float64, error) {
	return procstat.Scrape(context.Background(), httpClient, addr)
}

var httpClient = &http.Client{Timeout: 5 * time.Minute}

// fetch saves a URL on the pprof server to a file.
func fetch(url, path string) error {
	resp, err := httpClient.Get("http://" + url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pprofTops runs go tool pprof -top on the CPU profile and on the
// allocations made during the period (end minus start).
func pprofTops(c config, cpuProf, alloc0, alloc1 string, pt livePoint) (cpuTop, allocTop []string, note string) {
	top := func(args ...string) ([]string, error) {
		out, err := exec.Command("go", append([]string{"tool", "pprof"}, args...)...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof %s: %v: %s", join(args), err, out)
		}
		return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), nil
	}
	cpuTop, err1 := top("-top", "-nodecount=15", c.actiond, cpuProf)
	allocTop, err2 := top("-top", "-nodecount=10", "-sample_index=alloc_space", "-base", alloc0, c.actiond, alloc1)
	if err := errors.Join(err1, err2); err != nil {
		return cpuTop, allocTop, err.Error()
	}
	// "Duration: 40s, Total samples = 12.3s (30.7%)": how much of the
	// measured CPU the Go profiler saw.
	for _, l := range cpuTop {
		if _, rest, ok := strings.Cut(l, "Total samples = "); ok {
			v, _, _ := strings.Cut(rest, " ")
			if d, err := time.ParseDuration(v); err == nil && pt.CPU > 0 {
				note = fmt.Sprintf("The CPU profile holds %.1f s of samples against %.1f s of CPU that /proc counts for actiond over the same period (%.0f%%)",
					d.Seconds(), pt.CPU*pt.Period.Seconds(), 100*d.Seconds()/(pt.CPU*pt.Period.Seconds()))
			}
		}
	}
	return cpuTop, allocTop, note
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

// runLive runs the Live section as -live asks (nil when it is empty) and
// draws its plot. Ctrl-C or SIGTERM ends it early: actiond is stopped and
// the simulator closed on the way out.
func runLive(c config) (*liveResult, error) {
	ns, err := parseInts(c.live)
	if err != nil || len(ns) == 0 {
		return nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := benchLive(ctx, c, filepath.Join(c.work, "pptsmv2-seed1.onnx"), ns)
	if err != nil {
		return nil, err
	}
	if c.livePlot != "" && len(r.Points) > 0 {
		if err := writeLivePlot(c.livePlot, r.Points, r.BaseRSS); err != nil {
			return nil, err
		}
		r.Plot = c.livePlot
		progress("live: wrote %s", c.livePlot)
	}
	return r, nil
}

// runLiveOnly is -live-only: the Live section alone, into -out.
func runLiveOnly(c config, r *report, start time.Time) error {
	var err error
	if r.live, err = runLive(c); err != nil {
		return fmt.Errorf("live: %w", err)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Live capacity (actionbench -live-only)\n\nWritten by `go run ./cmd/actionbench -live-only` on %s in %s; machine: %s, %d cores.\n\n", time.Now().UTC().Format("2006-01-02"), time.Since(start).Round(time.Second), r.machine.CPU, r.machine.Cores)
	liveMarkdown(p, c, r.live)
	if err := os.WriteFile(c.out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	progress("wrote %s in %s", c.out, time.Since(start).Round(time.Second))
	return nil
}
