package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

func (c command) nodes(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("nodes needs a subcommand: ls or drain")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "ls", "list":
		return c.nodesList(ctx, rest)
	case "drain":
		return c.nodesDrain(ctx, rest)
	default:
		return usageErrorf("unknown nodes subcommand %q", sub)
	}
}

func (c command) nodesList(ctx context.Context, args []string) error {
	fs := c.flags("nodes ls")
	asJSON := fs.Bool("json", false, "print one JSON object per node and line")
	_, cl, err := c.connect(ctx, fs, args, 0, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	nodes, _, err := cl.ListNodes(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSONLines(c.env.Stdout, nodes, false)
	}
	writeNodeTable(c.env.Stdout, nodes, time.Now())
	return nil
}

// nodesDrain starts the drain and, with --wait, waits until the node owns
// no stream (or has left the fleet), printing the count as it falls.
func (c command) nodesDrain(ctx context.Context, args []string) error {
	fs := c.flags("nodes drain")
	wait := fs.Bool("wait", false, "wait until the node owns no stream")
	pos, cl, err := c.connect(ctx, fs, args, 1, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	n, err := cl.DrainNode(ctx, pos[0])
	if err != nil {
		return err
	}
	left := len(n.GetStreamsOwned())
	fmt.Fprintf(c.env.Stdout, "draining %s: %d streams to hand over\n", n.GetName(), left)
	if !*wait {
		return nil
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for left > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		nodes, _, err := cl.ListNodes(ctx)
		if err != nil {
			return err
		}
		now := 0
		for _, m := range nodes {
			if m.GetName() == n.GetName() {
				now = len(m.GetStreamsOwned())
			}
		}
		if now != left {
			fmt.Fprintf(c.env.Stdout, "draining %s: %d streams to hand over\n", n.GetName(), now)
		}
		left = now
	}
	fmt.Fprintf(c.env.Stdout, "drained %s\n", n.GetName())
	return nil
}

func writeNodeTable(w io.Writer, nodes []*actiondv1.Node, now time.Time) {
	tw := newTable(w, len(nodes), "nodes", "NAME\tADDRESS\tVERSION\tSTREAMS\tCPU\tINFERENCE\tHEARTBEAT\tSTATE")
	if tw == nil {
		return
	}
	for _, n := range nodes {
		state := "active"
		if n.GetDraining() {
			state = "draining"
		}
		streams := fmt.Sprint(len(n.GetStreamsOwned()))
		if n.GetMaxStreams() > 0 {
			streams += fmt.Sprintf("/%d", n.GetMaxStreams())
		}
		hb := "-"
		if n.GetLastHeartbeat() != nil {
			hb = ago(n.GetLastHeartbeat(), now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f%%\t%.0f%%\t%s\t%s\n", n.GetName(), orDash(n.GetAddress()), orDash(n.GetVersion()),
			streams, 100*n.GetCpuLoad(), 100*n.GetInferenceLoad(), hb, state)
	}
	tw.Flush()
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
