package ctl

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// actions runs `actionctl actions ls|get|snapshot`: the history.
func (c command) actions(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageErrorf("actions wants a subcommand: ls, get or snapshot")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "ls", "list":
		return c.actionsList(ctx, rest)
	case "get":
		return c.actionsGet(ctx, rest)
	case "snapshot":
		return c.actionsSnapshot(ctx, rest)
	default:
		return usageErrorf("unknown actions subcommand %q; want ls, get or snapshot", sub)
	}
}

func (c command) actionsList(ctx context.Context, args []string) error {
	fs := c.flags("actions ls")
	var streams, labels repeated
	fs.Var(&streams, "stream", "only this stream (repeatable; default: all)")
	fs.Var(&labels, "label", "only this label (repeatable; default: all)")
	since := fs.Duration("since", 0, "only actions that started within this long before now, e.g. 2h (default: all kept)")
	minScore := fs.Float64("min-score", 0, "only actions whose peak score is at least this")
	limit := fs.Int("limit", 50, "list at most this many, newest first (0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object per action and line")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	if *since < 0 || *limit < 0 {
		return usageErrorf("--since and --limit must not be negative")
	}
	req := &actiondv1.ListActionsRequest{Streams: streams, Labels: labels, MinPeakScore: float32(*minScore)}
	if *since > 0 {
		req.StartTime = timestamppb.New(time.Now().Add(-*since))
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	var all []*actiondv1.Action
	for {
		if *limit > 0 {
			req.PageSize = uint32(min(1000, *limit-len(all)))
		}
		page, err := cl.ListActions(ctx, req)
		if err != nil {
			return err
		}
		all = append(all, page.GetActions()...)
		if req.PageToken = page.GetNextPageToken(); req.PageToken == "" || (*limit > 0 && len(all) >= *limit) {
			break
		}
	}
	if *asJSON {
		return writeJSONLines(c.env.Stdout, all, false)
	}
	writeActionTable(c.env, all)
	return nil
}

// writeActionTable prints actions one per line under a header.
func writeActionTable(env Env, actions []*actiondv1.Action) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION ID\tSTREAM\tLABEL\tSTARTED\tLASTED\tPEAK\tENDED BY\tSNAPSHOT")
	for _, a := range actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", a.GetActionId(), a.GetStream(), a.GetLabel(),
			localTime(a.GetStartTime().AsTime()), lasted(a), a.GetPeakScore(), endedBy(a), yesNo(a.GetHasSnapshot()))
	}
	tw.Flush()
}

func lasted(a *actiondv1.Action) string {
	if a.GetOpen() {
		return "open"
	}
	return fmt.Sprintf("%.2fs", (a.GetMediaEnd().AsDuration() - a.GetMediaStart().AsDuration()).Seconds())
}

func endedBy(a *actiondv1.Action) string {
	if a.GetOpen() {
		return "-"
	}
	return enumName(a.GetEndReason(), "ACTION_END_REASON_")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (c command) actionsGet(ctx context.Context, args []string) error {
	fs := c.flags("actions get")
	asJSON := fs.Bool("json", false, "print the action as JSON")
	pos, cl, err := c.connect(ctx, fs, args, 1, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	a, err := cl.GetAction(ctx, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(c.env.Stdout, a, false)
	}
	f := newFields(c.env.Stdout)
	f.line("action id", "%s", a.GetActionId())
	f.line("stream", "%s", a.GetStream())
	f.line("label", "%s (index %d)", a.GetLabel(), a.GetIndex())
	f.line("started", "%s (media %s, %s clock)", localTime(a.GetStartTime().AsTime()), seconds(a.GetMediaStart()), enumName(a.GetClock(), "CLOCK_"))
	if a.GetOpen() {
		f.line("ended", "not yet (open)")
	} else {
		f.line("ended", "%s (media %s), %s", localTime(a.GetEndTime().AsTime()), seconds(a.GetMediaEnd()), endedBy(a))
		f.line("lasted", "%s", lasted(a))
	}
	f.line("peak score", "%.3f", a.GetPeakScore())
	f.line("snapshot", "%s", yesNo(a.GetHasSnapshot()))
	f.line("positions", "started %d, ended %d", a.GetStartPosition(), a.GetEndPosition())
	f.flush()
	return nil
}

func (c command) actionsSnapshot(ctx context.Context, args []string) error {
	fs := c.flags("actions snapshot")
	out := fs.String("o", "", "write the JPEG to this file (default: ACTION_ID.jpg)")
	pos, cl, err := c.connect(ctx, fs, args, 1, false)
	if err != nil {
		return err
	}
	defer cl.Close()
	snap, err := cl.GetSnapshot(ctx, pos[0])
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = pos[0] + ".jpg"
	}
	if path == "-" {
		_, err = c.env.Stdout.Write(snap.GetData())
		return err
	}
	if err := os.WriteFile(path, snap.GetData(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "%s: %dx%d %s, %d bytes, frame at media %s\n", path, snap.GetWidth(), snap.GetHeight(),
		snap.GetContentType(), len(snap.GetData()), seconds(snap.GetMediaTime()))
	return nil
}
