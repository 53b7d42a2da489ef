// Package bench is actionbench (cmd/actionbench, a thin main over it): it runs actiond's speed benchmarks beside their peers and
// rewrites BENCHMARKS.md: the model on actiond's engine against raw ONNX
// Runtime (onnxruntime-node, same library version), a large MatMul as the
// arithmetic ceiling, the model at batch 1–8 (the scheduler's
// inference.max_batch), a live window with and without the feature cache
// (inference.feature_cache), and the clip front end against OpenCV and
// PyAV.
//
// Run it from the checkout root with `make bench`, which builds bin/actiond
// and installs the peers first (make bench-peers). It measures actiond from
// outside (a child process, gRPC, /metrics) and must not be imported by
// anything but its main.
package bench

import (
	"embed"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

//go:embed peers/ort_bench.js peers/clip_bench.py
var peers embed.FS

type config struct {
	actiond     string
	out         string
	work        string
	nodeModules string
	python      string
	clip        string
	repeats     int
	iterations  int
	clipRepeats int
	batching    string
	live        string
	livePeriod  time.Duration
	liveStopP99 time.Duration
	liveProfile int
	liveBitrate int
	livePlot    string
	liveOnly    bool
	liveStatic  bool
	peer        string
	cache       string
	sessions    int
}

// Main runs actionbench with the command line's arguments (without the
// program name) and returns the exit status.
func Main(args []string) int {
	var c config
	fs := flag.NewFlagSet("actionbench", flag.ExitOnError)
	fs.StringVar(&c.actiond, "actiond", "bin/actiond", "the actiond binary to measure")
	fs.StringVar(&c.out, "out", "BENCHMARKS.md", "report to write")
	fs.StringVar(&c.work, "work", ".cache/bench", "folder for models, clips and peer scripts")
	fs.StringVar(&c.nodeModules, "node-modules", ".cache/bench-node/node_modules", "where onnxruntime-node@1.29.0 is installed")
	fs.StringVar(&c.python, "python", "/usr/bin/python3", "Debian's python3 with python3-opencv and python3-av")
	fs.StringVar(&c.clip, "clip", "testdata/arm_wrestling.mp4", "real clip for the front-end benchmark")
	fs.IntVar(&c.repeats, "repeats", 5, "repeated runs per figure (min/median/max are over these)")
	fs.IntVar(&c.iterations, "iterations", 10, "timed model runs per repeat (each repeat reports its p50)")
	fs.IntVar(&c.clipRepeats, "clip-repeats", 5, "timed clip loads per figure")
	fs.StringVar(&c.batching, "batching", "2:5,1:3", "Batching section: threads:repeats[,…], in the order to run; empty to skip")
	fs.StringVar(&c.live, "live", "1,2,4,6,8,12,16", "Live capacity section: camera counts, in the order to run (all up to 16 are run; past 16 only while p99 stays under -live-stop-p99); empty to skip")
	fs.DurationVar(&c.livePeriod, "live-period", 40*time.Second, "Live: measured period per camera count (after the warm-up)")
	fs.DurationVar(&c.liveStopP99, "live-stop-p99", 10*time.Second, "Live: run no larger camera count once p99 latency is past this")
	fs.IntVar(&c.liveProfile, "live-profile", 8, "Live: capture actiond's CPU and allocation profiles at this camera count; 0 for none")
	fs.IntVar(&c.liveBitrate, "live-bitrate", 2_000_000, "Live: the simulated cameras' H.264 bitrate, bit/s; 0 for constant quality")
	fs.StringVar(&c.livePlot, "live-plot", "docs/live-capacity.png", "Live: where to write the plot of latency and CPU against N (linked from -out)")
	fs.BoolVar(&c.liveOnly, "live-only", false, "run only the Live section and write only it to -out")
	fs.BoolVar(&c.liveStatic, "live-static-half", true, "Live: run the camera counts again with half the cameras showing a still picture and skip_static on for them")
	fs.StringVar(&c.peer, "peer-actiond", "", "Live: another actiond binary (e.g. one built from an older commit) run through the same camera counts side by side; empty for none")
	fs.StringVar(&c.cache, "feature-cache", "1:5,2:3", "Feature cache section: threads:repeats[,…], in the order to run; empty to skip")
	fs.IntVar(&c.sessions, "sessions", 3, "Sessions section: repeats of each split of the cores into sessions × threads; 0 to skip")
	fs.Parse(args) // ExitOnError: a bad flag exits
	if err := run(c); err != nil {
		fmt.Fprintf(os.Stderr, "actionbench: %v\n", err)
		return 1
	}
	return 0
}

func run(c config) error {
	start := time.Now()
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"ort_bench.js", "clip_bench.py"} {
		b, err := peers.ReadFile("peers/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(c.work, name), b, 0o644); err != nil {
			return err
		}
	}
	// The actiond processes it starts keep their event log under -work,
	// not in the user's data_dir, which a running actiond holds locked.
	if os.Getenv("ACTIOND_DATA_DIR") == "" {
		if err := os.Setenv("ACTIOND_DATA_DIR", filepath.Join(c.work, "data")); err != nil {
			return err
		}
	}
	r := &report{machine: describeMachine(c)}
	progress("machine: %s", r.machine.CPU)
	if c.liveOnly {
		return runLiveOnly(c, r, start)
	}
	var err error
	if r.engine, err = benchEngine(c); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	plan, err := parseBatching(c.batching)
	if err != nil {
		return err
	}
	for _, tr := range plan {
		b, err := benchBatching(c, r.engine.Model, tr[0], tr[1])
		if err != nil {
			return fmt.Errorf("batching: %w", err)
		}
		r.batching = append(r.batching, b)
	}
	cachePlan, err := parseBatching(c.cache)
	if err != nil {
		return fmt.Errorf("-feature-cache: want threads:repeats[,…], got %q", c.cache)
	}
	for _, tr := range cachePlan {
		fc, err := benchFeatureCache(c, r.engine.Model, tr[0], tr[1])
		if err != nil {
			return fmt.Errorf("feature cache: %w", err)
		}
		r.cache = append(r.cache, fc)
	}
	if c.sessions > 0 {
		if r.sessions, err = benchSessions(c, r.engine.Model, r.machine.Cores, c.sessions); err != nil {
			return fmt.Errorf("sessions: %w", err)
		}
	}
	if r.frontEnd, err = benchFrontEnd(c); err != nil {
		return fmt.Errorf("front end: %w", err)
	}
	if r.live, err = runLive(c); err != nil {
		return fmt.Errorf("live: %w", err)
	}
	if r.hotPath, err = benchHotPath(); err != nil {
		return fmt.Errorf("live hot path: %w", err)
	}
	if r.int8, err = benchInt8(); err != nil {
		return fmt.Errorf("int8: %w", err)
	}
	r.took = time.Since(start)
	md := r.markdown(c)
	if old, err := os.ReadFile(c.out); err == nil {
		md = keepFleetSection(string(old), md) // written by cmd/fleetsim
	}
	if err := os.WriteFile(c.out, []byte(md), 0o644); err != nil {
		return err
	}
	progress("wrote %s in %s", c.out, r.took.Round(time.Second))
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "actionbench: "+format+"\n", args...)
}
