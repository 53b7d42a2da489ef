package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/actiond/actiond/demo"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/server"
)

func runScene(args []string) error {
	fs := flag.NewFlagSet("scene", flag.ContinueOnError)
	dir := fs.String("direction", "right", "where the bright shape moves: left, right, up, down or still")
	size := fs.String("size", "320x240", "frame size WxH")
	fps := fs.Int("fps", 25, "frames per second")
	dur := fs.Duration("duration", 4*time.Second, "length")
	seed := fs.Int64("seed", 1, "background texture seed")
	out := fs.String("out", "", "output file, H.264 in MP4 (required)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	d, err := camsim.ParseDirection(*dir)
	if err != nil {
		return fmt.Errorf("%w: --direction: %v", errUsage, err)
	}
	var w, h int
	if _, err := fmt.Sscanf(*size, "%dx%d", &w, &h); err != nil || w < 16 || h < 16 {
		return fmt.Errorf("%w: --size must be WxH with both at least 16, got %q", errUsage, *size)
	}
	if *out == "" {
		return fmt.Errorf("%w: scene needs --out FILE.mp4", errUsage)
	}
	s := camsim.Scene{Width: w, Height: h, FPS: *fps, Duration: *dur, Direction: d, Seed: *seed}
	if err := s.WriteFile(*out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%dx%d, %d fps, %d frames, moving %s)\n", *out, w, h, *fps, s.Frames(), d)
	return nil
}

// runDemo is the first-run demo: `actiond serve --demo`, or with --files
// (or video files given) the classification demo that labels synthetic
// scenes and the files, then exits.
func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	files := fs.Bool("files", false, "classify synthetic scenes and the VIDEO files given, then exit")
	dir := fs.String("dir", "", "--files: keep the motion model and scenes here (default: a temporary directory)")
	threads := fs.Int("threads", 0, "--files: inference threads (0 = all cores)")
	fs.String("listen", "", "serve: gRPC address (default "+server.DefaultListen+")")
	fs.String("camera-listen", "", "serve: the demo camera's RTSP address (default "+demo.DefaultDemoCameraListen+")")
	clips, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *files || len(clips) > 0 {
		return demo.RunDemo(demo.DemoOptions{Dir: *dir, Clips: clips, Threads: *threads, Out: os.Stdout, Err: os.Stderr})
	}
	serveArgs := []string{"--demo"}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "listen" || f.Name == "camera-listen" {
			serveArgs = append(serveArgs, "--"+f.Name, f.Value.String())
		}
	})
	return runServe(serveArgs)
}
