package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/demo"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/server"
)

// runServe is `actiond serve`: flags over the environment over the
// configuration file, then server.Run.
func runServe(args []string) error {
	server.TuneMemory(os.Getenv)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	config := fs.String("config", "", "YAML configuration file (README: Server)")
	listen := fs.String("listen", "", "gRPC address (default "+server.DefaultListen+")")
	metrics := fs.String("metrics-listen", "", "address of the Prometheus endpoint /metrics (default: /metrics on --http-listen)")
	httpListen := fs.String("http-listen", "", "address of the web console and the HTTP/JSON API (default "+server.DefaultHTTPListen+"; \"\" turns it off)")
	model := fs.String("model", "", "ONNX model file (default: $ACTIOND_MODEL, else "+classify.DefaultModelPath()+")")
	state := fs.String("state-file", "", "import the streams of this state file (of an earlier version) into the stream registry, once")
	dataDir := fs.String("data-dir", "", "keep the event log (history, snapshots) here (default $XDG_STATE_HOME/actiond)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default info)")
	demoOn := fs.Bool("demo", false, "the first-run demo: the motion model and a demo camera (stream \"demo\")")
	pprofListen := fs.String("pprof-listen", "", "serve Go profiles (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (default: none)")
	cameraListen := fs.String("camera-listen", demo.DefaultDemoCameraListen, "with --demo: the demo camera's RTSP address")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memProfile := fs.String("memprofile", "", "write an allocation profile of the run to this file on exit")
	var streams multiFlag
	fs.Var(&streams, "stream", "watch a camera: NAME=rtsp://... (repeatable)")
	if rest, err := parse(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("%w: serve takes no arguments, got %q", errUsage, rest)
	}

	cfg, ignored, err := server.LoadConfig(*config, os.Environ())
	if err != nil {
		return err
	}
	for _, name := range ignored {
		fmt.Fprintf(os.Stderr, "actiond: warning: %s is not a configuration key; ignored\n", name)
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "metrics-listen":
			cfg.MetricsListen = *metrics
		case "http-listen":
			cfg.HTTPListen = httpListen
		case "model":
			cfg.Model = *model
		case "state-file":
			cfg.StateFile = *state
		case "data-dir":
			cfg.DataDir = *dataDir
		case "log-level":
			cfg.Log.Level = *logLevel
		}
	})
	for _, s := range streams {
		name, url, err := splitNameValue("stream", s)
		if err != nil {
			return err
		}
		cfg.Streams = append(cfg.Streams, server.StreamSpec{Name: name, URL: url})
	}
	if *demoOn && cfg.Log.Level == "" {
		cfg.Log.Level = "warn" // the demo's terminal is for the actions
	}
	log := server.NewLogger(cfg.Log, os.Stderr)
	if *pprofListen != "" {
		pp, err := server.StartPprof(*pprofListen, log)
		if err != nil {
			return err
		}
		defer pp.Close()
		fmt.Printf("actiond: pprof on http://%s/debug/pprof/\n", pp.Addr())
	}
	opts := server.RunOptions{Logger: log, ConfigFile: *config, Ready: func(s *server.Server) {
		fmt.Printf("actiond: serving gRPC on %s\n", s.Addr())
		if u := s.ConsoleURL(); u != "" {
			fmt.Printf("actiond: console and HTTP/JSON API on %s\n", u)
		}
		if a := s.MetricsAddr(); a != "" {
			fmt.Printf("actiond: metrics on http://%s/metrics\n", a)
		}
	}}
	if *demoOn {
		var cam *camsim.Simulator
		cfg, cam, err = demo.StartDemoCamera(cfg, demo.DemoCameraOptions{
			Listen: *cameraListen, Logger: log.With("component", "demo-camera"),
		})
		if err != nil {
			return err
		}
		defer cam.Close()
		opts.Ready = func(s *server.Server) {
			demo.WriteDemoInstructions(os.Stdout, s, cam.URL(demo.DemoStream))
		}
		opts.Loaded = func(s *server.Server) {
			if err := demo.FollowDemoActions(os.Stdout, s); err != nil {
				log.Warn("cannot show the demo's actions", "error", err)
			}
		}
	}
	stop, err := startProfiles(*cpuProfile, *memProfile)
	if err != nil {
		return err
	}
	cfg.Version = strings.TrimSpace(buildVersion) // shown to the fleet (ListNodes)
	err = server.Run(context.Background(), cfg, opts)
	return errors.Join(err, stop())
}
