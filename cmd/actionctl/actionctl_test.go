package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

func newStream() *actiondv1.Stream { return &actiondv1.Stream{} }
func newEvent() *actiondv1.Event   { return &actiondv1.Event{} }

func TestStreamsRoundTrip(t *testing.T) {
	t.Parallel()
	srv, simURL := sharedServer(t)
	getJSON := func(name string) *actiondv1.Stream {
		t.Helper()
		return unmarshalLines(t, mustCtl(t, srv, "streams", "get", name, "--json"), newStream)[0]
	}

	out := mustCtl(t, srv, "streams", "add", "rt-cam", simURL+"/right", "--window", "5s", "--stride", "1.25s", "--top-k", "3",
		"--on", "0.7", "--off", "0.3", "--min-windows", "3", "--labels", "still,moving_right,moving_left", "--transport", "tcp", "--disabled")
	for _, want := range []string{
		"name:", "rt-cam", "state:", "DISABLED",
		// The allowlist comes back in the model's order.
		"window 5s, stride 1.25s, top-k 3, on 0.70, off 0.30, min windows 3, labels moving_left,moving_right,still, transport tcp, disabled",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("streams add printed no %q:\n%s", want, out)
		}
	}
	s := getJSON("rt-cam")
	o := s.GetOptions()
	if s.GetUrl() != simURL+"/right" || o.GetWindow().AsDuration() != 5*time.Second || o.GetStride().AsDuration() != 1250*time.Millisecond ||
		o.GetTopK() != 3 || o.GetOnThreshold() != 0.7 || o.GetOffThreshold() != 0.3 || o.GetMinConsecutiveWindows() != 3 ||
		!slices.Equal(o.GetLabelAllowlist().GetLabels(), []string{"moving_left", "moving_right", "still"}) ||
		o.GetTransport() != actiondv1.Transport_TRANSPORT_TCP || o.GetEnabled() ||
		s.GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_DISABLED {
		t.Errorf("streams get --json after add: %v", s)
	}

	// ls: a table, and JSON lines ordered by name.
	table := mustCtl(t, srv, "streams", "ls")
	if !regexp.MustCompile(`(?m)^NAME\s+STATE\s+`).MatchString(table) || !regexp.MustCompile(`(?m)^rt-cam\s+DISABLED\s+`).MatchString(table) ||
		!regexp.MustCompile(`(?m)^right\s+PLAYING\s+`).MatchString(table) && !regexp.MustCompile(`(?m)^right\s+CONNECTING\s+`).MatchString(table) {
		t.Errorf("streams ls:\n%s", table)
	}
	var names []string
	for _, s := range unmarshalLines(t, mustCtl(t, srv, "streams", "ls", "--json"), newStream) {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "rt-cam") || !slices.Contains(names, "right") || !slices.IsSorted(names) {
		t.Errorf("streams ls --json names %v", names)
	}

	// update: only what is given changes.
	mustCtl(t, srv, "streams", "update", "rt-cam", "--top-k", "2", "--enable")
	s = getJSON("rt-cam")
	if o := s.GetOptions(); o.GetTopK() != 2 || !o.GetEnabled() || o.GetWindow().AsDuration() != 5*time.Second ||
		o.GetOnThreshold() != 0.7 || len(o.GetLabelAllowlist().GetLabels()) != 3 || o.GetTransport() != actiondv1.Transport_TRANSPORT_TCP {
		t.Errorf("after update --top-k 2 --enable: %v", o)
	}
	if st := s.GetStatus().GetState(); st == actiondv1.StreamState_STREAM_STATE_DISABLED {
		t.Errorf("enabled stream is %v", st)
	}
	// An empty --labels means all labels again; 0 resets top-k.
	mustCtl(t, srv, "streams", "update", "rt-cam", "--labels", "", "--top-k", "0", "--disable")
	if o := getJSON("rt-cam").GetOptions(); len(o.GetLabelAllowlist().GetLabels()) != 0 || o.GetTopK() != 5 || o.GetEnabled() {
		t.Errorf("after update --labels '' --top-k 0 --disable: %v", o)
	}
	// A new URL with credentials: they are never shown.
	withCreds := strings.Replace(simURL, "rtsp://", "rtsp://viewer:pa55word@", 1) + "/right"
	out = mustCtl(t, srv, "streams", "update", "rt-cam", "--url", withCreds)
	if strings.Contains(out, "pa55word") || strings.Contains(mustCtl(t, srv, "streams", "get", "rt-cam", "--json"), "pa55word") {
		t.Errorf("the password is shown:\n%s", out)
	}

	// Errors: exit 1 with the status code and message.
	wantFail(t, runCtl(t, srv, nil, "streams", "add", "rt-cam", simURL+"/right"), "AlreadyExists")
	wantFail(t, runCtl(t, srv, nil, "streams", "add", "bad-url", "http://127.0.0.1/x"), "InvalidArgument")
	wantFail(t, runCtl(t, srv, nil, "streams", "update", "rt-cam", "--labels", "juggling"), "InvalidArgument")
	if out := mustCtl(t, srv, "streams", "rm", "rt-cam"); out != "removed stream \"rt-cam\"\n" {
		t.Errorf("streams rm printed %q", out)
	}
	r := runCtl(t, srv, nil, "streams", "get", "rt-cam")
	wantFail(t, r, "NotFound")
	if !strings.HasPrefix(r.stderr, `actionctl: get stream "rt-cam": NotFound: `) {
		t.Errorf("stderr %q", r.stderr)
	}
	wantFail(t, runCtl(t, srv, nil, "streams", "rm", "rt-cam"), "NotFound")
}

// watch follows a stream added after it started: WindowResults labelled
// moving_right, and the action the label starts.
func TestWatch(t *testing.T) {
	t.Parallel()
	srv, simURL := sharedServer(t)
	env := []string{"ACTIOND_TOKEN="}
	jsonWatch, err := start("actionctl watch --json", env, actionctl, "--server", srv.addr, "watch", "--json", "--stream", "watched")
	if err != nil {
		t.Fatal(err)
	}
	textWatch, err := start("actionctl watch", env, actionctl, "--server", srv.addr, "watch", "--stream", "watched", "--kinds", "window,started,ended")
	if err != nil {
		t.Fatal(err)
	}
	logOnFailure(t, jsonWatch)
	logOnFailure(t, textWatch)
	defer jsonWatch.stop(syscall.SIGKILL)
	defer textWatch.stop(syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond) // the watchers subscribe; the window takes 5 s to fill anyway
	mustCtl(t, srv, "streams", "add", "watched", simURL+"/right", "--window", "5s")
	defer mustCtl(t, srv, "streams", "rm", "watched")

	var windows int
	var started *actiondv1.ActionStarted
	deadline := time.Now().Add(40 * time.Second)
	for started == nil || windows < 2 || !strings.Contains(textWatch.out.String(), "ACTION STARTED moving_right") {
		if time.Now().After(deadline) {
			t.Fatalf("within 40 s: %d windows labelled moving_right, action started %v", windows, started)
		}
		time.Sleep(200 * time.Millisecond)
		out := jsonWatch.out.String()
		out = out[:strings.LastIndexByte(out, '\n')+1] // whole lines only
		windows, started = 0, nil
		for _, ev := range unmarshalLines(t, out, newEvent) {
			if ev.GetStream() != "watched" {
				t.Fatalf("event of another stream: %v", ev)
			}
			if w := ev.GetWindowResult(); w != nil && w.GetTop()[0].GetLabel() == "moving_right" {
				windows++
			}
			if a := ev.GetActionStarted(); a != nil && a.GetLabel() == "moving_right" {
				started = a
			}
		}
	}
	if started.GetActionId() == "" || started.GetPeakScore() < 0.6 {
		t.Errorf("ActionStarted %v", started)
	}
	// The JSON has the .proto field names.
	if !strings.Contains(jsonWatch.out.String(), `"window_result":`) {
		t.Errorf("watch --json does not use the proto field names")
	}
	// Text: a line per event with local time, stream, media range, label.
	line := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d\.\d{3}  watched  \d+\.\d\ds–\d+\.\d\ds  moving_right \d\.\d\d$`)
	if !line.MatchString(textWatch.out.String()) {
		t.Errorf("watch printed no window line like %v:\n%s", line, textWatch.out)
	}
	// Interrupted, watch ends with status 0.
	for _, p := range []*proc{jsonWatch, textWatch} {
		p.stop(syscall.SIGINT)
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s ended with %d after SIGINT", p.name, code)
		}
	}
}

func TestClassifyModelHealth(t *testing.T) {
	t.Parallel()
	srv, _ := sharedServer(t)
	clip := filepath.Join(testdata, "archery.avi")

	out := mustCtl(t, srv, "classify", clip)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	idx := fmt.Sprint(archeryIndices)
	if want := "archery.avi: 131 frames, sampled " + idx[1:len(idx)-1] + " (model motion)"; lines[0] != want {
		t.Errorf("classify printed %q, want %q", lines[0], want)
	}
	if len(lines) != 7 || !regexp.MustCompile(`^  1\. \w+ +\d\.\d{4}  \(class \d\)$`).MatchString(lines[1]) ||
		!strings.HasPrefix(lines[6], "  timing: decode ") {
		t.Errorf("classify printed:\n%s", out)
	}

	// --json: the same object as `actiond classify --json`, key for key.
	var remote, local map[string]any
	if err := json.Unmarshal([]byte(mustCtl(t, srv, "classify", "--json", "--top-k", "3", clip)), &remote); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "", actiond, "classify", "--model", motion, "--json", "--top-k", "3", "--threads", "1", clip)
	if err := json.Unmarshal([]byte(r.stdout), &local); err != nil {
		t.Fatalf("actiond classify: %v, %s", err, r.stderr)
	}
	keys := func(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
	same := slices.Equal(keys(remote), keys(local)) && filepath.Base(local["file"].(string)) == remote["file"]
	for _, k := range []string{"model", "untrained", "frames_total", "frame_indices"} {
		same = same && fmt.Sprint(remote[k]) == fmt.Sprint(local[k])
	}
	rt, lt := remote["top"].([]any), local["top"].([]any)
	same = same && len(rt) == 3 && len(lt) == 3
	for i := range min(len(rt), len(lt)) {
		a, b := rt[i].(map[string]any), lt[i].(map[string]any)
		same = same && a["label"] == b["label"] && a["index"] == b["index"] && math.Abs(a["score"].(float64)-b["score"].(float64)) < 1e-4
	}
	if !same {
		t.Errorf("actionctl classify --json\n%v\nactiond classify --json\n%v", remote, local)
	}

	// A uri names a file on the server; a missing local file fails alone.
	abs, _ := filepath.Abs(clip)
	if out := mustCtl(t, srv, "classify", "--top-k", "1", "file://"+abs); !strings.HasPrefix(out, "archery.avi: 131 frames") {
		t.Errorf("classify file://: %s", out)
	}
	rr := runCtl(t, srv, nil, "classify", filepath.Join(t.TempDir(), "missing.mp4"), clip)
	if rr.code != 1 || !strings.Contains(rr.stderr, "no such file") || !strings.HasPrefix(rr.stdout, "archery.avi: 131 frames") {
		t.Errorf("classify missing + archery: exit %d\n%s%s", rr.code, rr.stdout, rr.stderr)
	}

	out = mustCtl(t, srv, "model")
	if !regexp.MustCompile(`(?m)^model: +motion$`).MatchString(out) ||
		!strings.Contains(out, "5: moving_left, moving_right, moving_up, moving_down, still") {
		t.Errorf("model printed:\n%s", out)
	}
	m := unmarshalLines(t, mustCtl(t, srv, "model", "--json"), func() *actiondv1.Model { return &actiondv1.Model{} })[0]
	if m.GetName() != "motion" || m.GetSegments() != 16 || len(m.GetLabels()) != 5 {
		t.Errorf("model --json: %v", m)
	}

	if out := mustCtl(t, srv, "health"); out != "SERVING\nevent log: SERVING\n" {
		t.Errorf("health printed %q", out)
	}
	r = run(t, nil, "", actionctl, "--server", testenv.FreeAddr(t), "health")
	wantFail(t, r, "Unavailable")
}

// A server with a token: calls without it, or with another, fail with
// Unauthenticated; health needs none.
func TestToken(t *testing.T) {
	t.Parallel()
	_, simURL := sharedServer(t)
	cfg, err := writeConfig(t.TempDir(), simURL, 5*time.Second, "")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(testenv.FreeAddr(t), cfg, []string{"ACTIOND_TOKENS=s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop(syscall.SIGTERM)
	logOnFailure(t, srv.proc)

	r := runCtl(t, srv, nil, "streams", "ls")
	wantFail(t, r, "Unauthenticated")
	wantFail(t, runCtl(t, srv, nil, "--token", "guess", "model"), "Unauthenticated")
	if r := runCtl(t, srv, []string{"ACTIOND_TOKEN=s3cret"}, "streams", "ls"); r.code != 0 || !strings.Contains(r.stdout, "right") {
		t.Errorf("with $ACTIOND_TOKEN: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mustCtl(t, srv, "--token", "s3cret", "model")
	if out := mustCtl(t, srv, "health"); out != "SERVING\nevent log: SERVING\n" {
		t.Errorf("health without a token: %q", out)
	}
	// Reflection needs the token too, so grpcurl fails before the call.
	r = run(t, nil, "", grpcurl, "-plaintext", srv.addr, "actiond.v1.RecognitionService/GetModel")
	if r.code == 0 || !strings.Contains(r.stderr, "Unauthenticated") {
		t.Errorf("grpcurl without a token: %s", r.stderr)
	}
	r = run(t, nil, "", grpcurl, "-plaintext", "-H", "authorization: Bearer s3cret", srv.addr, "actiond.v1.RecognitionService/GetModel")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "motion"`) {
		t.Errorf("grpcurl with the token: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(srv.out.String(), "s3cret") {
		t.Errorf("the token is in the server's log")
	}
}
