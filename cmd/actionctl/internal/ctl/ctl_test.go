package ctl

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// runCtl runs actionctl in-process with env variables from env.
func runCtl(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code = Run(ctx, args, Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
	return out.String(), errb.String(), code
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string // in stderr
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"streams"}, "streams needs a subcommand"},
		{[]string{"streams", "add", "x"}, "streams add wants 2 argument(s), got 1"},
		{[]string{"streams", "get"}, "streams get wants 1 argument(s), got 0"},
		{[]string{"streams", "ls", "extra"}, "streams ls wants 0 argument(s)"},
		{[]string{"streams", "add", "x", "rtsp://h/p", "--transport", "carrier-pigeon"}, "--transport must be auto, udp or tcp"},
		{[]string{"streams", "add", "x", "rtsp://h/p", "--window", "ten"}, `invalid value "ten" for flag -window`},
		{[]string{"streams", "update", "x"}, "nothing to change"},
		{[]string{"streams", "update", "x", "--enable", "--disable"}, "--enable and --disable together"},
		{[]string{"watch", "--kinds", "window,bogus"}, `unknown kind "bogus"`},
		{[]string{"classify"}, "classify wants 1 argument(s), got 0"},
		{[]string{"--bogus", "health"}, "flag provided but not defined: -bogus"},
		{[]string{"health", "a", "b"}, "health takes at most one SERVICE"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := runCtl(t, nil, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tc.want)
			}
		})
	}
	for _, help := range [][]string{{"help"}, {"-h"}, {"streams", "ls", "--help"}} {
		stdout, _, code := runCtl(t, nil, help...)
		if code != exitOK || !strings.Contains(stdout, "actionctl [GLOBAL FLAGS] COMMAND") {
			t.Errorf("%v: exit %d, stdout %q", help, code, stdout)
		}
	}
}

// Global flags may come before or after the command, and a command's flag
// set must not reset the ones given before it.
func TestGlobalFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"--server", "127.0.0.1:1", "health"},
		{"health", "--server", "127.0.0.1:1"},
		{"--server", "127.0.0.1:2", "streams", "ls", "--server", "127.0.0.1:1"},
	} {
		_, stderr, code := runCtl(t, nil, args...)
		if code != exitError || !strings.Contains(stderr, "connect to 127.0.0.1:1: Unavailable") {
			t.Errorf("%v: exit %d, stderr %q; want Unavailable from 127.0.0.1:1", args, code, stderr)
		}
	}
	// $ACTIOND_TOKEN is used, and refused without TLS beyond loopback.
	_, stderr, code := runCtl(t, map[string]string{"ACTIOND_TOKEN": "t"}, "--server", "192.0.2.1:50051", "health")
	if code != exitError || !strings.Contains(stderr, "without TLS, a token is sent only to a loopback address") {
		t.Errorf("token to a remote address without TLS: exit %d, stderr %q", code, stderr)
	}
}

func TestOptionFlagsSetOnlyWhatIsGiven(t *testing.T) {
	cases := []struct {
		args []string
		want *actiondv1.StreamOptions
	}{
		{nil, &actiondv1.StreamOptions{}},
		{[]string{"--window", "5s", "--stride", "1.25s", "--top-k", "3"}, &actiondv1.StreamOptions{
			Window: durationpb.New(5 * time.Second), Stride: durationpb.New(1250 * time.Millisecond), TopK: proto.Uint32(3)}},
		{[]string{"--on", "0.7", "--off", "0.3", "--min-windows", "4", "--transport", "TCP"}, &actiondv1.StreamOptions{
			OnThreshold: proto.Float32(0.7), OffThreshold: proto.Float32(0.3), MinConsecutiveWindows: proto.Uint32(4),
			Transport: actiondv1.Transport_TRANSPORT_TCP}},
		// Zero resets to the default in UpdateStream: it must be sent.
		{[]string{"--top-k", "0", "--window", "0s"}, &actiondv1.StreamOptions{TopK: proto.Uint32(0), Window: durationpb.New(0)}},
		{[]string{"--labels", "moving_left, moving_right,"}, &actiondv1.StreamOptions{
			LabelAllowlist: &actiondv1.LabelAllowlist{Labels: []string{"moving_left", "moving_right"}}}},
		// "": all labels again, as an empty allowlist that is set.
		{[]string{"--labels", ""}, &actiondv1.StreamOptions{LabelAllowlist: &actiondv1.LabelAllowlist{}}},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		of := newOptionFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		got, err := of.options()
		if err != nil || !proto.Equal(got, tc.want) {
			t.Errorf("%v: options %v, %v; want %v", tc.args, got, err, tc.want)
		}
		if tc.want.LabelAllowlist != nil && got.LabelAllowlist == nil {
			t.Errorf("%v: the allowlist was left unset", tc.args)
		}
	}
}

func testEvents(at time.Time) []*actiondv1.Event {
	ts := timestamppb.New(at)
	return []*actiondv1.Event{
		{Stream: "dock-3", Sequence: 7, Kind: &actiondv1.Event_WindowResult{WindowResult: &actiondv1.WindowResult{
			MediaStart: durationpb.New(12500 * time.Millisecond), MediaEnd: durationpb.New(22500 * time.Millisecond), EndTime: ts,
			Top: []*actiondv1.LabelScore{{Label: "welding", Score: 0.934}, {Label: "sawing", Score: 0.05}}}}},
		{Stream: "dock-3", Sequence: 8, Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{
			Label: "welding", MediaStart: durationpb.New(11250 * time.Millisecond), StartTime: ts, PeakScore: 0.95}}},
		{Stream: "dock-3", Sequence: 9, Kind: &actiondv1.Event_ActionEnded{ActionEnded: &actiondv1.ActionEnded{
			Label: "welding", MediaStart: durationpb.New(11250 * time.Millisecond), MediaEnd: durationpb.New(40 * time.Second),
			EndTime: ts, PeakScore: 0.97, Reason: actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED}}},
		{Stream: "dock-3", Sequence: 10, Kind: &actiondv1.Event_StreamStatus{StreamStatus: &actiondv1.StreamStatus{
			State: actiondv1.StreamState_STREAM_STATE_PLAYING, Since: ts, Codec: "H264", Width: 1280, Height: 720,
			Transport: actiondv1.Transport_TRANSPORT_TCP, Epoch: 1, EpochReason: "first frame"}}},
		{Kind: &actiondv1.Event_Dropped{Dropped: &actiondv1.Dropped{Count: 12}}},
	}
}

func TestWatchLines(t *testing.T) {
	at := time.Date(2026, 3, 1, 14, 4, 5, 123e6, time.UTC)
	clock := at.Local().Format("15:04:05.000")
	want := []string{
		clock + "  dock-3  12.50s–22.50s  welding 0.93",
		clock + "  dock-3  ACTION STARTED welding  from 11.25s  peak 0.95",
		clock + "  dock-3  ACTION ENDED   welding  11.25s–40.00s  peak 0.97  (score dropped)",
		clock + "  dock-3  status PLAYING  H264 1280x720 over tcp  epoch 1 (first frame)",
		clock + "  this watcher fell behind: 12 events dropped",
	}
	var out bytes.Buffer
	v := newWatchView(Env{Stdout: &out, Getenv: func(string) string { return "" }}, "127.0.0.1:50051", false)
	v.now = func() time.Time { return at }
	for _, ev := range testEvents(at) {
		if err := v.event(ev); err != nil {
			t.Fatal(err)
		}
	}
	v.close()
	if got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("watch printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWatchOnTerminal(t *testing.T) {
	at := time.Now()
	var out bytes.Buffer
	v := newWatchView(Env{Stdout: &out, Terminal: true, Getenv: func(string) string { return "" }}, "127.0.0.1:50051", false)
	for _, ev := range testEvents(at)[:3] {
		if err := v.event(ev); err != nil {
			t.Fatal(err)
		}
	}
	v.retrying(errFake("subscribe: Unavailable: server gone"), 2*time.Second)
	v.retrying(errFake("subscribe: Unavailable: server still gone"), 4*time.Second)
	v.event(testEvents(at)[0])
	v.retrying(errFake("subscribe: Unavailable: "+strings.Repeat("very long reason ", 10)), 2*time.Second)
	v.close()
	s := out.String()
	for _, want := range []string{
		styleStarted + "ACTION STARTED" + styleReset,
		styleEnded + "ACTION ENDED" + styleReset,
		"watching 127.0.0.1:50051: 3 event(s)",
		// The error once as a line, then the count in the status line.
		styleEnded + "subscribe: Unavailable: server gone" + styleReset + "\n",
		"127.0.0.1:50051: no subscription (2 tries); subscribing again in 4s",
		"  subscribed again\n",
		"watching 127.0.0.1:50051: 4 event(s)",
		// Lines are never cut: only the status line.
		strings.Repeat("very long reason ", 10),
	} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}
	if strings.Contains(s, "server still gone") {
		t.Errorf("a second error in a row is printed: %q", s)
	}
	if !strings.HasSuffix(s, "\r\x1b[K") {
		t.Errorf("the status line is not cleared at the end: %q", s)
	}

	// NO_COLOR: no escapes in the event lines; not a terminal: none at all.
	out.Reset()
	v = newWatchView(Env{Stdout: &out, Terminal: true, Getenv: func(k string) string {
		return map[string]string{"NO_COLOR": "1"}[k]
	}}, "a", false)
	v.event(testEvents(at)[1])
	if strings.Contains(out.String(), "\x1b[1") {
		t.Errorf("NO_COLOR output has colours: %q", out.String())
	}
	out.Reset()
	v = newWatchView(Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}, "a", false)
	v.event(testEvents(at)[1])
	v.retrying(errFake("gone"), time.Second)
	v.event(testEvents(at)[1])
	if strings.Contains(out.String(), "\x1b") || !strings.Contains(out.String(), "actionctl: watch: gone; subscribing again in 1s\n") ||
		!strings.Contains(out.String(), "actionctl: watch: subscribed again\n") {
		t.Errorf("plain output: %q", out.String())
	}
}

type errFake string

func (e errFake) Error() string { return string(e) }

func TestWatchJSONUsesProtoNames(t *testing.T) {
	var out bytes.Buffer
	v := newWatchView(Env{Stdout: &out, Terminal: true, Getenv: func(string) string { return "" }}, "a", true)
	v.event(testEvents(time.Unix(1700000000, 0))[0])
	v.close()
	s := out.String()
	if strings.Count(s, "\n") != 1 || !strings.Contains(s, `"window_result"`) || !strings.Contains(s, `"media_start"`) ||
		!strings.Contains(s, `"sequence":"7"`) || strings.Contains(s, "\x1b") {
		t.Errorf("watch --json printed %q", s)
	}
}

func TestFit(t *testing.T) {
	if got := fit("short"); got != "short" {
		t.Errorf("fit(short) = %q", got)
	}
	long := strings.Repeat("é", 100)
	if got := []rune(fit(long)); len(got) != statusWidth || got[statusWidth-1] != '…' {
		t.Errorf("fit(100 runes) = %q", string(got))
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 5847776: "5,847,776", -1234567: "-1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
