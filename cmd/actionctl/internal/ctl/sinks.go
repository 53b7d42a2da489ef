package ctl

import (
	"context"
	"fmt"
	"io"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

func (c command) sinks(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("sinks needs a subcommand: ls")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "ls", "list":
		return c.sinksList(ctx, rest)
	default:
		return usageErrorf("unknown sinks subcommand %q", sub)
	}
}

func (c command) sinksList(ctx context.Context, args []string) error {
	fs := c.flags("sinks ls")
	asJSON := fs.Bool("json", false, "print one JSON object per sink and line")
	_, cl, err := c.connect(ctx, fs, args, 0, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	sinks, err := cl.ListSinks(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONLines(c.env.Stdout, sinks, true)
	}
	writeSinkTable(c.env.Stdout, sinks, time.Now())
	return nil
}

func writeSinkTable(w io.Writer, sinks []*actiondv1.Sink, now time.Time) {
	tw := newTable(w, len(sinks), "sinks", "NAME\tTYPE\tUP\tDELIVERED\tPENDING\tRETRIES\tDEAD\tPOSITION\tTARGET\tLAST ERROR")
	if tw == nil {
		return
	}
	for _, s := range sinks {
		up := "no"
		if s.GetUp() {
			up = "yes"
		}
		last := "-"
		if s.GetLastError() != "" {
			last = oneLine(s.GetLastError())
			if s.GetLastErrorTime() != nil {
				last += " (" + ago(s.GetLastErrorTime(), now) + ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", s.GetName(), s.GetType(), up, s.GetDelivered(),
			s.GetPending(), s.GetRetries(), s.GetDeadLetters(), s.GetAckedPosition(), s.GetTarget(), last)
	}
	tw.Flush()
}
