package ctl

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/actiond/actiond/client"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// kindNames are the short names --kinds takes.
var kindNames = map[string]actiondv1.EventKind{
	"window":  actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT,
	"started": actiondv1.EventKind_EVENT_KIND_ACTION_STARTED,
	"ended":   actiondv1.EventKind_EVENT_KIND_ACTION_ENDED,
	"status":  actiondv1.EventKind_EVENT_KIND_STREAM_STATUS,
}

func (c command) watch(ctx context.Context, args []string) error {
	fs := c.flags("watch")
	var streams, labels, kinds repeated
	fs.Var(&streams, "stream", "follow this stream (repeatable; default: all)")
	fs.Var(&labels, "label", "only this label (repeatable; default: all)")
	fs.Var(&kinds, "kinds", "event kinds, comma-separated: window,started,ended,status (default: all)")
	minScore := fs.Float64("min-score", 0, "leave out window labels scoring below this")
	asJSON := fs.Bool("json", false, "print one JSON object per event and line")
	var resume optionalUint
	fs.Var(&resume, "resume-after", "first replay the logged events after this position (an event's position; 0: all the log keeps), then go on live")
	if _, err := c.parse(fs, args, 0, false); err != nil {
		return err
	}
	req := &actiondv1.SubscribeRequest{Streams: streams, Labels: labels, MinScore: float32(*minScore), ResumeAfter: resume.v}
	for _, k := range kinds {
		for _, name := range splitList(k) {
			kind, ok := kindNames[name]
			if !ok {
				return usageErrorf("--kinds: unknown kind %q; want window, started, ended or status", name)
			}
			req.Kinds = append(req.Kinds, kind)
		}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()

	v := newWatchView(c.env, cl.Addr(), *asJSON)
	defer v.close()
	events := cl.Subscribe(ctx, req, client.OnRetry(v.retrying))
	for ev, err := range events {
		if err != nil {
			return err
		}
		if err := v.event(ev); err != nil {
			return err
		}
	}
	return nil // ctx ended: interrupted
}

// optionalUint is a flag whose absence differs from 0.
type optionalUint struct{ v *uint64 }

func (o *optionalUint) String() string {
	if o.v == nil {
		return ""
	}
	return strconv.FormatUint(*o.v, 10)
}

func (o *optionalUint) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want a position (0 or more), got %q", s)
	}
	o.v = &n
	return nil
}

// repeated is a flag that may be given many times.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// watchView prints events as they come: a line each, or a JSON object
// each. On a terminal it highlights actions and keeps a status line under
// the events (the connection, the count of events, a reconnection).
type watchView struct {
	out, errOut io.Writer
	json        bool
	terminal    bool
	color       bool
	addr        string
	count       int
	status      string // the status line now shown, "" for none
	retries     int    // failed subscriptions since the last event
	now         func() time.Time
}

func newWatchView(env Env, addr string, asJSON bool) *watchView {
	v := &watchView{out: env.Stdout, errOut: env.Stderr, json: asJSON, addr: addr, now: time.Now}
	v.terminal = env.Terminal && !asJSON
	v.color = v.terminal && env.Getenv("NO_COLOR") == "" && env.Getenv("TERM") != "dumb"
	v.setStatus(styleDim, fmt.Sprintf("watching %s, waiting for events", addr))
	return v
}

// ANSI styles, used on a terminal only.
const (
	styleStarted = "\x1b[1;32m" // bold green
	styleEnded   = "\x1b[1;33m" // bold yellow
	styleDim     = "\x1b[2m"
	styleReset   = "\x1b[0m"
)

func (v *watchView) style(style, s string) string {
	if !v.color {
		return s
	}
	return style + s + styleReset
}

func (v *watchView) event(ev *actiondv1.Event) error {
	v.count++
	if v.retries > 0 {
		v.retries = 0
		if v.terminal {
			v.clearStatus()
			fmt.Fprintf(v.out, "%s  subscribed again\n", v.style(styleDim, v.now().Format("15:04:05.000")))
		} else {
			fmt.Fprintln(v.errOut, "actionctl: watch: subscribed again")
		}
	}
	if v.json {
		return writeJSON(v.out, ev, false)
	}
	v.clearStatus()
	_, err := fmt.Fprintln(v.out, v.eventLine(ev))
	v.setStatus(styleDim, fmt.Sprintf("watching %s: %d event(s), the last at %s", v.addr, v.count, v.now().Format("15:04:05")))
	return err
}

// retrying reports a lost subscription that is tried again after wait.
func (v *watchView) retrying(err error, wait time.Duration) {
	again := fmt.Sprintf("subscribing again in %s", wait.Round(100*time.Millisecond))
	v.retries++
	if !v.terminal {
		fmt.Fprintf(v.errOut, "actionctl: watch: %v; %s\n", err, again)
		return
	}
	// The whole error once, as a line; then only the count in the status.
	if v.retries == 1 {
		v.clearStatus()
		fmt.Fprintf(v.out, "%s  %s\n", v.style(styleDim, v.now().Format("15:04:05.000")), v.style(styleEnded, err.Error()))
	}
	v.setStatus(styleEnded, fmt.Sprintf("%s: no subscription (%d tries); %s", v.addr, v.retries, again))
}

// statusWidth bounds the status line: one that wrapped could not be
// rewritten in place.
const statusWidth = 78

// fit shortens s to statusWidth runes, ending it with "…" if it had more.
func fit(s string) string {
	r := []rune(s)
	if len(r) <= statusWidth {
		return s
	}
	return string(r[:statusWidth-1]) + "…"
}

func (v *watchView) setStatus(style, s string) {
	if !v.terminal {
		return
	}
	v.clearStatus()
	v.status = s
	fmt.Fprint(v.out, v.style(style, fit(s)))
}

func (v *watchView) clearStatus() {
	if v.status != "" {
		fmt.Fprint(v.out, "\r\x1b[K")
		v.status = ""
	}
}

func (v *watchView) close() { v.clearStatus() }

// eventLine is one event for people:
//
//	15:04:05.000  dock-3  12.50–22.50s  welding 0.93
//	15:04:05.000  dock-3  ACTION STARTED welding  from 11.25s  peak 0.95
//	15:04:06.250  dock-3  ACTION ENDED   welding  11.25–40.00s  peak 0.97  (score dropped)
//	15:04:06.250  dock-3  status PLAYING  H264 1280x720 over tcp, 25.0 fps  epoch 1 (first frame)
//
// The time, on the local clock, is a window's end (by the window's clock),
// and for the other events when they arrived: an action's line comes
// after the window that started or ended it, so lines stay in order; its
// media times say where in the stream it is.
func (v *watchView) eventLine(ev *actiondv1.Event) string {
	at := v.now()
	var what string
	switch k := ev.GetKind().(type) {
	case *actiondv1.Event_WindowResult:
		w := k.WindowResult
		if w.GetEndTime() != nil {
			at = w.GetEndTime().AsTime()
		}
		top := "-"
		if t := w.GetTop(); len(t) > 0 {
			top = fmt.Sprintf("%s %.2f", t[0].GetLabel(), t[0].GetScore())
		}
		what = fmt.Sprintf("%s–%s  %s", seconds(w.GetMediaStart()), seconds(w.GetMediaEnd()), top)
		if w.GetUntrained() {
			what += "  (untrained model)"
		}
	case *actiondv1.Event_ActionStarted:
		a := k.ActionStarted
		what = fmt.Sprintf("%s %s  from %s  peak %.2f", v.style(styleStarted, "ACTION STARTED"), a.GetLabel(),
			seconds(a.GetMediaStart()), a.GetPeakScore())
	case *actiondv1.Event_ActionEnded:
		a := k.ActionEnded
		reason := strings.ReplaceAll(strings.ToLower(enumName(a.GetReason(), "ACTION_END_REASON_")), "_", " ")
		what = fmt.Sprintf("%s   %s  %s–%s  peak %.2f  (%s)", v.style(styleEnded, "ACTION ENDED"), a.GetLabel(),
			seconds(a.GetMediaStart()), seconds(a.GetMediaEnd()), a.GetPeakScore(), reason)
	case *actiondv1.Event_StreamStatus:
		what = statusLine(k.StreamStatus)
	case *actiondv1.Event_Dropped:
		return fmt.Sprintf("%s  this watcher fell behind: %d events dropped", at.Local().Format("15:04:05.000"), k.Dropped.GetCount())
	default:
		what = "unknown event"
	}
	return fmt.Sprintf("%s  %s  %s", v.style(styleDim, at.Local().Format("15:04:05.000")), ev.GetStream(), what)
}

// statusLine is a stream status in one line: its state, and what matters
// in that state.
func statusLine(st *actiondv1.StreamStatus) string {
	parts := []string{"status " + stateName(st.GetState())}
	switch st.GetState() {
	case actiondv1.StreamState_STREAM_STATE_PLAYING:
		if st.GetCodec() != "" {
			parts = append(parts, video(st))
		}
		if st.GetEpoch() > 0 {
			parts = append(parts, fmt.Sprintf("epoch %d (%s)", st.GetEpoch(), st.GetEpochReason()))
		}
	case actiondv1.StreamState_STREAM_STATE_RETRYING:
		if st.GetLastError() != "" {
			parts = append(parts, oneLine(st.GetLastError()))
		}
		if st.GetNextAttempt() != nil {
			parts = append(parts, "next attempt "+st.GetNextAttempt().AsTime().Local().Format("15:04:05"))
		}
	}
	return strings.Join(parts, "  ")
}
