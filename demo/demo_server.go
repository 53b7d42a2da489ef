package demo

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/models/motion"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server"
)

// The demo camera and how the demo watches it.
const (
	// DemoStream is the name of the demo's stream.
	DemoStream = "demo"
	// DefaultDemoCameraListen is where the demo camera (the RTSP
	// simulator) listens.
	DefaultDemoCameraListen = "127.0.0.1:8554"
	// DemoWindow and DemoStride: see camsim.BounceWindow.
	DemoWindow = camsim.BounceWindow
	DemoStride = camsim.BounceStride
)

// DemoBounce is the demo camera's motion (camsim.Bounce).
var DemoBounce = camsim.Bounce

// DemoCameraOptions configure StartDemoCamera.
type DemoCameraOptions struct {
	// Listen is the camera's RTSP address. It defaults to
	// DefaultDemoCameraListen.
	Listen string
	// CacheDir receives the motion model. It defaults to the user's cache
	// directory (~/.cache/actiond).
	CacheDir string
	// Width, Height and FPS shape the picture. They default to 320x240 at
	// 25 fps.
	Width, Height, FPS int
	// Logger receives the camera's logs; nil discards them.
	Logger *slog.Logger
}

// StartDemoCamera prepares the first-run demo: it builds the motion model
// (unless cfg names a model), starts the demo camera in this process, and
// returns cfg with the model and the "demo" stream set. Close the camera
// after the server.
func StartDemoCamera(cfg server.Config, opts DemoCameraOptions) (server.Config, *camsim.Simulator, error) {
	if opts.Listen == "" {
		opts.Listen = DefaultDemoCameraListen
	}
	if opts.Width == 0 || opts.Height == 0 {
		opts.Width, opts.Height = 320, 240
	}
	if opts.FPS == 0 {
		opts.FPS = 25
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Model == "" {
		dir := opts.CacheDir
		if dir == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				base = os.TempDir()
			}
			dir = filepath.Join(base, "actiond")
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return cfg, nil, fmt.Errorf("demo: %w", err)
		}
		cfg.Model = filepath.Join(dir, "motion.onnx")
		if err := motion.WriteFile(cfg.Model); err != nil {
			return cfg, nil, fmt.Errorf("demo: build the motion model: %w", err)
		}
	}
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: opts.Listen, Logger: opts.Logger})
	if err := sim.AddSceneSequence(DemoStream, opts.Width, opts.Height, opts.FPS, DemoBounce); err != nil {
		return cfg, nil, fmt.Errorf("demo: %w", err)
	}
	if err := sim.Start(); err != nil {
		return cfg, nil, fmt.Errorf("demo camera: %w (is another demo running? --camera-listen picks another address)", err)
	}
	cfg.Streams = append(cfg.Streams, server.StreamSpec{
		Name: DemoStream, URL: sim.URL(DemoStream), Window: DemoWindow, Stride: DemoStride, Transport: "tcp",
	})
	return cfg, sim, nil
}

// WriteDemoInstructions says what the demo serves and what to run in a
// second terminal.
func WriteDemoInstructions(w io.Writer, s *server.Server, cameraURL string) {
	cfg := s.Config()
	auth := ""
	if len(cfg.Auth.Tokens) > 0 {
		auth = "-H 'authorization: Bearer <token>' "
	}
	plain := "-plaintext "
	if cfg.TLS.CertFile != "" {
		plain = ""
	}
	ctlServer := ""
	if s.Addr() != server.DefaultListen {
		ctlServer = "--server " + s.Addr() + " "
	}
	console := ""
	if u := s.ConsoleURL(); u != "" {
		console = fmt.Sprintf("\nOpen the console in a browser: %s\n", u)
		curlAuth := ""
		if auth != "" {
			curlAuth = "-H 'authorization: Bearer <token>' "
		}
		console += fmt.Sprintf("or call the API over HTTP/JSON:\n  curl %s-d '{}' -H 'content-type: application/json' %sactiond.v1.StreamService/ListStreams\n", curlAuth, u)
	}
	fmt.Fprintf(w, `actiond demo: serving gRPC on %s with the motion model
  camera %q: %s, a bright disk moving right for 4 s, then left for 4 s, looped
  windows of %v every %v: moving_right and moving_left take turns

In a second terminal, watch the labels:
  bin/actionctl %swatch
  grpcurl %s%s-d '{"kinds":["EVENT_KIND_ACTION_STARTED","EVENT_KIND_ACTION_ENDED"]}' %s actiond.v1.RecognitionService/Subscribe
or every window:
  grpcurl %s%s%s actiond.v1.RecognitionService/Subscribe
The history (kept in %s, across restarts):
  bin/actionctl %sactions ls
  grpcurl %s%s%s actiond.v1.HistoryService/ListActions
%s
Actions also show below as they start and end. Ctrl-C stops.

`, s.Addr(), DemoStream, cameraURL, DemoWindow, DemoStride,
		ctlServer, plain, auth, s.Addr(), plain, auth, s.Addr(), cfg.DataDir, ctlServer, plain, auth, s.Addr(), console)
}

// FollowDemoActions prints each action of the demo as it starts and ends,
// until the server shuts down.
func FollowDemoActions(w io.Writer, s *server.Server) error {
	var mu sync.Mutex
	return s.Follow(&actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{
		actiondv1.EventKind_EVENT_KIND_ACTION_STARTED, actiondv1.EventKind_EVENT_KIND_ACTION_ENDED,
	}}, func(ev *actiondv1.Event) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now().Format("15:04:05")
		switch k := ev.GetKind().(type) {
		case *actiondv1.Event_ActionStarted:
			a := k.ActionStarted
			fmt.Fprintf(w, "%s  %s  %-13s started  at %6.2fs of the stream (peak %.2f)\n",
				now, ev.GetStream(), a.GetLabel(), a.GetMediaStart().AsDuration().Seconds(), a.GetPeakScore())
		case *actiondv1.Event_ActionEnded:
			a := k.ActionEnded
			fmt.Fprintf(w, "%s  %s  %-13s ended    at %6.2fs (%.2fs long, %s)\n",
				now, ev.GetStream(), a.GetLabel(), a.GetMediaEnd().AsDuration().Seconds(),
				(a.GetMediaEnd().AsDuration() - a.GetMediaStart().AsDuration()).Seconds(), endReason(a.GetReason()))
		}
	})
}

func endReason(r actiondv1.ActionEndReason) string {
	switch r {
	case actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED:
		return "score dropped"
	case actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_LOST:
		return "stream lost"
	case actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_REMOVED:
		return "stream removed"
	case actiondv1.ActionEndReason_ACTION_END_REASON_SERVER_RESTARTED:
		return "server restarted"
	}
	return r.String()
}
