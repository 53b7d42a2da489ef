package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/actiond/actiond/demo"
	"github.com/actiond/actiond/ingest/camsim"
)

// multiFlag collects a repeatable NAME=VALUE flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func splitNameValue(flagName, v string) (string, string, error) {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" || value == "" {
		return "", "", fmt.Errorf("%w: --%s wants NAME=VALUE, got %q", errUsage, flagName, v)
	}
	return name, value, nil
}

func runSim(args []string) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8554", "RTSP listen address")
	noUDP := fs.Bool("no-udp", false, "offer only TCP transport")
	size := fs.String("size", "320x240", "frame size WxH of synthetic scenes")
	fps := fs.Int("fps", 25, "frame rate of synthetic scenes")
	bitrate := fs.Int("bitrate", 0, "H.264 bitrate of files and scenes, bit/s, e.g. 2000000 (default: constant quality)")
	user := fs.String("user", "", "require this user name (basic or digest auth); needs --pass")
	pass := fs.String("pass", "", "password for --user")
	var files, scenes multiFlag
	fs.Var(&files, "file", "serve a video file, looped, as H.264: NAME=PATH (repeatable)")
	fs.Var(&scenes, "scene", "serve a synthetic motion scene: NAME=left|right|up|down|still|bounce (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var w, h int
	if _, err := fmt.Sscanf(*size, "%dx%d", &w, &h); err != nil || w < 16 || h < 16 {
		return fmt.Errorf("%w: --size must be WxH with both at least 16, got %q", errUsage, *size)
	}
	if len(files) == 0 && len(scenes) == 0 {
		scenes = multiFlag{"demo=bounce"}
	}
	if *bitrate < 0 {
		return fmt.Errorf("%w: --bitrate must be positive, got %d", errUsage, *bitrate)
	}
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: *listen, DisableUDP: *noUDP, Bitrate: *bitrate})
	if *user != "" {
		sim.SetCredentials(*user, *pass)
	}
	for _, f := range files {
		name, path, err := splitNameValue("file", f)
		if err != nil {
			return err
		}
		if err := sim.AddFile(name, path); err != nil {
			return err
		}
	}
	for i, s := range scenes {
		name, dir, err := splitNameValue("scene", s)
		if err != nil {
			return err
		}
		if dir == "bounce" {
			// The demo camera: right for 4 s, then left for 4 s, looped.
			err = sim.AddSceneSequence(name, w, h, *fps, demo.DemoBounce)
		} else {
			var d camsim.Direction
			if d, err = camsim.ParseDirection(dir); err != nil {
				return fmt.Errorf("%w: --scene %s: %v", errUsage, s, err)
			}
			// A long loop: the disk crosses 40% of the picture in 30 s,
			// so a 10 s window sees it move 13% (the motion model's
			// threshold is 4%); only a window spanning the loop point sees
			// the jump back.
			err = sim.AddScene(name, camsim.Scene{Width: w, Height: h, FPS: *fps, Duration: 30 * time.Second, Direction: d, Seed: int64(i + 1)})
		}
		if err != nil {
			return err
		}
	}
	if err := sim.Start(); err != nil {
		return err
	}
	defer sim.Close()
	for _, p := range sim.Paths() {
		fmt.Printf("serving %s\n", sim.URL(p))
	}
	fmt.Printf("publish with: ffmpeg -re -i FILE -c copy -f rtsp %s\n", sim.URL("NAME"))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- sim.Wait() }()
	select {
	case <-sig:
		return nil
	case err := <-done:
		return err
	}
}
