// Package soak is `make soak`: it runs a real `actiond serve` child process
// against simulated cameras for a bounded time while breaking the cameras
// one after another, and reports whether the server kept up: memory drift,
// events lost outside the faults, latency. It must not be run by
// `go test ./...` in full: only its pure parts have unit tests.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/actiond/actiond/client"
	"github.com/actiond/actiond/demo"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/procstat"
	"github.com/actiond/actiond/internal/serveproc"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// Config configures a soak run. NewConfig fills in the defaults.
type Config struct {
	// Actiond is the binary to run as `serve`. It defaults to bin/actiond.
	Actiond string
	// Duration is the measured run, from the first window of every
	// camera to the stop. It defaults to 30m.
	Duration time.Duration
	// Cameras is the number of simulated cameras (streams). It defaults to 8.
	Cameras int
	// Width, Height and FPS shape every camera's picture. They default to
	// 640x360 at 25 fps.
	Width, Height, FPS int
	// Model is "motion" (the default: built by actiond), "pptsmv2" (the
	// untrained PP-TSMv2, seed 1: for its cost only) or an ONNX file.
	Model string
	// Window and Stride are every stream's. They default to the demo's
	// 2.5s and 0.625s: short windows recover quickly after a fault, and
	// the bounce scene then makes actions start and end all the time.
	Window, Stride time.Duration
	// Transport is every stream's: auto, udp or tcp. It defaults to auto.
	Transport string
	// Threads is inference.threads; 0 (the default) is all cores.
	Threads int
	// FaultPeriod is the time between two faults, each on the next camera.
	// It defaults to 20s.
	FaultPeriod time.Duration
	// Faults are the kinds injected in turn. It defaults to AllFaults.
	Faults []FaultKind
	// StallFor is how long a stall lasts. It defaults to 6s: longer than
	// the server's max_timestamp_jump at the default window (2 windows,
	// 5s), so that the stream starts a new epoch (a shorter stall is
	// bridged: its windows repeat the frames around it), and shorter than
	// its 10s read timeout, which would make it a reconnect.
	StallFor time.Duration
	// Loss is the share of packets a loss fault drops, for LossFor. They
	// default to 0.05 for 5s.
	Loss    float64
	LossFor time.Duration
	// Slack is how long after a fault's end a gap that starts then is
	// still the fault's. It defaults to 5s.
	Slack time.Duration
	// SampleEvery is the period of the RSS and /metrics samples. It
	// defaults to 5s.
	SampleEvery time.Duration
	// WarmUp is left out of the drift figures. It defaults to a tenth of
	// Duration, between 30s and 5m.
	WarmUp time.Duration
	// MaxRSSSlope (MiB per hour) and MaxRSSGrowth (fraction) bound the
	// drift after the warm-up: the run fails when both are exceeded (a
	// leak raises both; a heap that breathes moves one or the other).
	// They default to 32 MiB/h and 0.05.
	MaxRSSSlope  float64
	MaxRSSGrowth float64
	// Work receives the model, the server's configuration and the logs.
	// It defaults to .cache/soak.
	Work string
	// Out receives the report (soak-report.md) and its plot (soak.png).
	// It defaults to soak.
	Out string
	// Reliability, when set, is a file (RELIABILITY.md) whose section
	// between SectionBegin and SectionEnd is replaced by the report.
	Reliability string
	// Command is how the run was started, for the report.
	Command string
	// Progress receives the progress lines. It defaults to os.Stdout.
	Progress io.Writer
}

// NewConfig returns the defaults.
func NewConfig() Config {
	return Config{
		Actiond: "bin/actiond", Duration: 30 * time.Minute, Cameras: 8,
		Width: 640, Height: 360, FPS: 25, Model: "motion",
		Window: demo.DemoWindow, Stride: demo.DemoStride, Transport: "auto",
		FaultPeriod: 20 * time.Second, Faults: AllFaults, StallFor: 6 * time.Second,
		Loss: 0.05, LossFor: 5 * time.Second, Slack: 5 * time.Second, SampleEvery: 5 * time.Second,
		MaxRSSSlope: 32, MaxRSSGrowth: 0.05, Work: ".cache/soak", Out: "soak",
		Progress: os.Stdout,
	}
}

func (c *Config) settle() error {
	if c.WarmUp == 0 {
		c.WarmUp = min(max(c.Duration/10, 30*time.Second), 5*time.Minute)
	}
	switch {
	case c.Cameras < 1:
		return fmt.Errorf("cameras: must be at least 1, got %d", c.Cameras)
	case c.Duration <= 0:
		return fmt.Errorf("duration: must be positive, got %v", c.Duration)
	case c.Stride <= 0 || c.Window <= 0:
		return fmt.Errorf("window and stride: must be positive, got %v and %v", c.Window, c.Stride)
	case c.FaultPeriod <= 0:
		return fmt.Errorf("fault-period: must be positive, got %v", c.FaultPeriod)
	case c.StallFor >= c.FaultPeriod || c.LossFor >= c.FaultPeriod:
		return fmt.Errorf("stall and loss (%v, %v) must be shorter than the fault period (%v)", c.StallFor, c.LossFor, c.FaultPeriod)
	case c.WarmUp >= c.Duration:
		return fmt.Errorf("warm-up (%v) must be shorter than the duration (%v)", c.WarmUp, c.Duration)
	}
	if c.Progress == nil {
		c.Progress = os.Stdout
	}
	return nil
}

// cooldown is the end of the run without new faults: long enough for the
// last fault's camera to come back and fill a window, so that the silent
// check at the end tells a stream that never recovered.
func (c *Config) cooldown() time.Duration {
	return min(c.Window+c.Slack+10*time.Second, c.Duration/4)
}

// quiet is how long after its last window's end a stream counts as silent
// at the end of the run.
func (c *Config) quiet() time.Duration { return 2*c.Stride + c.Slack }

// ErrFailed is returned (wrapped) when the run completed but the server
// did not pass: events lost, memory drifted, the server failed.
var ErrFailed = errors.New("soak failed")

// Run runs the soak until Duration has passed or ctx ends (Ctrl-C: the
// report is still written, marked interrupted, and Run returns an error).
// Every process and goroutine it starts is stopped before it returns.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.settle(); err != nil {
		return err
	}
	for _, d := range []string{cfg.Work, cfg.Out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, "soak: "+format+"\n", args...) }

	model, err := prepareModel(cfg)
	if err != nil {
		return err
	}

	// The cameras, in this process.
	simLog, err := os.Create(filepath.Join(cfg.Work, "sim.log"))
	if err != nil {
		return err
	}
	defer simLog.Close()
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(simLog, nil)).With("component", "sim")})
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()
	names := make([]string, cfg.Cameras)
	for i := range names {
		names[i] = fmt.Sprintf("cam%d", i+1)
	}
	// One encoding (the slow part of the start), served by every camera.
	say("encoding the cameras' clip (%dx%d at %d fps, the demo's bounce scene)", cfg.Width, cfg.Height, cfg.FPS)
	if err := sim.AddSceneSequence(names[0], cfg.Width, cfg.Height, cfg.FPS, demo.DemoBounce); err != nil {
		return err
	}
	for _, n := range names[1:] {
		if err := sim.AddCopy(n, names[0]); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	// The server, a child process.
	cfgPath := filepath.Join(cfg.Work, "actiond.yaml")
	if err := os.WriteFile(cfgPath, []byte(serverConfig(cfg, model, sim, names)), 0o644); err != nil {
		return err
	}
	logPath := filepath.Join(cfg.Work, "actiond.log")
	srv, err := startServer(ctx, cfg.Actiond, cfgPath, logPath)
	if err != nil {
		return err
	}
	stopped := false
	var stopErr error
	stopServer := func() error {
		if !stopped {
			stopped = true
			stopErr = srv.Stop(15 * time.Second)
		}
		return stopErr
	}
	defer stopServer()
	say("actiond serve (pid %d) on %s, metrics %s, log %s", srv.Cmd.Process.Pid, srv.GRPC, srv.Metrics, logPath)

	// The subscriber: one unfiltered subscription, as a user's would be.
	c, err := client.Dial(ctx, srv.GRPC)
	if err != nil {
		return err
	}
	defer c.Close()
	tr := NewTracker(cfg.Stride)
	subCtx, stopSub := context.WithCancel(ctx)
	var subWG sync.WaitGroup
	var subErr error
	subWG.Go(func() {
		for ev, err := range c.Subscribe(subCtx, &actiondv1.SubscribeRequest{}) {
			if err != nil {
				subErr = err
				return
			}
			tr.Observe(ev, time.Now())
		}
	})
	defer func() { stopSub(); subWG.Wait() }()

	// The measured run starts once every camera has given a window.
	say("waiting for a window from every camera")
	if err := waitWindows(ctx, tr, srv, names, 3*time.Minute); err != nil {
		return err
	}
	start := time.Now()
	cpu0 := selfCPU()
	runCtx, cancelRun := context.WithTimeout(ctx, cfg.Duration)
	defer cancelRun()
	say("measuring for %v: %d cameras, model %s, window %v every %v, a fault every %v (%s), until %s",
		cfg.Duration, cfg.Cameras, cfg.Model, cfg.Window, cfg.Stride, cfg.FaultPeriod, kindsString(cfg.Faults),
		start.Add(cfg.Duration).Format("15:04:05"))

	inj := &injector{sim: sim, cfg: cfg, names: names, start: start, stopAt: start.Add(cfg.Duration - cfg.cooldown()), say: say}
	var injWG sync.WaitGroup
	if len(cfg.Faults) > 0 {
		injWG.Go(func() { inj.run(runCtx) })
	}

	samples, startMetrics, endMetrics, died := monitor(runCtx, cfg, srv, tr, inj, start, say)
	injWG.Wait()
	end := time.Now()
	soakCPU := selfCPU() - cpu0
	interrupted := ctx.Err() != nil
	tr.Finish(names, start, end, cfg.quiet())

	stopSub()
	subWG.Wait()
	exit := stopServer()

	res := analyze(cfg, tr, inj.log(), samples, start, end)
	res.StartMetrics, res.EndMetrics = startMetrics, endMetrics
	res.SoakCPU = soakCPU
	res.Interrupted = interrupted
	if died != nil {
		res.Failures = append(res.Failures, fmt.Sprintf("actiond serve exited during the run: %v (see %s)", died, logPath))
	} else if exit != nil {
		res.Failures = append(res.Failures, fmt.Sprintf("actiond serve did not stop cleanly on SIGTERM: %v", exit))
	}
	if subErr != nil {
		res.Failures = append(res.Failures, fmt.Sprintf("subscription failed: %v", subErr))
	}
	if interrupted {
		res.Failures = append(res.Failures, "interrupted before the end")
	}
	if err := writeReport(cfg, res); err != nil {
		return err
	}
	say("%s", res.verdictLine())
	if len(res.Failures) > 0 {
		return fmt.Errorf("%w: %s", ErrFailed, strings.Join(res.Failures, "; "))
	}
	return nil
}

// prepareModel returns the model file for cfg.Model, building it with the
// actiond binary when it is one of the built-in ones.
func prepareModel(cfg Config) (string, error) {
	var args []string
	switch cfg.Model {
	case "motion":
		args = []string{"model", "build", "motion"}
	case "pptsmv2":
		args = []string{"model", "build", "pptsmv2", "--random-seed", "1"}
	default:
		if _, err := os.Stat(cfg.Model); err != nil {
			return "", fmt.Errorf("model: %w", err)
		}
		return cfg.Model, nil
	}
	path := filepath.Join(cfg.Work, cfg.Model+".onnx")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	out, err := exec.Command(cfg.Actiond, append(args, "--out", path)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build model %s: %v\n%s", cfg.Model, err, out)
	}
	return path, nil
}

// serverConfig is the child's configuration file: ports picked by the
// child, every camera a stream.
func serverConfig(cfg Config, model string, sim *camsim.Simulator, names []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: 127.0.0.1:0\nmetrics_listen: 127.0.0.1:0\nmodel: %q\n", model)
	fmt.Fprintf(&b, "log:\n  level: info\ninference:\n  threads: %d\nstreams:\n", cfg.Threads)
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    url: %s\n    window: %v\n    stride: %v\n    transport: %s\n",
			n, sim.URL(n), cfg.Window, cfg.Stride, cfg.Transport)
	}
	return b.String()
}

// waitWindows waits until every stream has delivered a window.
func waitWindows(ctx context.Context, tr *Tracker, srv *serveproc.Proc, names []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		streams, _, _, _, _, _ := tr.snapshot()
		var missing []string
		for _, n := range names {
			if streams[n].Windows == 0 {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if done, err := srv.Exited(); done {
			return fmt.Errorf("actiond serve exited: %v", orExit0(err))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no window within %v from %s", limit, strings.Join(missing, ", "))
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// monitor samples the server's memory and metrics every SampleEvery and
// prints a progress line every 10s until ctx ends or the server dies.
func monitor(ctx context.Context, cfg Config, srv *serveproc.Proc, tr *Tracker, inj *injector, start time.Time, say func(string, ...any)) (samples []Sample, first, last Metrics, died error) {
	pid := srv.Cmd.Process.Pid
	first, last = noMetrics, noMetrics
	sample := func() {
		s := Sample{At: time.Now(), Goroutines: -1, FDs: -1, Load: loadAverage()}
		s.RSS, _ = procstat.RSS(pid)
		if m, err := scrape(ctx, srv.Metrics); err == nil {
			s.Goroutines, s.FDs = int(m.Goroutines), int(m.FDs)
			if first == noMetrics {
				first = m
			}
			last = m
		}
		samples = append(samples, s)
	}
	sample()
	sampleT := time.NewTicker(cfg.SampleEvery)
	defer sampleT.Stop()
	progT := time.NewTicker(10 * time.Second)
	defer progT.Stop()
	lastProg := start
	for {
		select {
		case <-ctx.Done():
			// The final figures, while the server still runs.
			if m, err := scrape(context.Background(), srv.Metrics); err == nil {
				last = m
			}
			return samples, first, last, nil
		case <-srv.Done():
			return samples, first, last, orExit0(srv.Err())
		case <-sampleT.C:
			sample()
		case now := <-progT.C:
			p := tr.Progress(lastProg)
			lastProg = now
			var r int64
			if len(samples) > 0 {
				r = samples[len(samples)-1].RSS
			}
			say("%s/%s  events %d  windows %d  gaps %d  dropped %d  faults %d  rss %.1f MiB  p99 %s",
				clock(now.Sub(start)), clock(cfg.Duration), p.Events, p.Windows, p.Gaps, p.Dropped,
				inj.count(), mib(r), p.P99.Round(time.Millisecond))
		}
	}
}

// selfCPU is the CPU time this process (the cameras, the subscriber) has
// used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clock formats d as m:ss.
func clock(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%s%d:%02d", sign, int(d.Minutes()), int(d.Seconds())%60)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func kindsString(k []FaultKind) string {
	if len(k) == 0 {
		return "none"
	}
	s := make([]string, len(k))
	for i, f := range k {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// injector breaks the cameras, one every FaultPeriod, round-robin; it
// owns the fault log.
type injector struct {
	sim    *camsim.Simulator
	cfg    Config
	names  []string
	start  time.Time
	stopAt time.Time // no new faults after it
	say    func(string, ...any)

	mu     sync.Mutex
	faults []Fault
}

func (in *injector) run(ctx context.Context) {
	tick := time.NewTicker(in.cfg.FaultPeriod)
	defer tick.Stop()
	var (
		open  int // index+1 of the fault that lasts, 0 none
		endAt <-chan time.Time
	)
	for k := 0; ; {
		select {
		case <-ctx.Done():
			if open > 0 {
				in.end(open - 1)
			}
			return
		case <-endAt:
			in.end(open - 1)
			open, endAt = 0, nil
		case now := <-tick.C:
			if open > 0 {
				in.end(open - 1)
				open, endAt = 0, nil
			}
			if now.After(in.stopAt) {
				continue
			}
			i, d := in.inject(k)
			k++
			if d > 0 {
				open, endAt = i+1, time.After(d)
			}
		}
	}
}

// inject starts fault k and returns its index in the log and how long it
// lasts (0: it is over already).
func (in *injector) inject(k int) (int, time.Duration) {
	cam, kind := schedule(k, len(in.names), in.cfg.Faults)
	name := in.names[cam]
	f := Fault{N: k + 1, Stream: name, Kind: kind, Start: time.Now()}
	var (
		err  error
		last time.Duration
	)
	switch kind {
	case FaultDrop:
		err = in.sim.DropConnections(name)
	case FaultStall:
		last, f.Detail = in.cfg.StallFor, in.cfg.StallFor.String()
		err = in.sim.Stall(name, last)
	case FaultJump:
		f.Detail = "to 0"
		err = in.sim.JumpTimestamps(name, 0)
	case FaultLoss:
		last, f.Detail = in.cfg.LossFor, fmt.Sprintf("%g%% for %v", 100*in.cfg.Loss, in.cfg.LossFor)
		err = in.sim.SetPacketLoss(name, in.cfg.Loss)
	}
	if err != nil {
		// The simulator serves these paths: a failure is a bug here.
		in.say("fault %d on %s: %v", f.N, name, err)
	}
	if last == 0 {
		f.End = f.Start
	}
	in.mu.Lock()
	in.faults = append(in.faults, f)
	i := len(in.faults) - 1
	in.mu.Unlock()
	in.say("%s fault %d start: %s %s %s", clock(f.Start.Sub(in.start)), f.N, name, kind, f.Detail)
	return i, last
}

// end ends the lasting fault i.
func (in *injector) end(i int) {
	in.mu.Lock()
	f := &in.faults[i]
	if f.Kind == FaultLoss {
		in.sim.SetPacketLoss(f.Stream, 0)
	}
	// A stall ends by itself in the simulator, when it was due.
	f.End = time.Now()
	if f.Kind == FaultStall {
		f.End = f.Start.Add(in.cfg.StallFor)
	}
	g := *f
	in.mu.Unlock()
	in.say("%s fault %d end: %s %s", clock(g.End.Sub(in.start)), g.N, g.Stream, g.Kind)
}

func (in *injector) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.faults)
}

func (in *injector) log() []Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Fault(nil), in.faults...)
}
