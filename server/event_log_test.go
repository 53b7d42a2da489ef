package server

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestEventLogResumeHistorySnapshots runs the demo scene through a server
// and checks what the event log gives a user: every event logged with an
// increasing position; a subscriber that resumes after a position gets
// exactly the events after it, then the live ones, without a gap or a
// duplicate; the history lists the actions with their snapshots (a JPEG of
// the camera's picture, over gRPC and HTTP); a position the log no longer
// keeps is OUT_OF_RANGE naming the oldest kept.
func TestEventLogResumeHistorySnapshots(t *testing.T) {
	t.Parallel()
	sim, _ := startCamera(t, "", "")
	ts := startServer(t, Config{MetricsListen: "127.0.0.1:0"})
	ctx := ctxT(t, 120*time.Second)
	history := actiondv1.NewHistoryServiceClient(ts.conn)

	all := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{})
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{
		Name: "cam.a", Url: sim.URL("bounce"),
		Options: &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP},
	}); err != nil {
		t.Fatal(err)
	}
	starts := 0
	seen := all.until(60*time.Second, func(ev *actiondv1.Event) bool {
		if ev.GetActionStarted() != nil {
			starts++
		}
		return starts == 2
	})
	var last uint64
	var resumeAt uint64
	for _, ev := range seen {
		if !ev.GetLogged() || ev.GetPosition() <= last {
			t.Fatalf("%s: logged %v at %d, after %d", describeEvent(ev), ev.GetLogged(), ev.GetPosition(), last)
		}
		last = ev.GetPosition()
		if resumeAt == 0 && ev.GetActionStarted() != nil {
			resumeAt = ev.GetPosition()
		}
	}

	// Resume after the first ActionStarted: the events after it, as the
	// subscriber that stayed saw them, then live ones, in one sequence.
	resumed := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{ResumeAfter: ptr(resumeAt)})
	var want []*actiondv1.Event
	for _, ev := range seen {
		if ev.GetPosition() > resumeAt {
			want = append(want, ev)
		}
	}
	want = append(want, all.until(30*time.Second, func(*actiondv1.Event) bool { return true })...)
	want = append(want, all.until(30*time.Second, func(*actiondv1.Event) bool { return true })...)
	for i, w := range want {
		got := resumed.next(30 * time.Second)
		if got.GetPosition() != w.GetPosition() || got.GetSequence() != w.GetSequence() || got.GetStream() != w.GetStream() {
			t.Fatalf("resumed event %d: %s, want %s", i, describeEvent(got), describeEvent(w))
		}
	}
	// The replay filters as live subscriptions do.
	filtered := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{ResumeAfter: ptr(uint64(0)), Streams: []string{"cam.a"},
		Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_ACTION_STARTED}})
	for _, ev := range seen {
		if ev.GetActionStarted() == nil {
			continue
		}
		if got := filtered.next(30 * time.Second); got.GetPosition() != ev.GetPosition() {
			t.Fatalf("filtered replay: %s, want %s", describeEvent(got), describeEvent(ev))
		}
	}

	// History: the actions, newest first, each with its snapshot.
	list, err := history.ListActions(ctx, &actiondv1.ListActionsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetActions()) < 2 {
		t.Fatalf("ListActions: %v", list)
	}
	for i, a := range list.GetActions() {
		if a.GetStream() != "cam.a" || !a.GetHasSnapshot() || a.GetStartPosition() == 0 || a.GetStartTime() == nil {
			t.Errorf("action %d: %v", i, a)
		}
		if i > 0 && a.GetStartTime().AsTime().After(list.GetActions()[i-1].GetStartTime().AsTime()) {
			t.Errorf("action %d starts after the one before it: not newest first", i)
		}
	}
	first := seen[0]
	for _, ev := range seen {
		if ev.GetActionStarted() != nil {
			first = ev
			break
		}
	}
	got, err := history.GetAction(ctx, &actiondv1.GetActionRequest{ActionId: first.GetActionStarted().GetActionId()})
	if err != nil {
		t.Fatal(err)
	}
	if a := got.GetAction(); a.GetLabel() != first.GetActionStarted().GetLabel() || a.GetStartPosition() != first.GetPosition() {
		t.Errorf("GetAction: %v, started by %s", a, describeEvent(first))
	}
	if _, err := history.GetAction(ctx, &actiondv1.GetActionRequest{ActionId: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetAction(nope): %v, want NotFound", err)
	}
	// Pages of one, following the tokens, list the same actions.
	var paged []string
	for token := ""; ; {
		page, err := history.ListActions(ctx, &actiondv1.ListActionsRequest{PageSize: 1, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.GetActions() {
			paged = append(paged, a.GetActionId())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(paged) < len(list.GetActions()) || paged[0] != list.GetActions()[0].GetActionId() {
		t.Errorf("paged %v, listed %v", paged, list.GetActions())
	}
	labelled, err := history.ListActions(ctx, &actiondv1.ListActionsRequest{Labels: []string{"moving_up"}})
	if err != nil || len(labelled.GetActions()) != 0 {
		t.Errorf("ListActions(moving_up): %v, %v", labelled, err)
	}

	snap, err := history.GetSnapshot(ctx, &actiondv1.GetSnapshotRequest{ActionId: first.GetActionStarted().GetActionId()})
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(snap.GetData()))
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	if snap.GetContentType() != "image/jpeg" || img.Bounds().Dx() != 160 || img.Bounds().Dy() != 120 || snap.GetWidth() != 160 {
		t.Errorf("snapshot %s %v (%dx%d)", snap.GetContentType(), img.Bounds(), snap.GetWidth(), snap.GetHeight())
	}
	// The disk: bright pixels on a dark background.
	bright := 0
	for y := 0; y < 120; y++ {
		for x := 0; x < 160; x++ {
			if r, g, b, _ := img.At(x, y).RGBA(); r+g+b > 3*0xa000 {
				bright++
			}
		}
	}
	if bright < 50 || bright > 160*120/2 {
		t.Errorf("snapshot has %d bright pixels: not the disk on its background", bright)
	}
	resp, err := noKeepAlive.Get("http://" + ts.MetricsAddr() + "/snapshots/" + first.GetActionStarted().GetActionId() + ".jpg")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || !bytes.Equal(body, snap.GetData()) {
		t.Errorf("GET /snapshots/ID.jpg: %s %s, %d bytes", resp.Status, resp.Header.Get("Content-Type"), len(body))
	}
	if resp, err := noKeepAlive.Get("http://" + ts.MetricsAddr() + "/snapshots/nope.jpg"); err != nil {
		t.Error(err)
	} else if resp.Body.Close(); resp.StatusCode != 404 {
		t.Errorf("GET /snapshots/nope.jpg: %v", resp.Status)
	}

	metrics := scrape(t, ts.MetricsAddr())
	for _, name := range []string{"actiond_events_logged_total", "actiond_event_log_up 1", "actiond_snapshots_stored_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
	h, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: actiondv1.HistoryService_ServiceDesc.ServiceName})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("HistoryService health: %v %v", h, err)
	}

	// A position past the newest (the client's, from a log started afresh
	// since): nothing to replay, and the live events still come.
	ahead := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{ResumeAfter: ptr(last + 1_000_000)})
	if ev := ahead.next(30 * time.Second); ev.GetPosition() <= last || !ev.GetLogged() {
		t.Errorf("resume past the newest position: %s", describeEvent(ev))
	}

	// An action another server appends to the shared log (a fleet) shows
	// in the history too.
	if _, err := ts.core.Load().events.log.Append(ctx, &actiondv1.Event{Stream: "elsewhere", Sequence: 1,
		Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{ActionId: "act-other-node", Label: "moving_up",
			StartTime: timestamppb.Now()}}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		a, err := history.GetAction(ctx, &actiondv1.GetActionRequest{ActionId: "act-other-node"})
		if err == nil && a.GetAction().GetStream() == "elsewhere" && a.GetAction().GetOpen() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("an action appended by another server is not in the history: %v", err)
		}
	}

	// A position the log no longer keeps.
	js := ts.core.Load().events.log.JetStream()
	stream, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctx, jetstream.WithPurgeSequence(resumeAt)); err != nil {
		t.Fatal(err)
	}
	gone, err := ts.recog.Subscribe(ctx, &actiondv1.SubscribeRequest{ResumeAfter: ptr(uint64(1))})
	if err == nil {
		_, err = gone.Recv()
	}
	if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), fmt.Sprintf("the oldest kept is %d", resumeAt)) {
		t.Errorf("resume after a purged position: %v, want OutOfRange naming %d", err, resumeAt)
	}
}

// noKeepAlive leaves no connection behind (the leak check).
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := noKeepAlive.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestRestartEndsOpenActions: a server killed while an action was open
// left an ActionStarted without its ActionEnded in the log; the next server
// on that data_dir ends it, as SERVER_RESTARTED, at the last time the log
// knows for the stream, so that history never shows it open forever.
func TestRestartEndsOpenActions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := ctxT(t, 60*time.Second)
	l, err := eventlog.Open(ctx, eventlog.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	for _, ev := range []*actiondv1.Event{
		{Stream: "dock-3", Sequence: 7, Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{
			ActionId: "a-1", Label: "moving_left", Index: 0, MediaStart: durationpb.New(10 * time.Second),
			StartTime: timestamppb.New(t0), Clock: actiondv1.Clock_CLOCK_RTCP, PeakScore: 0.7}}},
		{Stream: "dock-3", Sequence: 8, Kind: &actiondv1.Event_WindowResult{WindowResult: &actiondv1.WindowResult{
			MediaStart: durationpb.New(11 * time.Second), MediaEnd: durationpb.New(13 * time.Second),
			StartTime: timestamppb.New(t0.Add(time.Second)), EndTime: timestamppb.New(t0.Add(3 * time.Second)),
			Top: []*actiondv1.LabelScore{{Index: 0, Label: "moving_left", Score: 0.9}}}}},
	} {
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()

	ts := startServer(t, Config{DataDir: dir})
	history := actiondv1.NewHistoryServiceClient(ts.conn)
	got, err := history.GetAction(ctx, &actiondv1.GetActionRequest{ActionId: "a-1"})
	if err != nil {
		t.Fatal(err)
	}
	a := got.GetAction()
	if a.GetOpen() || a.GetEndReason() != actiondv1.ActionEndReason_ACTION_END_REASON_SERVER_RESTARTED ||
		a.GetMediaEnd().AsDuration() != 13*time.Second || !a.GetEndTime().AsTime().Equal(t0.Add(3*time.Second)) ||
		a.GetPeakScore() != 0.9 || a.GetStartPosition() != 1 || a.GetEndPosition() != 3 {
		t.Errorf("the action left open: %v", a)
	}
	// The ActionEnded is in the log, after what the killed server wrote.
	sub := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{ResumeAfter: ptr(uint64(2))})
	ev := sub.next(10 * time.Second)
	if e := ev.GetActionEnded(); e.GetActionId() != "a-1" || ev.GetPosition() != 3 || ev.GetStream() != "dock-3" || ev.GetSequence() != 1 ||
		e.GetReason() != actiondv1.ActionEndReason_ACTION_END_REASON_SERVER_RESTARTED {
		t.Errorf("replayed %s", describeEvent(ev))
	}

	// Another server cannot take the same data_dir.
	other := newTestServer(t, Config{DataDir: dir})
	other.start(t)
	<-other.Loaded()
	if other.loadErr == nil || !strings.Contains(other.loadErr.Error(), "in use by another actiond") {
		t.Errorf("a second server on the data_dir: %v", other.loadErr)
	}
}
