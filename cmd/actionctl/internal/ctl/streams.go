package ctl

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

func (c command) streams(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("streams needs a subcommand: add, ls, get, update or rm")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "add":
		return c.streamsAdd(ctx, rest)
	case "ls", "list":
		return c.streamsList(ctx, rest)
	case "get":
		return c.streamsGet(ctx, rest)
	case "update":
		return c.streamsUpdate(ctx, rest)
	case "rm", "remove":
		return c.streamsRemove(ctx, rest)
	default:
		return usageErrorf("unknown streams subcommand %q", sub)
	}
}

// optionFlags are the flags that set StreamOptions, for add and update.
type optionFlags struct {
	fs         *flag.FlagSet
	window     time.Duration
	stride     time.Duration
	topK       uint
	on, off    float64
	minWindows uint
	labels     string
	transport  string
}

func newOptionFlags(fs *flag.FlagSet) *optionFlags {
	o := &optionFlags{fs: fs}
	fs.DurationVar(&o.window, "window", 0, "the span of video the model sees, e.g. 10s")
	fs.DurationVar(&o.stride, "stride", 0, "the time between the ends of two windows, e.g. 1.25s")
	fs.UintVar(&o.topK, "top-k", 0, "labels per window")
	fs.Float64Var(&o.on, "on", 0, "score at or above which a top label counts towards starting an action")
	fs.Float64Var(&o.off, "off", 0, "score below which a started action's label counts towards ending it")
	fs.UintVar(&o.minWindows, "min-windows", 0, "windows in a row that start or end an action")
	fs.StringVar(&o.labels, "labels", "", "comma-separated labels the stream reports (\"\": all)")
	fs.StringVar(&o.transport, "transport", "", "auto, udp or tcp")
	return o
}

// options returns the StreamOptions of the flags given on the command
// line, and only of those: an option not given stays unset.
func (o *optionFlags) options() (*actiondv1.StreamOptions, error) {
	opts := &actiondv1.StreamOptions{}
	var err error
	o.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "window":
			opts.Window = durationpb.New(o.window)
		case "stride":
			opts.Stride = durationpb.New(o.stride)
		case "top-k":
			opts.TopK = proto.Uint32(uint32(o.topK))
		case "on":
			opts.OnThreshold = proto.Float32(float32(o.on))
		case "off":
			opts.OffThreshold = proto.Float32(float32(o.off))
		case "min-windows":
			opts.MinConsecutiveWindows = proto.Uint32(uint32(o.minWindows))
		case "labels":
			opts.LabelAllowlist = &actiondv1.LabelAllowlist{Labels: splitList(o.labels)}
		case "transport":
			t, ok := actiondv1.Transport_value["TRANSPORT_"+strings.ToUpper(o.transport)]
			if !ok || t == 0 {
				err = usageErrorf("--transport must be auto, udp or tcp, got %q", o.transport)
			}
			opts.Transport = actiondv1.Transport(t)
		}
	})
	return opts, err
}

// splitList splits a comma-separated list, leaving out empty items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (c command) streamsAdd(ctx context.Context, args []string) error {
	fs := c.flags("streams add")
	of := newOptionFlags(fs)
	disabled := fs.Bool("disabled", false, "add the stream without connecting to it")
	asJSON := fs.Bool("json", false, "print the stream as JSON")
	pos, err := c.parse(fs, args, 2, false)
	if err != nil {
		return err
	}
	opts, err := of.options()
	if err != nil {
		return err
	}
	if *disabled {
		opts.Enabled = proto.Bool(false)
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.AddStream(ctx, pos[0], pos[1], opts)
	if err != nil {
		return err
	}
	return c.printStream(s, *asJSON)
}

func (c command) streamsList(ctx context.Context, args []string) error {
	fs := c.flags("streams ls")
	asJSON := fs.Bool("json", false, "print one JSON object per stream and line")
	_, cl, err := c.connect(ctx, fs, args, 0, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	streams, err := cl.ListStreams(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONLines(c.env.Stdout, streams, false)
	}
	writeStreamTable(c.env.Stdout, streams, time.Now())
	return nil
}

func (c command) streamsGet(ctx context.Context, args []string) error {
	fs := c.flags("streams get")
	asJSON := fs.Bool("json", false, "print the stream as JSON")
	pos, cl, err := c.connect(ctx, fs, args, 1, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.GetStream(ctx, pos[0])
	if err != nil {
		return err
	}
	return c.printStream(s, *asJSON)
}

func (c command) streamsUpdate(ctx context.Context, args []string) error {
	fs := c.flags("streams update")
	of := newOptionFlags(fs)
	url := fs.String("url", "", "a new camera URL")
	enable := fs.Bool("enable", false, "connect to the stream")
	disable := fs.Bool("disable", false, "disconnect from the stream, keeping its configuration")
	asJSON := fs.Bool("json", false, "print the stream as JSON")
	pos, err := c.parse(fs, args, 1, false)
	if err != nil {
		return err
	}
	opts, err := of.options()
	if err != nil {
		return err
	}
	req := &actiondv1.UpdateStreamRequest{Name: pos[0], Options: opts}
	switch {
	case *enable && *disable:
		return usageErrorf("streams update: --enable and --disable together")
	case *enable:
		opts.Enabled = proto.Bool(true)
	case *disable:
		opts.Enabled = proto.Bool(false)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "url" {
			req.Url = url
		}
	})
	if req.Url == nil && proto.Size(opts) == 0 {
		return usageErrorf("streams update %s: nothing to change; give --url, --enable, --disable or a stream flag", pos[0])
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	s, err := cl.UpdateStream(ctx, req)
	if err != nil {
		return err
	}
	return c.printStream(s, *asJSON)
}

func (c command) streamsRemove(ctx context.Context, args []string) error {
	fs := c.flags("streams rm")
	pos, cl, err := c.connect(ctx, fs, args, 1, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.RemoveStream(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "removed stream %q\n", pos[0])
	return nil
}

func (c command) printStream(s *actiondv1.Stream, asJSON bool) error {
	if asJSON {
		return writeJSON(c.env.Stdout, s, false)
	}
	writeStream(c.env.Stdout, s, time.Now())
	return nil
}
