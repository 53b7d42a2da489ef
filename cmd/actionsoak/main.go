// Command actionsoak is `make soak`: simulated cameras with periodic
// faults against a real `actiond serve` for a bounded time; it writes
// soak/soak-report.md, soak/soak.png and the Soak section of
// RELIABILITY.md, and exits 1 when events were lost outside the faults or
// actiond's memory drifted (see package soak).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/actiond/actiond/cmd/actionsoak/internal/soak"
)

func main() {
	c := soak.NewConfig()
	faults := "drop,stall,jump,loss"
	flag.StringVar(&c.Actiond, "actiond", c.Actiond, "the actiond binary to soak")
	flag.DurationVar(&c.Duration, "duration", c.Duration, "measured run, after every camera's first window")
	flag.IntVar(&c.Cameras, "cameras", c.Cameras, "simulated cameras (streams)")
	size := flag.String("size", fmt.Sprintf("%dx%d", c.Width, c.Height), "every camera's picture, WxH")
	flag.IntVar(&c.FPS, "fps", c.FPS, "every camera's frame rate")
	flag.StringVar(&c.Model, "model", c.Model, "motion, pptsmv2 (untrained, seed 1) or an ONNX file")
	flag.DurationVar(&c.Window, "window", c.Window, "every stream's window")
	flag.DurationVar(&c.Stride, "stride", c.Stride, "every stream's stride")
	flag.StringVar(&c.Transport, "transport", c.Transport, "every stream's transport: auto, udp or tcp")
	flag.IntVar(&c.Threads, "threads", c.Threads, "inference.threads (0 = all cores)")
	flag.DurationVar(&c.FaultPeriod, "fault-period", c.FaultPeriod, "time between faults, each on the next camera")
	flag.StringVar(&faults, "faults", faults, "fault kinds in rotation: drop, stall, jump, loss; none for no faults")
	flag.DurationVar(&c.StallFor, "stall", c.StallFor, "how long a stall lasts")
	flag.Float64Var(&c.Loss, "loss", c.Loss, "share of packets a loss fault drops")
	flag.DurationVar(&c.LossFor, "loss-for", c.LossFor, "how long a loss fault lasts")
	flag.DurationVar(&c.Slack, "slack", c.Slack, "a gap starting this long after a fault's end is still the fault's")
	flag.DurationVar(&c.SampleEvery, "sample", c.SampleEvery, "RSS and metrics sample period")
	flag.DurationVar(&c.WarmUp, "warm-up", c.WarmUp, "left out of the drift (0 = a tenth of the duration, 30s to 5m)")
	flag.Float64Var(&c.MaxRSSSlope, "max-rss-slope", c.MaxRSSSlope, "drift bound: RSS slope, MiB per hour")
	flag.Float64Var(&c.MaxRSSGrowth, "max-rss-growth", c.MaxRSSGrowth, "drift bound: last tenth over first tenth, minus one")
	flag.StringVar(&c.Work, "work", c.Work, "folder for the model, the server's configuration and the logs")
	flag.StringVar(&c.Out, "out", c.Out, "folder for soak-report.md and soak.png")
	flag.StringVar(&c.Reliability, "reliability", "", "rewrite the soak section of this file (RELIABILITY.md)")
	flag.StringVar(&c.Command, "command", "", "how the run was started, for the report (default: make soak)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, fmt.Errorf("no arguments expected, got %q", flag.Args()))
	}
	if _, err := fmt.Sscanf(strings.Replace(*size, "x", " ", 1), "%d %d", &c.Width, &c.Height); err != nil {
		fail(2, fmt.Errorf("-size: want WxH, got %q", *size))
	}
	var err error
	if c.Faults, err = soak.ParseFaults(faults); err != nil {
		fail(2, fmt.Errorf("-faults: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal the soak stops the server and writes its
		// report; a second one kills it (and, by Pdeathsig, the server).
		<-ctx.Done()
		stop()
	}()
	if err := soak.Run(ctx, c); err != nil {
		stop()
		fail(1, err)
	}
}

func fail(code int, err error) {
	fmt.Fprintf(os.Stderr, "actionsoak: %v\n", err)
	os.Exit(code)
}
