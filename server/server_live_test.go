package server

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// A camera showing the demo's bouncing disk, through the whole server: the
// subscriber gets a WindowResult per window with media times that match
// the scene, ActionStarted(moving_right), and at the turn ActionEnded of
// it, then ActionStarted(moving_left); removing the stream ends the action
// and sends its last status.
func TestLiveEventsFollowTheScene(t *testing.T) {
	t.Parallel()
	const user, pass = "admin", "s3cret-pass"
	sim, began := startCamera(t, user, pass)
	ts := startServer(t, Config{MetricsListen: "127.0.0.1:0"})
	ctx := ctxT(t, 90*time.Second)

	all := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{})
	actions := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{
		actiondv1.EventKind_EVENT_KIND_ACTION_STARTED, actiondv1.EventKind_EVENT_KIND_ACTION_ENDED,
	}})
	lefts := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Streams: []string{"cam"}, Labels: []string{"moving_left"}})
	other := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Streams: []string{"another"}})

	added, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{
		Name: "cam", Url: withCredentials(sim.URL("bounce"), user, pass),
		Options: &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := added.GetStream()
	noSecret(t, "the AddStream response", s.String(), pass)
	if s.GetUrl() != "rtsp://***@"+sim.Addr()+"/bounce" || s.GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_CONNECTING ||
		s.GetOptions().GetWindow().AsDuration() != camsim.BounceWindow || s.GetOptions().GetStride().AsDuration() != camsim.BounceStride ||
		s.GetOptions().GetOnThreshold() != 0.6 || s.GetOptions().GetOffThreshold() != 0.4 || s.GetOptions().GetMinConsecutiveWindows() != 2 ||
		s.GetOptions().GetTopK() != 5 || s.GetOptions().GetTransport() != actiondv1.Transport_TRANSPORT_TCP || !s.GetOptions().GetEnabled() {
		t.Errorf("added %v", s)
	}

	// Up to the first ActionStarted(moving_left) after an
	// ActionEnded(moving_right): at most a whole loop (8 s) and a leg.
	var rightEnded bool
	events := all.until(60*time.Second, func(ev *actiondv1.Event) bool {
		if a := ev.GetActionEnded(); a != nil && a.GetLabel() == "moving_right" {
			rightEnded = true
		}
		a := ev.GetActionStarted()
		return rightEnded && a != nil && a.GetLabel() == "moving_left"
	})
	t.Logf("events:\n%s", describeEvents(events))

	// Every event of the stream, numbered from 1 without a hole; the
	// first is its CONNECTING status.
	for i, ev := range events {
		if ev.GetStream() != "cam" || ev.GetSequence() != uint64(i+1) {
			t.Fatalf("event %d is %s, want cam#%d", i, describeEvent(ev), i+1)
		}
	}
	if st := events[0].GetStreamStatus(); st.GetState() != actiondv1.StreamState_STREAM_STATE_CONNECTING {
		t.Errorf("first event %s, want the CONNECTING status", describeEvent(events[0]))
	}

	// Windows: 2.5 s long, one every 0.625 s, capture time and media time
	// in step; each window that lies within one leg of the scene has that
	// leg's direction on top.
	var (
		windows  []*actiondv1.WindowResult
		offset   time.Duration // capture time minus media time
		checked  int
		sceneAt  = func(abs time.Time) time.Duration { return abs.Sub(began) % (8 * time.Second) }
		slack    = 150 * time.Millisecond
		topLabel = func(w *actiondv1.WindowResult) string { return w.GetTop()[0].GetLabel() }
	)
	for _, ev := range events {
		w := ev.GetWindowResult()
		if w == nil {
			continue
		}
		if d := w.GetMediaEnd().AsDuration() - w.GetMediaStart().AsDuration(); d != camsim.BounceWindow {
			t.Errorf("%s: %v long, want %v", describeEvent(ev), d, camsim.BounceWindow)
		}
		if n := len(windows); n > 0 {
			if d := w.GetMediaEnd().AsDuration() - windows[n-1].GetMediaEnd().AsDuration(); d != camsim.BounceStride {
				t.Errorf("%s: %v after the last window, want the stride %v", describeEvent(ev), d, camsim.BounceStride)
			}
		}
		if len(w.GetTop()) != 5 || w.GetModel() != "motion" || w.GetEpoch() != 1 || w.GetInferenceLatency().AsDuration() <= 0 {
			t.Errorf("%s: %v", describeEvent(ev), w)
		}
		// The frame that completes a window is sent at or after the
		// window's end, and arrives before the result is out (camera
		// and server share this machine's clock).
		if ct, end := w.GetCompletedTime().AsTime(), w.GetEndTime().AsTime(); ct.Before(end.Add(-slack)) || ct.After(end.Add(10*time.Second)) || ct.After(time.Now()) {
			t.Errorf("%s: completed at %v, window ends at %v", describeEvent(ev), ct, end)
		}
		windows = append(windows, w)
		if w.GetClock() != actiondv1.Clock_CLOCK_RTCP {
			continue
		}
		off := w.GetStartTime().AsTime().Sub(began) - w.GetMediaStart().AsDuration()
		if offset == 0 {
			offset = off
		} else if d := off - offset; d.Abs() > 5*time.Millisecond {
			t.Errorf("%s: capture and media time drift apart by %v", describeEvent(ev), d)
		}
		from := sceneAt(w.GetStartTime().AsTime())
		to := from + camsim.BounceWindow
		var want string
		switch {
		case from >= -slack && to <= 4*time.Second+slack:
			want = "moving_right"
		case from >= 4*time.Second-slack && to <= 8*time.Second+slack:
			want = "moving_left"
		default:
			continue // spans a turn
		}
		checked++
		if topLabel(w) != want {
			t.Errorf("%s: scene %v..%v, want %s on top", describeEvent(ev), from, to, want)
		}
	}
	if checked < 2 {
		t.Errorf("only %d windows lay within one leg", checked)
	}

	// The actions: right started, ended, left started, in that order, each
	// at windows whose majority moves their way.
	var started, ended, left *actiondv1.Event
	for _, ev := range events {
		switch {
		case ev.GetActionStarted().GetLabel() == "moving_right" && started == nil:
			started = ev
		case ev.GetActionEnded().GetLabel() == "moving_right" && started != nil && ended == nil:
			ended = ev
		case ev.GetActionStarted().GetLabel() == "moving_left" && ended != nil:
			left = ev
		}
	}
	if started == nil || ended == nil || left == nil {
		t.Fatalf("want started(moving_right), ended(moving_right), started(moving_left) in order")
	}
	st, en, lf := started.GetActionStarted(), ended.GetActionEnded(), left.GetActionStarted()
	// A window's majority is the side of the turn its middle is on.
	middle := func(abs time.Time) time.Duration { return sceneAt(abs.Add(camsim.BounceWindow / 2)) }
	if m := middle(st.GetStartTime().AsTime()); m > 4*time.Second+slack && m < 8*time.Second-slack {
		t.Errorf("moving_right started at scene %v (middle of its first window), in the left leg", m)
	}
	if m := middle(en.GetEndTime().AsTime().Add(-camsim.BounceWindow)); m > 4*time.Second+slack && m < 8*time.Second-slack {
		t.Errorf("moving_right ended at scene %v (middle of its last window), in the left leg", m)
	}
	if m := middle(lf.GetStartTime().AsTime()); m < 4*time.Second-slack {
		t.Errorf("moving_left started at scene %v (middle of its first window), in the right leg", m)
	}
	if en.GetActionId() != st.GetActionId() || en.GetReason() != actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED ||
		en.GetMediaStart().AsDuration() != st.GetMediaStart().AsDuration() || lf.GetActionId() == st.GetActionId() {
		t.Errorf("ended %v does not close started %v", en, st)
	}
	if ended.GetSequence() >= left.GetSequence() {
		t.Errorf("moving_left started (#%d) before moving_right ended (#%d)", left.GetSequence(), ended.GetSequence())
	}
	// An action starts at the first window of its run and ends at the last
	// window that scored its label at or above off: both are windows seen.
	startsAt, endsAt := map[time.Duration]bool{}, map[time.Duration]bool{}
	for _, w := range windows {
		startsAt[w.GetMediaStart().AsDuration()] = true
		endsAt[w.GetMediaEnd().AsDuration()] = true
	}
	if !startsAt[st.GetMediaStart().AsDuration()] || !endsAt[en.GetMediaEnd().AsDuration()] || !startsAt[lf.GetMediaStart().AsDuration()] {
		t.Errorf("action times %v, %v, %v are not window bounds", st.GetMediaStart().AsDuration(), en.GetMediaEnd().AsDuration(), lf.GetMediaStart().AsDuration())
	}
	if got := st.GetStartTime().AsTime().Sub(began) - st.GetMediaStart().AsDuration(); offset != 0 && (got-offset).Abs() > 5*time.Millisecond {
		t.Errorf("ActionStarted: start_time and media_start disagree by %v", got-offset)
	}

	// The actions-only subscriber got the same events, numbered the same.
	var want []*actiondv1.Event
	for _, ev := range events {
		if ev.GetActionStarted() != nil || ev.GetActionEnded() != nil {
			want = append(want, ev)
		}
	}
	for _, w := range want {
		if got := actions.next(10 * time.Second); !proto.Equal(got, w) {
			t.Errorf("actions-only subscriber got %s, want %s", describeEvent(got), describeEvent(w))
		}
	}
	// The moving_left subscriber: windows with only moving_left in top
	// (when it is there at all), and moving_left actions.
	for _, ev := range lefts.until(10*time.Second, func(ev *actiondv1.Event) bool { return ev.GetSequence() >= left.GetSequence() }) {
		switch k := ev.GetKind().(type) {
		case *actiondv1.Event_WindowResult:
			if len(k.WindowResult.GetTop()) != 1 || k.WindowResult.GetTop()[0].GetLabel() != "moving_left" {
				t.Errorf("moving_left subscriber got %v", k.WindowResult.GetTop())
			}
		case *actiondv1.Event_ActionStarted:
			if k.ActionStarted.GetLabel() != "moving_left" {
				t.Errorf("moving_left subscriber got %s", describeEvent(ev))
			}
		case *actiondv1.Event_ActionEnded:
			if k.ActionEnded.GetLabel() != "moving_left" {
				t.Errorf("moving_left subscriber got %s", describeEvent(ev))
			}
		}
	}

	// GetStream: how the stream is doing.
	got, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: "cam"})
	if err != nil {
		t.Fatal(err)
	}
	gs := got.GetStream().GetStatus()
	lastEnd := windows[len(windows)-1].GetMediaEnd().AsDuration()
	if gs.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || gs.GetCodec() != "H264" || gs.GetTransport() != actiondv1.Transport_TRANSPORT_TCP ||
		gs.GetWidth() != 160 || gs.GetHeight() != 120 || gs.GetInputFps() < 11 || gs.GetInputFps() > 13 || gs.GetEpoch() != 1 ||
		gs.GetReconnectCount() != 0 || gs.GetFramesDecoded() < 12*uint64(lastEnd/time.Second) || gs.GetWindowCount() < uint64(len(windows)) ||
		gs.GetLastWindowEnd().AsDuration() < lastEnd || gs.GetModel() != "motion" || gs.GetLastError() != "" {
		t.Errorf("status %v; want PLAYING, H264 over TCP, 160x120 at 12 fps, epoch 1, windows up to %v", gs, lastEnd)
	}
	noSecret(t, "GetStream", got.String(), pass)

	// Metrics: per stream, per batch, per subscriber; no credentials.
	resp, err := http.Get("http://" + ts.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(body)
	for _, re := range []string{
		`actiond_stream_frames_total\{stream="cam"\} [1-9]`,
		`actiond_stream_windows_total\{stream="cam"\} [1-9]`,
		`actiond_stream_state\{state="playing",stream="cam"\} 1`,
		`actiond_window_to_event_seconds_count\{stream="cam"\} [1-9]`,
		`actiond_inference_batch_size_count [1-9]`,
		`actiond_inference_seconds_count [1-9]`,
		`actiond_subscribers 4`,
		`actiond_events_queued_total [1-9]`,
		`actiond_model_loaded 1`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("metrics lack %s", re)
		}
	}
	noSecret(t, "the metrics", metrics, pass)

	// A new window restarts the stream: the open action ends (the camera
	// is dropped), a new epoch starts, media time goes on increasing and
	// the sequence numbers go on.
	upd, err := ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "cam", Options: &actiondv1.StreamOptions{Window: dur(2 * time.Second), Stride: dur(500 * time.Millisecond)}})
	if err != nil {
		t.Fatal(err)
	}
	if o := upd.GetStream().GetOptions(); o.GetWindow().AsDuration() != 2*time.Second || o.GetStride().AsDuration() != 500*time.Millisecond || o.GetTopK() != 5 {
		t.Errorf("updated options %v", o)
	}
	seen := events[len(events)-1].GetSequence()
	restart := all.until(30*time.Second, func(ev *actiondv1.Event) bool { return ev.GetActionStarted() != nil })
	t.Logf("after the update:\n%s", describeEvents(restart))
	var lost, epoch2 bool
	for _, ev := range restart {
		if seen++; ev.GetSequence() != seen {
			t.Errorf("after the update: %s, want #%d", describeEvent(ev), seen)
		}
		if a := ev.GetActionEnded(); a != nil && a.GetReason() == actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_LOST && a.GetLabel() == "moving_left" {
			lost = true
		}
		if w := ev.GetWindowResult(); w != nil && w.GetEpoch() == 2 {
			epoch2 = true
			if w.GetMediaStart().AsDuration() < lastEnd || w.GetMediaEnd().AsDuration()-w.GetMediaStart().AsDuration() != 2*time.Second {
				t.Errorf("after the update: %s, want 2s windows after %v", describeEvent(ev), lastEnd)
			}
		} else if w != nil {
			t.Errorf("after the update: %s, want epoch 2", describeEvent(ev))
		}
	}
	if !lost || !epoch2 {
		t.Errorf("after the update, want moving_left ended (STREAM_LOST) and windows of epoch 2:\n%s", describeEvents(restart))
	}

	// Removing the stream ends the open action and sends the last status,
	// STOPPED.
	if _, err := ts.streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: "cam"}); err != nil {
		t.Fatal(err)
	}
	tail := all.until(10*time.Second, func(ev *actiondv1.Event) bool {
		return ev.GetStreamStatus().GetState() == actiondv1.StreamState_STREAM_STATE_STOPPED
	})
	var removedEnd *actiondv1.ActionEnded
	for _, ev := range tail {
		if a := ev.GetActionEnded(); a != nil && a.GetReason() == actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_REMOVED {
			removedEnd = a
		}
	}
	if removedEnd == nil || removedEnd.GetActionId() == "" {
		t.Errorf("no ActionEnded(STREAM_REMOVED) before the last status:\n%s", describeEvents(tail))
	}
	select {
	case ev := <-other.events:
		t.Errorf("the subscriber of stream \"another\" got %s", describeEvent(ev))
	default:
	}
	noSecret(t, "the events", describeEvents(events)+describeEvents(tail), pass)
	noSecret(t, "the server's log", ts.logs.String(), pass)
}

// A subscriber that stops reading holds up nobody: another subscriber gets
// every event on time, ingest and inference are not slowed, and when the
// stuck one reads again it gets a Dropped with the count it lost, then the
// newest events.
func TestStuckSubscriberDelaysNobody(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Subscribers: SubscribersConfig{QueueSize: 64}})
	ctx := ctxT(t, 60*time.Second)
	c := ts.core.Load()

	// The stuck one: a client that reads nothing. Its flow-control window
	// is fixed at 64 KiB (no growing by BDP estimation), so the server's
	// sends to it block after some 128 KiB.
	stuckConn, err := newClientConn(ts.Addr(), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer stuckConn.Close()
	stuck, err := actiondv1.NewRecognitionServiceClient(stuckConn).Subscribe(ctx, &actiondv1.SubscribeRequest{Streams: []string{"flood"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stuck.Header(); err != nil {
		t.Fatal(err)
	}
	live := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Streams: []string{"flood"}})

	// Events as the scheduler makes them, faster than any camera: a
	// stream "flood" with a window result every millisecond and a half.
	const n = 2000
	opts := streamOptions{topK: 5, on: 0.6, off: 0.4, consecutive: 2}
	c.hub.streamChanged(streamChange{kind: streamAdded, name: "flood", gen: 1 << 60, opts: opts, status: &actiondv1.StreamStatus{State: actiondv1.StreamState_STREAM_STATE_PLAYING}})
	flooded := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for i := range n - 1 {
			now := time.Now()
			c.hub.windowResult(hubResult{
				name: "flood", gen: 1 << 60, epoch: 1, made: now,
				span:   ingest.Span{MediaStart: time.Duration(i) * time.Second, MediaEnd: time.Duration(i+1) * time.Second, AbsStart: now, AbsEnd: now, Clock: ingest.ClockReceive},
				scores: []float32{0.1, 0.2, 0.3, 0.15, 0.25},
			})
			time.Sleep(1500 * time.Microsecond)
		}
		flooded <- time.Since(start)
	}()

	// The live subscriber: every event (the status, then the windows), in
	// order, none dropped, each soon after it was made.
	var worst time.Duration
	for i := 1; i <= n; i++ {
		ev := live.next(10 * time.Second)
		if ev.GetSequence() != uint64(i) || ev.GetDropped() != nil {
			t.Fatalf("live subscriber: event %d is %s", i, describeEvent(ev))
		}
		if w := ev.GetWindowResult(); w != nil {
			worst = max(worst, time.Since(w.GetEndTime().AsTime()))
		}
	}
	took := <-flooded
	t.Logf("%d events in %v; the live subscriber's worst delay %v", n, took, worst)
	if worst > 2*time.Second {
		t.Errorf("the live subscriber got an event %v after it was made", worst)
	}
	if took > 20*time.Second {
		t.Errorf("making %d events took %v: the hub waited", n, took)
	}

	// The stuck one reads again: what it gets plus what it was told it
	// lost is every event, the last one included.
	var got, lost uint64
	last := uint64(0)
	for last != n {
		r, err := stuck.Recv()
		if err != nil {
			t.Fatalf("stuck subscriber: %v", err)
		}
		ev := r.GetEvent()
		if d := ev.GetDropped(); d != nil {
			if d.GetCount() == 0 || ev.GetSequence() != 0 || ev.GetStream() != "" {
				t.Errorf("Dropped %v", ev)
			}
			lost += d.GetCount()
			continue
		}
		if ev.GetSequence() <= last {
			t.Fatalf("stuck subscriber: #%d after #%d", ev.GetSequence(), last)
		}
		last = ev.GetSequence()
		got++
	}
	t.Logf("the stuck subscriber got %d events and was told %d were dropped", got, lost)
	if lost == 0 || got+lost != n {
		t.Errorf("stuck subscriber: %d events + %d dropped, want %d in all, some dropped", got, lost, n)
	}
	if v := testutilCounter(t, ts.metrics, "actiond_events_dropped_total"); v != float64(lost) {
		t.Errorf("actiond_events_dropped_total %v, want %d", v, lost)
	}
}

// A restarted server with the same state file watches the streams added
// over the API again, as they were last changed; the configured stream is
// not copied into the file.
func TestRestartRestoresStreams(t *testing.T) {
	t.Parallel()
	cfg := Config{DataDir: t.TempDir(), Streams: []StreamSpec{{Name: "from-config", URL: "rtsp://127.0.0.1:1/c", Enabled: ptr(false)}},
		Ingest: IngestConfig{BackoffMin: 50 * time.Millisecond, BackoffMax: 100 * time.Millisecond}}
	ctx := ctxT(t, 60*time.Second)

	first := startServer(t, cfg)
	adds := []*actiondv1.AddStreamRequest{
		{Name: "dock-3", Url: "rtsp://user:pw1234@127.0.0.1:1/a", Options: &actiondv1.StreamOptions{
			Window: dur(5 * time.Second), TopK: ptr[uint32](3), Enabled: ptr(false),
			LabelAllowlist: &actiondv1.LabelAllowlist{Labels: []string{"moving_left"}}}},
		{Name: "gate", Url: "rtsp://127.0.0.1:1/b", Options: &actiondv1.StreamOptions{Transport: actiondv1.Transport_TRANSPORT_TCP}},
		{Name: "gone", Url: "rtsp://127.0.0.1:1/c"},
	}
	for _, a := range adds {
		if _, err := first.streams.AddStream(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := first.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "dock-3", Options: &actiondv1.StreamOptions{OnThreshold: ptr[float32](0.8)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := first.streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	want := listAll(t, ctx, first)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := startServer(t, cfg)
	got := listAll(t, ctx, second)
	if len(got) != 3 || len(want) != 3 {
		t.Fatalf("after the restart %d streams, before %d; want from-config, dock-3 and gate", len(got), len(want))
	}
	for i := range got {
		if g, w := got[i], want[i]; g.GetName() != w.GetName() || g.GetUrl() != w.GetUrl() || !proto.Equal(g.GetOptions(), w.GetOptions()) {
			t.Errorf("after the restart %v %v %v, before %v %v %v", g.GetName(), g.GetUrl(), g.GetOptions(), w.GetName(), w.GetUrl(), w.GetOptions())
		}
	}
	// top_k 3 asked, 1 in effect: the allowlist has one label.
	if o := got[0].GetOptions(); got[0].GetName() != "dock-3" || o.GetOnThreshold() != 0.8 || o.GetTopK() != 1 || o.GetWindow().AsDuration() != 5*time.Second || o.GetEnabled() {
		t.Errorf("dock-3 restored as %v", got[0])
	}
	saved := registryStreams(t, second, "")
	if len(saved) != 2 || saved[0].Name != "dock-3" || saved[0].URL != "rtsp://user:pw1234@127.0.0.1:1/a" || saved[0].TopK != 3 || saved[1].Name != "gate" {
		t.Errorf("stream registry %+v, want dock-3 (with its credentials, to connect) and gate", saved)
	}
}

func listAll(t *testing.T, ctx context.Context, ts *testServer) []*actiondv1.Stream {
	t.Helper()
	r, err := ts.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetStreams()
}

const archery = "../testdata/archery.avi"

// Classify answers what `actiond classify --json` prints: the same frames
// for an upload as for the file; too large an upload, a uri outside the
// allowed directories and a clip that does not decode fail with their
// codes.
func TestClassify(t *testing.T) {
	t.Parallel()
	clip, err := osReadFile(archery)
	if err != nil {
		t.Fatal(err)
	}
	dir := absDir(t, "../testdata")
	ts := startServer(t, Config{Classify: ClassifyConfig{MaxContentSize: ByteSize(len(clip)), AllowedDirs: []string{dir}}})
	closed := startServer(t, Config{})
	ctx := ctxT(t, 60*time.Second)

	r, err := ts.recog.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: clip}, FileName: "archery.avi", TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	wantIdx := make([]int32, 16)
	for i := range wantIdx {
		wantIdx[i] = int32(3 + 8*i) // avg = 131 // 16 = 8: (8-1)//2 + 8i
	}
	if r.GetFile() != "archery.avi" || r.GetFramesTotal() != 131 || !equalInts(r.GetFrameIndices(), wantIdx) || r.GetModel() != "motion" ||
		len(r.GetTop()) != 3 || r.GetTimingMs().GetTotal() <= 0 {
		t.Errorf("content: %v; want file archery.avi, 131 frames, indices %v, 3 labels", r, wantIdx)
	}
	// The same clip by uri: the same answer.
	byURI, err := ts.recog.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + dir + "/archery.avi"}, TopK: 3})
	if err != nil {
		t.Fatal(err)
	}
	if byURI.GetFile() != dir+"/archery.avi" || byURI.GetFramesTotal() != 131 || !equalInts(byURI.GetFrameIndices(), wantIdx) {
		t.Errorf("uri: %v", byURI)
	}
	for i := range r.GetTop() {
		if a, b := r.GetTop()[i], byURI.GetTop()[i]; a.GetLabel() != b.GetLabel() || a.GetScore() != b.GetScore() {
			t.Errorf("top %d: content %v, uri %v", i, a, b)
		}
	}

	// Links are judged by where they lead: into an allowed directory from
	// outside is fine, out of one is not.
	links := t.TempDir()
	if err := os.Symlink(dir, filepath.Join(links, "clips")); err != nil {
		t.Fatal(err)
	}
	viaLink, err := ts.recog.Classify(ctx, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + links + "/clips/archery.avi"}})
	if err != nil || viaLink.GetFramesTotal() != 131 {
		t.Errorf("uri through a link into the allowed directory: %v, %v", viaLink, err)
	}
	leaky := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(leaky, "passwd")); err != nil {
		t.Fatal(err)
	}
	tsLeaky := startServer(t, Config{Classify: ClassifyConfig{AllowedDirs: []string{leaky}}})

	for _, tc := range []struct {
		what string
		srv  *testServer
		req  *actiondv1.ClassifyRequest
		code codes.Code
		msg  []string
	}{
		{"too large", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: append(clip, 0)}}, codes.ResourceExhausted,
			[]string{"content too large: content is " + strconv.Itoa(len(clip)+1) + " bytes, over this server's limit of", "(classify.max_content_size)"}},
		{"far too large", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: make([]byte, len(clip)+2<<20)}}, codes.ResourceExhausted, nil},
		{"no uri allowed", closed, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + dir + "/archery.avi"}}, codes.PermissionDenied,
			[]string{"uri not allowed: this server reads no files for Classify; set classify.allowed_dirs (or ACTIOND_CLASSIFY_ALLOWED_DIRS)"}},
		{"outside the allowed", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file:///etc/passwd"}}, codes.PermissionDenied,
			[]string{"uri not allowed: /etc/passwd is outside the directories this server reads (classify.allowed_dirs)"}},
		{"link out of an allowed directory", tsLeaky, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + leaky + "/passwd"}}, codes.PermissionDenied, []string{"outside"}},
		{"missing outside", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file:///nonexistent/clip.mp4"}}, codes.PermissionDenied, []string{"outside"}},
		{"climbing out", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + dir + "/../../etc/passwd"}}, codes.PermissionDenied, []string{"outside"}},
		{"not file", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "https://example.com/a.mp4"}}, codes.InvalidArgument, []string{`uri: only file:// URIs are supported, got "https:"`}},
		{"missing", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Uri{Uri: "file://" + dir + "/none.mp4"}}, codes.NotFound, []string{"no such file"}},
		{"not a clip", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: []byte("not a video at all")}, FileName: "junk.mp4"}, codes.InvalidArgument, []string{"clip cannot be decoded", "junk.mp4"}},
		{"no clip", ts, &actiondv1.ClassifyRequest{}, codes.InvalidArgument, []string{"clip: set content (the clip's bytes) or uri"}},
		{"top_k", ts, &actiondv1.ClassifyRequest{Clip: &actiondv1.ClassifyRequest_Content{Content: clip}, TopK: 6}, codes.InvalidArgument, []string{"top_k: must be at most 5"}},
	} {
		_, err := tc.srv.recog.Classify(ctx, tc.req)
		wantCode(t, tc.what, err, tc.code, tc.msg...)
		if err != nil && strings.Contains(err.Error(), "actiond-upload-") {
			t.Errorf("%s: the temporary file's name is in the error: %v", tc.what, err)
		}
	}
}

func equalInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A camera that drops the connection: the stream goes RETRYING, its open
// action ends with STREAM_LOST, and once it plays again windows (of a new
// epoch) and actions come back.
func TestCameraDropEndsActionsAsLost(t *testing.T) {
	t.Parallel()
	sim, _ := startCamera(t, "", "")
	ts := startServer(t, Config{Ingest: IngestConfig{BackoffMin: 100 * time.Millisecond, BackoffMax: 200 * time.Millisecond}})
	ctx := ctxT(t, 90*time.Second)
	events := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Streams: []string{"cam"}})
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{
		Name: "cam", Url: sim.URL("bounce"),
		Options: &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP},
	}); err != nil {
		t.Fatal(err)
	}
	var open *actiondv1.ActionStarted
	events.until(40*time.Second, func(ev *actiondv1.Event) bool {
		if a := ev.GetActionStarted(); a != nil {
			open = a
		}
		if a := ev.GetActionEnded(); a != nil && open != nil && a.GetActionId() == open.GetActionId() {
			open = nil
		}
		return open != nil
	})
	if err := sim.DropConnections("bounce"); err != nil {
		t.Fatal(err)
	}
	var ended *actiondv1.ActionEnded
	var retrying bool
	after := events.until(20*time.Second, func(ev *actiondv1.Event) bool {
		if st := ev.GetStreamStatus(); st.GetState() == actiondv1.StreamState_STREAM_STATE_RETRYING {
			retrying = true
		}
		if a := ev.GetActionEnded(); a != nil && a.GetActionId() == open.GetActionId() {
			ended = a
		}
		return retrying && ended != nil
	})
	t.Logf("after the drop:\n%s", describeEvents(after))
	if ended.GetReason() != actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_LOST || ended.GetLabel() != open.GetLabel() {
		t.Errorf("the open %s action ended %v, want STREAM_LOST", open.GetLabel(), ended)
	}
	// Back: PLAYING again, then windows of a later epoch.
	events.until(30*time.Second, func(ev *actiondv1.Event) bool {
		w := ev.GetWindowResult()
		return w != nil && w.GetEpoch() > 1
	})
	st, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: "cam"})
	if err != nil {
		t.Fatal(err)
	}
	if s := st.GetStream().GetStatus(); s.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || s.GetReconnectCount() < 1 {
		t.Errorf("after the drop: %v, want PLAYING with a reconnect counted", s)
	}
}
