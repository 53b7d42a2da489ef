package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testenv"
	"github.com/actiond/actiond/models/motion"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// These tests run the real server on 127.0.0.1:0 with the motion model on
// ONNX Runtime, the RTSP simulator as the camera, and clients made from the
// generated stubs.

var motionModel string

func TestMain(m *testing.M) {
	if path := os.Getenv(stateWriterEnv); path != "" {
		writeStatesForever(path)
	}
	if path := os.Getenv(fleetNodeEnv); path != "" {
		serveFleetNode(path)
	}
	dir, err := os.MkdirTemp("", "actiond-server-test-")
	if err != nil {
		panic(err)
	}
	motionModel = filepath.Join(dir, "motion.onnx")
	if err := motion.WriteFile(motionModel); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// Every server, stream, camera and client the tests made is gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testServer is a running server and a client connection to it.
type testServer struct {
	*Server
	conn    *grpc.ClientConn
	streams actiondv1.StreamServiceClient
	recog   actiondv1.RecognitionServiceClient
	health  healthpb.HealthClient
	logs    *testenv.Buffer
}

// newTestServer builds a server for cfg (on 127.0.0.1:0 with the motion
// model unless cfg says otherwise) without starting it.
func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Model == "" {
		cfg.Model = motionModel
	}
	if cfg.Inference.Threads == 0 {
		cfg.Inference.Threads = 1
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	logs := &testenv.Buffer{}
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, logs: logs}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return ts
}

// start starts ts and connects a client; cleanup closes both.
func (ts *testServer) start(t *testing.T, dial ...grpc.DialOption) {
	t.Helper()
	if err := ts.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ts.Close(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	if len(dial) == 0 {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient(ts.Addr(), dial...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ts.conn = conn
	ts.streams = actiondv1.NewStreamServiceClient(conn)
	ts.recog = actiondv1.NewRecognitionServiceClient(conn)
	ts.health = healthpb.NewHealthClient(conn)
}

// startServer starts a server for cfg and waits until its model is loaded.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ts := newTestServer(t, cfg)
	ts.start(t)
	ts.waitLoaded(t)
	return ts
}

// waitLoaded waits until ts's model is loaded.
func (ts *testServer) waitLoaded(t *testing.T) {
	t.Helper()
	select {
	case <-ts.Loaded():
	case <-time.After(30 * time.Second):
		t.Fatal("the model did not load within 30s")
	}
	if ts.loadErr != nil {
		t.Fatalf("load: %v (set %s if ONNX Runtime is not found)", ts.loadErr, engine.LibraryEnv)
	}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is a status with code and a message containing
// every one of msgs.
func wantCode(t *testing.T, what string, err error, code codes.Code, msgs ...string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Errorf("%s: %v, want %v", what, err, code)
		return
	}
	for _, m := range msgs {
		if !strings.Contains(st.Message(), m) {
			t.Errorf("%s: message %q lacks %q", what, st.Message(), m)
		}
	}
}

// subscriber collects the events of one Subscribe call.
type subscriber struct {
	t      *testing.T
	stream grpc.ServerStreamingClient[actiondv1.SubscribeResponse]
	events chan *actiondv1.Event
	end    chan error // the call's end
}

// subscribe opens a subscription and waits until the server has it in
// place (its headers), so that the events from then on are its.
func subscribe(t *testing.T, ctx context.Context, c actiondv1.RecognitionServiceClient, req *actiondv1.SubscribeRequest, opts ...grpc.CallOption) *subscriber {
	t.Helper()
	stream, err := c.Subscribe(ctx, req, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	s := &subscriber{t: t, stream: stream, events: make(chan *actiondv1.Event, 4096), end: make(chan error, 1)}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				s.end <- err
				close(s.events)
				return
			}
			s.events <- r.GetEvent()
		}
	}()
	return s
}

// next returns the next event, failing the test after d.
func (s *subscriber) next(d time.Duration) *actiondv1.Event {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			s.t.Fatalf("subscription ended: %v", <-s.end)
		}
		return ev
	case <-time.After(d):
		s.t.Fatalf("no event within %v", d)
	}
	return nil
}

// until returns the events up to and including the first one that done
// accepts, failing the test after d.
func (s *subscriber) until(d time.Duration, done func(*actiondv1.Event) bool) []*actiondv1.Event {
	s.t.Helper()
	deadline := time.After(d)
	var got []*actiondv1.Event
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				s.t.Fatalf("subscription ended after %d events: %v", len(got), <-s.end)
			}
			got = append(got, ev)
			if done(ev) {
				return got
			}
		case <-deadline:
			s.t.Fatalf("condition not met within %v; %d events:\n%s", d, len(got), describeEvents(got))
		}
	}
}

func describeEvents(evs []*actiondv1.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(describeEvent(ev))
		b.WriteByte('\n')
	}
	return b.String()
}

func describeEvent(ev *actiondv1.Event) string {
	head := fmt.Sprintf("%s#%d ", ev.GetStream(), ev.GetSequence())
	switch k := ev.GetKind().(type) {
	case *actiondv1.Event_WindowResult:
		w := k.WindowResult
		top := ""
		if len(w.GetTop()) > 0 {
			top = fmt.Sprintf("%s %.3f", w.GetTop()[0].GetLabel(), w.GetTop()[0].GetScore())
		}
		return head + fmt.Sprintf("window %.3f-%.3f %s (%v, epoch %d)", w.GetMediaStart().AsDuration().Seconds(),
			w.GetMediaEnd().AsDuration().Seconds(), top, w.GetClock(), w.GetEpoch())
	case *actiondv1.Event_ActionStarted:
		a := k.ActionStarted
		return head + fmt.Sprintf("started %s at %.3f (%s)", a.GetLabel(), a.GetMediaStart().AsDuration().Seconds(), a.GetActionId())
	case *actiondv1.Event_ActionEnded:
		a := k.ActionEnded
		return head + fmt.Sprintf("ended %s %.3f-%.3f %v", a.GetLabel(), a.GetMediaStart().AsDuration().Seconds(),
			a.GetMediaEnd().AsDuration().Seconds(), a.GetReason())
	case *actiondv1.Event_StreamStatus:
		st := k.StreamStatus
		return head + fmt.Sprintf("status %v epoch %d %s", st.GetState(), st.GetEpoch(), st.GetLastError())
	case *actiondv1.Event_Dropped:
		return head + fmt.Sprintf("dropped %d", k.Dropped.GetCount())
	}
	return head + "?"
}

// startCamera starts an RTSP simulator serving the demo's bouncing disk
// (right 4 s, left 4 s, looped) at path "bounce", 160x120 at 12 fps.
// began is when its scene started, within a few milliseconds.
func startCamera(t *testing.T, user, pass string) (sim *camsim.Simulator, began time.Time) {
	t.Helper()
	sim = camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.AddSceneSequence("bounce", 160, 120, 12, camsim.Bounce); err != nil {
		t.Fatal(err)
	}
	if user != "" {
		sim.SetCredentials(user, pass)
	}
	began = time.Now()
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim, began
}

func withCredentials(url, user, pass string) string {
	return strings.Replace(url, "rtsp://", "rtsp://"+user+":"+pass+"@", 1)
}

func ptr[T any](v T) *T { return &v }

func TestHealthNotServingUntilTheModelLoads(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	gate := make(chan struct{})
	ts.beforeLoad = func() { <-gate }
	ts.start(t)
	ctx := ctxT(t, 30*time.Second)

	for _, svc := range []string{"", "actiond.v1.StreamService", "actiond.v1.RecognitionService"} {
		r, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q while loading: %v %v, want NOT_SERVING", svc, r.GetStatus(), err)
		}
	}
	watch, err := ts.health.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch: %v %v, want NOT_SERVING first", r.GetStatus(), err)
	}
	_, err = ts.recog.GetModel(ctx, &actiondv1.GetModelRequest{})
	wantCode(t, "GetModel while loading", err, codes.Unavailable, "the model is still loading; retry when grpc.health.v1 says SERVING")
	_, err = ts.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	wantCode(t, "ListStreams while loading", err, codes.Unavailable, "still loading")

	close(gate)
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v, want SERVING once loaded", r.GetStatus(), err)
	}
	m, err := ts.recog.GetModel(ctx, &actiondv1.GetModelRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := m.GetModel()
	if got.GetName() != "motion" || strings.Join(got.GetLabels(), ",") != "moving_left,moving_right,moving_up,moving_down,still" ||
		got.GetSegments() != 16 || got.GetInputSize() != 224 || got.GetShortSide() != 256 || got.GetOutput() != actiondv1.OutputKind_OUTPUT_KIND_LOGITS ||
		got.GetDefaultWindow().AsDuration() != 10*time.Second || got.GetUntrained() || len(got.GetMean()) != 3 {
		t.Errorf("GetModel: %v", got)
	}
}

// The API's errors, each with its code and a message that names the field.
func TestStreamServiceErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{MaxStreams: 3})
	ctx := ctxT(t, 30*time.Second)
	off := &actiondv1.StreamOptions{Enabled: ptr(false)}
	add := func(name, url string, o *actiondv1.StreamOptions) error {
		_, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: name, Url: url, Options: o})
		return err
	}
	for _, tc := range []struct {
		what string
		err  error
		code codes.Code
		msg  []string
	}{
		{"no name", add("", "rtsp://h/x", off), codes.InvalidArgument, []string{"name: required"}},
		{"bad name", add("dock 3", "rtsp://h/x", off), codes.InvalidArgument, []string{`name: must be 1 to 64 letters, digits, '.', '-' or '_', got "dock 3"`}},
		{"no url", add("a", "", off), codes.InvalidArgument, []string{"url: required"}},
		{"http url", add("a", "http://user:hunter22@h/x", off), codes.InvalidArgument, []string{"url: must start with rtsp:// or rtsps://, got http://***@h/x"}},
		{"short window", add("a", "rtsp://h/x", &actiondv1.StreamOptions{Window: dur(500 * time.Millisecond)}), codes.InvalidArgument, []string{"options.window: must be between 1s and 10m, got 500ms"}},
		{"off above on", add("a", "rtsp://h/x", &actiondv1.StreamOptions{OnThreshold: ptr[float32](0.5), OffThreshold: ptr[float32](0.7)}), codes.InvalidArgument, []string{"options.off_threshold: (0.7) must not be above on_threshold (0.5)"}},
		{"threshold range", add("a", "rtsp://h/x", &actiondv1.StreamOptions{OnThreshold: ptr[float32](2)}), codes.InvalidArgument, []string{"options.on_threshold: must be in (0, 1], got 2"}},
		{"unknown label", add("a", "rtsp://h/x", &actiondv1.StreamOptions{LabelAllowlist: &actiondv1.LabelAllowlist{Labels: []string{"moving_right", "welding"}}}), codes.InvalidArgument, []string{`options.label_allowlist[1]: "welding" is not a label of model "motion"`}},
		{"top_k over labels", add("a", "rtsp://h/x", &actiondv1.StreamOptions{TopK: ptr[uint32](6)}), codes.InvalidArgument, []string{"options.top_k: must be at most 5 (the model's label count), got 6"}},
		{"transport", add("a", "rtsp://h/x", &actiondv1.StreamOptions{Transport: 9}), codes.InvalidArgument, []string{"options.transport: 9 is not a transport"}},
		{"port out of range", add("a", "rtsp://u:hunter22@h:99999/x", off), codes.InvalidArgument, []string{"url: port 99999 of rtsp://***@h:99999/x is not between 1 and 65535"}},
		{"port zero", add("a", "rtsp://h:0/x", off), codes.InvalidArgument, []string{"url: port 0 of rtsp://h:0/x is not between 1 and 65535"}},
		{"several at once", add("", "ftp://h", &actiondv1.StreamOptions{Stride: dur(-time.Second)}), codes.InvalidArgument, []string{"name: required", "url: must start with rtsp://", "options.stride: must be positive"}},
		{"get unknown", get(ctx, ts, "nope"), codes.NotFound, []string{`stream "nope": no such stream (ListStreams shows the streams)`}},
		{"update unknown", update(ctx, ts, &actiondv1.UpdateStreamRequest{Name: "nope"}), codes.NotFound, []string{`stream "nope": no such stream`}},
		{"remove unknown", remove(ctx, ts, "nope"), codes.NotFound, []string{`stream "nope": no such stream`}},
		{"list negative", list(ctx, ts, -1, ""), codes.InvalidArgument, []string{"page_size: must not be negative, got -1"}},
		{"list bad token", list(ctx, ts, 0, "garbage"), codes.InvalidArgument, []string{"page_token: not a next_page_token of ListStreams"}},
	} {
		wantCode(t, tc.what, tc.err, tc.code, tc.msg...)
		if tc.err != nil && strings.Contains(tc.err.Error(), "hunter22") {
			t.Errorf("%s: the password is in the error: %v", tc.what, tc.err)
		}
	}

	// Three streams, the limit; names taken; pages.
	for _, name := range []string{"c", "a", "b"} {
		if err := add(name, "rtsp://u:hunter22@127.0.0.1:1/"+name, off); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
	}
	wantCode(t, "taken name", add("a", "rtsp://h/x", off), codes.AlreadyExists, `stream "a": a stream of that name already exists`)
	wantCode(t, "over the limit", add("d", "rtsp://h/x", off), codes.ResourceExhausted,
		"stream limit reached: the server watches 3 streams, its max_streams; remove one or raise max_streams")

	var names []string
	token := ""
	for pages := 0; ; pages++ {
		r, err := ts.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.GetStreams() {
			names = append(names, s.GetName())
			if strings.Contains(s.GetUrl(), "hunter22") || s.GetUrl() != "rtsp://***@127.0.0.1:1/"+s.GetName() {
				t.Errorf("listed url %q, want the credentials removed", s.GetUrl())
			}
			if s.GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_DISABLED {
				t.Errorf("%s: state %v, want DISABLED", s.GetName(), s.GetStatus().GetState())
			}
		}
		if token = r.GetNextPageToken(); token == "" {
			if pages != 1 {
				t.Errorf("%d pages of 2 for 3 streams, want 2", pages+1)
			}
			break
		}
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("listed %v, want a,b,c in name order", names)
	}

	// UpdateStream: set fields change, unset stay, zero goes back to the
	// default; the response shows the options in effect.
	r, err := ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "a", Options: &actiondv1.StreamOptions{
		TopK: ptr[uint32](2), OnThreshold: ptr[float32](0.8), Window: dur(5 * time.Second), Stride: dur(time.Second),
		LabelAllowlist: &actiondv1.LabelAllowlist{Labels: []string{"moving_right", "moving_left"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	o := r.GetStream().GetOptions()
	if o.GetTopK() != 2 || o.GetOnThreshold() != 0.8 || o.GetOffThreshold() != 0.4 || o.GetMinConsecutiveWindows() != 2 ||
		o.GetWindow().AsDuration() != 5*time.Second || o.GetStride().AsDuration() != 1250*time.Millisecond ||
		strings.Join(o.GetLabelAllowlist().GetLabels(), ",") != "moving_left,moving_right" || o.GetEnabled() ||
		o.GetTransport() != actiondv1.Transport_TRANSPORT_AUTO {
		t.Errorf("after update: %v; want top_k 2, on 0.8, off 0.4, k 2, window 5s, stride rounded up to 4 slots (1.25s), the allowlist in model order, still disabled", o)
	}
	r, err = ts.streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "a", Options: &actiondv1.StreamOptions{
		TopK: ptr[uint32](0), LabelAllowlist: &actiondv1.LabelAllowlist{}, Window: dur(0),
	}})
	if err != nil {
		t.Fatal(err)
	}
	o = r.GetStream().GetOptions()
	if o.GetTopK() != 5 || len(o.GetLabelAllowlist().GetLabels()) != 0 || o.GetWindow().AsDuration() != 10*time.Second || o.GetOnThreshold() != 0.8 {
		t.Errorf("after zeroing: %v; want top_k 5, all labels, window 10s (defaults), on_threshold still 0.8", o)
	}
	wantCode(t, "update bad", update(ctx, ts, &actiondv1.UpdateStreamRequest{Name: "a", Url: ptr("rtsp://"), Options: &actiondv1.StreamOptions{OffThreshold: ptr[float32](0.9)}}),
		codes.InvalidArgument, "url: rtsp:// has no host", "options.off_threshold: (0.9) must not be above on_threshold (0.8)")

	if err := remove(ctx, ts, "a"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "get removed", get(ctx, ts, "a"), codes.NotFound)
	if err := add("d", "rtsp://h/x", off); err != nil {
		t.Errorf("add after remove, under the limit again: %v", err)
	}
	if strings.Contains(ts.logs.String(), "hunter22") {
		t.Errorf("the password is in the server's log")
	}

	// Subscribe filters are checked before the subscription starts.
	for _, tc := range []struct {
		req  *actiondv1.SubscribeRequest
		want string
	}{
		{&actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_UNSPECIFIED}}, "kinds[0]: EVENT_KIND_UNSPECIFIED is not an event kind"},
		{&actiondv1.SubscribeRequest{Labels: []string{"moving_left", "juggling"}}, `labels[1]: "juggling" is not a label of the model`},
		{&actiondv1.SubscribeRequest{MinScore: 1.5}, "min_score: must be between 0 and 1, got 1.5"},
		{&actiondv1.SubscribeRequest{Streams: []string{"a/b"}}, `streams[0]: "a/b" is not a stream name`},
	} {
		sub, err := ts.recog.Subscribe(ctx, tc.req)
		if err == nil {
			_, err = sub.Recv()
		}
		wantCode(t, "subscribe "+tc.req.String(), err, codes.InvalidArgument, tc.want)
	}
}

func dur(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

func get(ctx context.Context, ts *testServer, name string) error {
	_, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: name})
	return err
}

func update(ctx context.Context, ts *testServer, req *actiondv1.UpdateStreamRequest) error {
	_, err := ts.streams.UpdateStream(ctx, req)
	return err
}

func remove(ctx context.Context, ts *testServer, name string) error {
	_, err := ts.streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: name})
	return err
}

func list(ctx context.Context, ts *testServer, size int32, token string) error {
	_, err := ts.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{PageSize: size, PageToken: token})
	return err
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ts := startServer(t, Config{Auth: AuthConfig{Tokens: []string{"tok-one", "tok-two"}}})
	ctx := ctxT(t, 30*time.Second)
	with := func(token string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", token)
	}
	_, err := ts.recog.GetModel(ctx, &actiondv1.GetModelRequest{})
	wantCode(t, "no token", err, codes.Unauthenticated, "missing bearer token: send 'authorization: Bearer <token>'")
	_, err = ts.recog.GetModel(with("Bearer tok-three"), &actiondv1.GetModelRequest{})
	wantCode(t, "wrong token", err, codes.Unauthenticated, "invalid bearer token: it is none of the server's tokens (auth.tokens)")
	_, err = ts.recog.GetModel(with("Basic dG9rLW9uZQ=="), &actiondv1.GetModelRequest{})
	wantCode(t, "not bearer", err, codes.Unauthenticated, "malformed authorization header: send 'authorization: Bearer <token>'")
	for _, tok := range []string{"Bearer tok-one", "bearer tok-two"} {
		if _, err := ts.recog.GetModel(with(tok), &actiondv1.GetModelRequest{}); err != nil {
			t.Errorf("%q: %v", tok, err)
		}
	}
	// A stream: the interceptor runs before the handler.
	sub, err := ts.recog.Subscribe(ctx, &actiondv1.SubscribeRequest{})
	if err == nil {
		_, err = sub.Recv()
	}
	wantCode(t, "subscribe without a token", err, codes.Unauthenticated, "missing bearer token")
	// Health needs none.
	if r, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without a token: %v %v", r.GetStatus(), err)
	}
	if strings.Contains(ts.logs.String(), "tok-") {
		t.Errorf("a token is in the server's log")
	}
}

// The RTSP credentials never reach a log line, an API response, an event or
// a metric: checked by the live tests on what they see.
func noSecret(t *testing.T, what, text, secret string) {
	t.Helper()
	if strings.Contains(text, secret) {
		t.Errorf("the camera password is in %s", what)
	}
}
