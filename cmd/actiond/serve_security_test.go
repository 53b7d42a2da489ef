package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/demo"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testcert"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testCA writes a test CA and a server certificate it signs.
func testCA(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	f, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f.Cert, f.Key, f.Roots
}

// TLS and bearer tokens through the real process: over TLS (a certificate
// of a test CA), no token and a wrong one are UNAUTHENTICATED with a
// message that does not repeat what was sent, the right one gets through,
// health needs none; a plaintext client and one that does not trust the CA
// get nowhere. Then the tokens file is rotated and SIGHUP makes the server
// reread it: the old token is refused, the new one accepted.
func TestServeTLSTokensAndRotation(t *testing.T) {
	t.Parallel()
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, roots := testCA(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# actiond tokens\nold-token-4f1c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "actiond.yaml")
	yaml := fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\nauth:\n  tokens_file: %s\n", certFile, keyFile, tokens)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// Health, which serveAndDial waits on, needs no token.
	p, conn, addr := serveAndDial(t, []string{"ACTIOND_LOG_LEVEL=debug"}, credentials.NewTLS(&tls.Config{RootCAs: roots}),
		"--config", config, "--model", model)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recog := actiondv1.NewRecognitionServiceClient(conn)
	call := func(header string) error {
		c := ctx
		if header != "" {
			c = metadata.AppendToOutgoingContext(ctx, "authorization", header)
		}
		_, err := recog.GetModel(c, &actiondv1.GetModelRequest{})
		return err
	}
	want := func(what string, err error, code codes.Code, msg string) {
		t.Helper()
		st, _ := status.FromError(err)
		if st.Code() != code || !strings.Contains(st.Message(), msg) {
			t.Errorf("%s: %v, want %v %q", what, err, code, msg)
		}
		for _, secret := range []string{"old-token", "new-token", "guess-"} {
			if strings.Contains(st.Message(), secret) {
				t.Errorf("%s: the message repeats the token: %q", what, st.Message())
			}
		}
	}
	want("no token", call(""), codes.Unauthenticated, "missing bearer token: send 'authorization: Bearer <token>'")
	want("wrong token", call("Bearer guess-0000"), codes.Unauthenticated, "invalid bearer token: it is none of the server's tokens")
	want("not bearer", call("Basic guess-0000"), codes.Unauthenticated, "malformed authorization header")
	want("new token before the rotation", call("Bearer new-token-9d2e"), codes.Unauthenticated, "invalid bearer token")
	if err := call("Bearer old-token-4f1c"); err != nil {
		t.Errorf("the right token: %v", err)
	}
	// Subscribe is checked before it starts, too.
	sub, err := recog.Subscribe(ctx, &actiondv1.SubscribeRequest{})
	if err == nil {
		_, err = sub.Recv()
	}
	want("subscribe without a token", err, codes.Unauthenticated, "missing bearer token")

	// Without TLS, or without trusting the CA: no answer at all.
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	for what, creds := range map[string]credentials.TransportCredentials{
		"plaintext":           insecure.NewCredentials(),
		"TLS, CA not trusted": credentials.NewTLS(&tls.Config{RootCAs: x509.NewCertPool()}),
	} {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		_, err = actiondv1.NewRecognitionServiceClient(c).GetModel(metadata.AppendToOutgoingContext(short, "authorization", "Bearer old-token-4f1c"), &actiondv1.GetModelRequest{})
		if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("%s: %v, want no connection", what, err)
		}
		c.Close()
	}

	// Rotation: the file gets the new token, SIGHUP.
	if err := os.WriteFile(tokens, []byte("new-token-9d2e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.stderr.String(), "tokens reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no \"tokens reloaded\" in the log within 20s of SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	want("the old token after the rotation", call("Bearer old-token-4f1c"), codes.Unauthenticated, "invalid bearer token")
	if err := call("Bearer new-token-9d2e"); err != nil {
		t.Errorf("the new token after the rotation: %v", err)
	}
	// A tokens file emptied by mistake: the new token still holds.
	if err := os.WriteFile(tokens, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	for !strings.Contains(p.stderr.String(), "tokens not reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("no \"tokens not reloaded\" in the log after SIGHUP with an empty file")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := call("Bearer new-token-9d2e"); err != nil {
		t.Errorf("the new token after a failed reload: %v", err)
	}

	p.stop(t, syscall.SIGTERM, 15*time.Second)
	if logs := p.stdout.String() + p.stderr.String(); strings.Contains(logs, "-token-") || strings.Contains(logs, "guess-") {
		t.Errorf("a token is in the server's output")
	}
}

// A server killed outright (SIGKILL: no shutdown, nothing flushed) and
// started again with the same data_dir watches every stream added over
// the API again (from the stream registry), with its options and
// credentials.
func TestServeRestoresStreamsAfterSIGKILL(t *testing.T) {
	t.Parallel()
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	env := []string{"ACTIOND_DATA_DIR=" + data}
	addr := testenv.FreeAddr(t)
	args := []string{"serve", "--listen", addr, "--model", model}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	streams := actiondv1.NewStreamServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	first := startServe(t, env, args...)
	waitServing(t, first, conn)
	off, topK := false, uint32(3)
	adds := []*actiondv1.AddStreamRequest{
		{Name: "dock-3", Url: "rtsp://user:pw-8842@127.0.0.1:1/a", Options: &actiondv1.StreamOptions{
			Window: durationpb.New(5 * time.Second), TopK: &topK, Enabled: &off,
			LabelAllowlist: &actiondv1.LabelAllowlist{Labels: []string{"moving_left", "moving_right"}}}},
		{Name: "gate", Url: "rtsp://127.0.0.1:1/b", Options: &actiondv1.StreamOptions{Transport: actiondv1.Transport_TRANSPORT_TCP}},
		{Name: "yard", Url: "rtsps://127.0.0.1:1/c?token=pw-8842", Options: &actiondv1.StreamOptions{Stride: durationpb.New(2 * time.Second)}},
	}
	for _, a := range adds {
		if _, err := streams.AddStream(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	on := float32(0.75)
	if _, err := streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "gate", Options: &actiondv1.StreamOptions{OnThreshold: &on}}); err != nil {
		t.Fatal(err)
	}
	before, err := streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done

	second := startServe(t, env, args...)
	waitServing(t, second, conn)
	after, err := streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.GetStreams()) != 3 || len(before.GetStreams()) != 3 {
		t.Fatalf("after the restart %d streams, before %d; want dock-3, gate and yard", len(after.GetStreams()), len(before.GetStreams()))
	}
	for i, got := range after.GetStreams() {
		w := before.GetStreams()[i]
		if got.GetName() != w.GetName() || got.GetUrl() != w.GetUrl() || !proto.Equal(got.GetOptions(), w.GetOptions()) {
			t.Errorf("after the restart %s %s %v; before %s %s %v", got.GetName(), got.GetUrl(), got.GetOptions(), w.GetName(), w.GetUrl(), w.GetOptions())
		}
	}
	if o := after.GetStreams()[1].GetOptions(); o.GetOnThreshold() != 0.75 || o.GetTransport() != actiondv1.Transport_TRANSPORT_TCP {
		t.Errorf("gate restored with %v, want on_threshold 0.75 over TCP", o)
	}
	if s := after.GetStreams()[0]; s.GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_DISABLED || s.GetOptions().GetWindow().AsDuration() != 5*time.Second {
		t.Errorf("dock-3 restored as %v, want disabled with a 5s window", s)
	}
	// The stream registry keeps the credentials (to connect); nothing
	// shows them.
	second.cmd.Process.Signal(syscall.SIGTERM)
	<-second.done
	l, err := eventlog.Open(ctx, eventlog.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	kv, err := l.JetStream().KeyValue(ctx, "ACTIOND_STREAMS")
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "dock-3"); err != nil || !strings.Contains(string(e.Value()), "rtsp://user:pw-8842@127.0.0.1:1/a") {
		t.Errorf("stream registry's dock-3: %v", err)
	}
	if text := protojson.Format(after) + second.stderr.String() + first.stderr.String(); strings.Contains(text, "pw-8842") {
		t.Errorf("a password is in ListStreams or the log:\n%s", text)
	}
}

// Camera credentials never show: a real `actiond serve` with debug logs
// and metrics, a camera that wants a password, one stream with the right
// password and one with a wrong one, AddStream and UpdateStream with bad
// URLs that carry passwords. Neither password appears in the process's
// output, any API response or error, any event, or /metrics; the stream
// with the wrong password still says why it cannot play.
func TestServeNeverShowsCameraPasswords(t *testing.T) {
	t.Parallel()
	const good, wrong = "secretpass-4242", "wrongpass-9191"
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.AddSceneSequence("bounce", 160, 120, 12, demo.DemoBounce); err != nil {
		t.Fatal(err)
	}
	sim.SetCredentials("cam", good)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	withPass := func(pass string) string {
		return strings.Replace(sim.URL("bounce"), "rtsp://", "rtsp://cam:"+pass+"@", 1)
	}
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	yaml := fmt.Sprintf("ingest:\n  backoff_min: 200ms\n  backoff_max: 500ms\nstreams:\n"+
		"  - name: good\n    url: %s\n    window: 2.5s\n    stride: 0.625s\n    transport: tcp\n"+
		"  - name: wrong\n    url: %s\n    transport: tcp\n", withPass(good), withPass(wrong))
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	metricsAddr := testenv.FreeAddr(t)
	pprofAddr := testenv.FreeAddr(t)
	p, conn, _ := serveAndDial(t, []string{"ACTIOND_LOG_LEVEL=debug"}, nil, "--config", config,
		"--metrics-listen", metricsAddr, "--pprof-listen", pprofAddr, "--model", model,
		"--stream", "flag="+strings.Replace(withPass(good), "bounce", "nothing-here", 1))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	streams := actiondv1.NewStreamServiceClient(conn)
	var seen strings.Builder // everything the API said
	say := func(m proto.Message, err error) {
		if m != nil {
			seen.WriteString(protojson.Format(m) + "\n")
		}
		if err != nil {
			seen.WriteString(err.Error() + "\n")
		}
	}

	sub, err := actiondv1.NewRecognitionServiceClient(conn).Subscribe(ctx, &actiondv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// API calls that fail, with the password in what they were sent.
	for _, tc := range []struct {
		what string
		req  *actiondv1.AddStreamRequest
		code codes.Code
	}{
		{"http", &actiondv1.AddStreamRequest{Name: "x1", Url: "http://cam:" + good + "@127.0.0.1/x"}, codes.InvalidArgument},
		{"no host", &actiondv1.AddStreamRequest{Name: "x2", Url: "rtsp://cam:" + good + "@"}, codes.InvalidArgument},
		{"bad escape", &actiondv1.AddStreamRequest{Name: "x3", Url: "rtsp://cam:" + good + "%zz@127.0.0.1/x"}, codes.InvalidArgument},
		{"bad port", &actiondv1.AddStreamRequest{Name: "x4", Url: "rtsp://cam:" + good + "@127.0.0.1:99999/x"}, codes.InvalidArgument},
		{"slash in password", &actiondv1.AddStreamRequest{Name: "x5", Url: "rtsp://cam:" + good + "/x@127.0.0.1/x"}, codes.InvalidArgument},
		{"bad name too", &actiondv1.AddStreamRequest{Name: "bad name", Url: "ftp://cam:" + good + "@127.0.0.1/x?password=" + good}, codes.InvalidArgument},
		{"taken", &actiondv1.AddStreamRequest{Name: "good", Url: withPass(good)}, codes.AlreadyExists},
		{"bad window", &actiondv1.AddStreamRequest{Name: "x6", Url: withPass(good), Options: &actiondv1.StreamOptions{Window: durationpb.New(time.Millisecond)}}, codes.InvalidArgument},
	} {
		r, err := streams.AddStream(ctx, tc.req)
		if status.Code(err) != tc.code {
			t.Errorf("AddStream %s: %v, want %v", tc.what, err, tc.code)
		}
		say(r, err)
	}
	_, err = streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "good", Url: proto.String("rtsp://cam:" + good + "@")})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("UpdateStream with a bad URL: %v", err)
	}
	say(nil, err)
	_, err = streams.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "nope", Url: proto.String(withPass(good))})
	say(nil, err)
	// One that works, added over the API.
	r, err := streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "added", Url: withPass(good) + "?password=" + good})
	if err != nil {
		t.Fatal(err)
	}
	say(r, nil)

	// Events until the good stream has a window and the wrong one has
	// been refused (RETRYING, with the reason).
	var window bool
	var refused *actiondv1.StreamStatus
	for !window || refused == nil {
		r, err := sub.Recv()
		if err != nil {
			t.Fatalf("subscription: %v\nseen:\n%s", err, seen.String())
		}
		say(r, nil)
		ev := r.GetEvent()
		if ev.GetStream() == "good" && ev.GetWindowResult() != nil {
			window = true
		}
		if st := ev.GetStreamStatus(); ev.GetStream() == "wrong" && st.GetState() == actiondv1.StreamState_STREAM_STATE_RETRYING {
			refused = st
		}
	}
	if e := strings.ToLower(refused.GetLastError()); !strings.Contains(e, "401") && !strings.Contains(e, "auth") {
		t.Errorf("the stream with the wrong password is RETRYING with last_error %q, want it to say why", refused.GetLastError())
	}
	list, err := streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	say(list, err)
	for _, name := range []string{"good", "wrong", "flag", "added"} {
		r, err := streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: name})
		if err != nil {
			t.Errorf("GetStream %s: %v", name, err)
		}
		say(r, err)
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `stream="wrong"`) {
		t.Errorf("/metrics has no series of the stream \"wrong\"")
	}
	profiles := pprofEverything(t, pprofAddr)
	if !strings.Contains(profiles, "--stream") {
		t.Errorf("/debug/pprof/cmdline does not show the command line")
	}
	if _, err := streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: "added"}); err != nil {
		t.Error(err)
	}
	p.stop(t, syscall.SIGTERM, 15*time.Second)
	for {
		r, err := sub.Recv()
		if err != nil {
			break
		}
		say(r, nil)
	}

	logs := p.stdout.String() + p.stderr.String()
	for what, text := range map[string]string{"the API's responses, errors and events": seen.String(), "/metrics": string(metrics),
		"the process's output": logs, "/debug/pprof": profiles} {
		for _, secret := range []string{good, wrong} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows a password:\n%s", what, text)
			}
		}
	}
	t.Logf("checked %d bytes of API answers, %d of /metrics, %d of logs, %d of profiles; the wrong password's stream said %q",
		seen.Len(), len(metrics), len(logs), len(profiles), refused.GetLastError())
}

// pprofEverything fetches every endpoint of the pprof listener (the index,
// the command line, a 1s CPU profile and trace, symbol, and each named
// profile in every form) and returns what they say, gzip undone.
func pprofEverything(t *testing.T, addr string) string {
	t.Helper()
	paths := []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/trace?seconds=1",
		"/debug/pprof/symbol", "/debug/pprof/goroutine?debug=2"}
	for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"} {
		for _, debug := range []string{"0", "1"} {
			paths = append(paths, "/debug/pprof/"+name+"?debug="+debug)
		}
	}
	var all bytes.Buffer
	for _, path := range paths {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v", path, resp.Status, err)
		}
		if len(body) > 2 && body[0] == 0x1f && body[1] == 0x8b {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		all.Write(body)
		all.WriteByte('\n')
	}
	return all.String()
}
