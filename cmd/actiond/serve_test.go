package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/demo"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// These tests run `actiond serve` as a user does: a process with flags, a
// configuration file and the environment, stopped by a signal.

var serveModel = sync.OnceValues(func() (string, error) {
	p := filepath.Join(filepath.Dir(actiond), "serve-motion.onnx")
	out, err := exec.Command(actiond, "model", "build", "motion", "--out", p).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("model build motion: %v\n%s", err, out)
	}
	return p, nil
})

// serveProc is a running `actiond serve`.
type serveProc struct {
	cmd    *exec.Cmd
	stdout *testenv.Buffer
	stderr *testenv.Buffer
	done   chan struct{}
}

func startServe(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(actiond, args...), stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan struct{})}
	// An event log of its own (env may name another).
	p.cmd.Env = append(append(os.Environ(), "ACTIOND_DATA_DIR="+t.TempDir()), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("actiond %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// stop sends the server sig and waits, at most within, for it to exit.
func (p *serveProc) stop(t *testing.T, sig syscall.Signal, within time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("actiond %s did not exit within %v of %v", p.cmd.Args[1], within, sig)
	}
}

// waitServing waits until the server at addr says SERVING.
func waitServing(t *testing.T, p *serveProc, conn *grpc.ClientConn) {
	t.Helper()
	h := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("actiond serve exited: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not SERVING within 60s: %v %v", r.GetStatus(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serveAndDial runs `actiond serve --listen ADDR args...` (env as
// startServe takes it) on a free loopback port, dials ADDR with creds (nil:
// plaintext) and waits until the server says SERVING. The test's cleanup
// closes the connection.
func serveAndDial(t *testing.T, env []string, creds credentials.TransportCredentials, args ...string) (*serveProc, *grpc.ClientConn, string) {
	t.Helper()
	addr := testenv.FreeAddr(t)
	p := startServe(t, env, append([]string{"serve", "--listen", addr}, args...)...)
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	waitServing(t, p, conn)
	return p, conn, addr
}

// SIGTERM: the server stops accepting, ends the subscription with each
// stream's last status (STOPPED) and UNAVAILABLE, stops the camera
// connection and exits 0, within its shutdown_timeout.
func TestServeStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.AddSceneSequence("bounce", 160, 120, 12, demo.DemoBounce); err != nil {
		t.Fatal(err)
	}
	sim.SetCredentials("cam", "pa55word")
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	url := strings.Replace(sim.URL("bounce"), "rtsp://", "rtsp://cam:pa55word@", 1)
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	yaml := fmt.Sprintf("shutdown_timeout: 10s\nstreams:\n  - name: cam\n    url: %s\n    window: 2.5s\n    stride: 0.625s\n    transport: tcp\n", url)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p, conn, addr := serveAndDial(t, []string{"ACTIOND_LOG_LEVEL=debug"}, nil, "--config", config, "--model", model,
		"--stream", "second=rtsp://127.0.0.1:1/none")
	if !strings.Contains(p.stdout.String(), "actiond: serving gRPC on "+addr) {
		t.Errorf("stdout %q does not say where it serves", p.stdout)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := actiondv1.NewRecognitionServiceClient(conn).Subscribe(ctx, &actiondv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetEvent().GetWindowResult() != nil {
			break
		}
	}
	stopAt := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := map[string]bool{}
	var end error
	for {
		r, err := sub.Recv()
		if err != nil {
			end = err
			break
		}
		if st := r.GetEvent().GetStreamStatus(); st.GetState() == actiondv1.StreamState_STREAM_STATE_STOPPED {
			stopped[r.GetEvent().GetStream()] = true
		}
	}
	if st, _ := status.FromError(end); st.Code() != codes.Unavailable {
		t.Errorf("the subscription ended with %v, want UNAVAILABLE", end)
	}
	if !stopped["cam"] || !stopped["second"] {
		t.Errorf("last statuses STOPPED for %v, want cam and second", stopped)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("actiond serve did not exit within 15s of SIGTERM")
	}
	t.Logf("exited %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	logs := p.stderr.String()
	for _, want := range []string{"stopping: signal received", `msg="shutting down"`, "msg=stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(logs+p.stdout.String(), "pa55word") {
		t.Errorf("the camera password is in the output")
	}
}

// Configuration mistakes stop the server before it listens, with a
// message that names the key; the environment overrides the file and the
// flags override both.
func TestServeConfigErrors(t *testing.T) {
	t.Parallel()
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.yaml", "listen: 127.0.0.1:1\ninference:\n  batch: 3\n")
	// A stream given as a bare URL, and a URL where a number goes: the
	// errors quote the values, never their passwords.
	secrets := write("secrets.yaml", "streams: [\"rtsp://cam:pw-3141@127.0.0.1/x\"]\nmax_streams: rtsp://cam:pw-3141@127.0.0.1/y\n")
	good := write("good.yaml", "listen: file-listen\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"unknown key", nil, []string{"--config", unknown}, []string{"inference.batch: unknown key (line 3); the keys here are threads, sessions, max_batch, max_wait"}},
		{"file", nil, []string{"--config", good}, []string{`listen: must be HOST:PORT, got "file-listen"`}},
		{"environment over file", []string{"ACTIOND_LISTEN=env-listen"}, []string{"--config", good}, []string{`got "env-listen"`}},
		{"flags over environment", []string{"ACTIOND_LISTEN=env-listen"}, []string{"--config", good, "--listen", "flag-listen"}, []string{`got "flag-listen"`}},
		{"bad environment", []string{"ACTIOND_MAX_STREAMS=many"}, nil, []string{`ACTIOND_MAX_STREAMS (max_streams): want a whole number, got "many"`}},
		{"bad stream flag", nil, []string{"--stream", "cam=http://x/y"}, []string{"streams[0].url: must start with rtsp:// or rtsps://"}},
		{"no such file", nil, []string{"--config", filepath.Join(dir, "none.yaml")}, []string{"config: open", "none.yaml"}},
		{"passwords in values", nil, []string{"--config", secrets}, []string{`streams[0]: line 1: want a mapping of keys`, `got "rtsp://***@127.0.0.1/x"`,
			`max_streams: line 2: want a whole number, got "rtsp://***@127.0.0.1/y"`}},
		{"password in the environment", []string{"ACTIOND_MAX_STREAMS=rtsp://cam:pw-3141@127.0.0.1/z"}, nil, []string{`got "rtsp://***@127.0.0.1/z"`}},
		{"password in a stream flag", nil, []string{"--stream", "cam=http://cam:pw-3141@127.0.0.1/x"}, []string{"streams[0].url: must start with rtsp:// or rtsps://, got http://***@127.0.0.1/x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runActiond(t, tc.env, append([]string{"serve", "--model", model}, tc.args...)...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "pw-3141") {
				t.Errorf("the output shows a password:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}

// The first-run demo: `actiond demo` serves the motion model watching the
// bouncing disk, says what to run in a second terminal, and prints the
// actions as they start.
func TestDemoServesTheBouncingDisk(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	camera := testenv.FreeAddr(t)
	cache := t.TempDir()
	p := startServe(t, []string{"XDG_CACHE_HOME=" + cache}, "demo", "--listen", addr, "--camera-listen", camera)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stdout.String(), "moving_right  started") && !strings.Contains(p.stdout.String(), "moving_left   started") {
		select {
		case <-p.done:
			t.Fatalf("actiond demo exited: %v", p.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no action within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := p.stdout.String()
	for _, want := range []string{
		"actiond demo: serving gRPC on " + addr + " with the motion model",
		"camera \"demo\": rtsp://" + camera + "/demo",
		"windows of 2.5s every 625ms",
		"bin/actionctl --server " + addr + " watch",
		"grpcurl -plaintext -d '{\"kinds\":[\"EVENT_KIND_ACTION_STARTED\",\"EVENT_KIND_ACTION_ENDED\"]}' " + addr + " actiond.v1.RecognitionService/Subscribe",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "actiond", "motion.onnx")); err != nil {
		t.Errorf("motion model not in the cache directory: %v", err)
	}
	p.stop(t, syscall.SIGINT, 15*time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}

// A second signal stops a shutdown that is stuck: here a Classify call
// whose client never sends its request keeps the graceful stop waiting
// (its shutdown_timeout is a minute), until SIGTERM comes again.
func TestServeSecondSignalForcesExit(t *testing.T) {
	t.Parallel()
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	if err := os.WriteFile(config, []byte("shutdown_timeout: 1m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, conn, _ := serveAndDial(t, nil, nil, "--config", config, "--model", model)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stuck, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, "/actiond.v1.RecognitionService/Classify")
	if err != nil {
		t.Fatal(err)
	}
	stuckDone := make(chan error, 1)
	go func() { stuckDone <- stuck.RecvMsg(new(actiondv1.ClassifyResponse)) }()

	waitLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(p.stderr.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the log never said %q", want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(`msg="shutting down"`)
	select {
	case <-p.done:
		t.Fatalf("the server exited with a call still open (exit %v); the test cannot show the second signal", p.cmd.ProcessState)
	case err := <-stuckDone:
		t.Fatalf("the stuck call ended on the first signal: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	p.stop(t, syscall.SIGTERM, 20*time.Second) // the second: it stops the stuck shutdown
	if code := p.cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("exit status %d, want 1 (the shutdown was forced)", code)
	}
	waitLog("second signal: stopping now")
	if !strings.Contains(p.stderr.String(), "shutdown forced") {
		t.Errorf("stderr does not say the shutdown was forced:\n%s", p.stderr)
	}
	select {
	case err := <-stuckDone:
		if st, _ := status.FromError(err); st.Code() != codes.Unavailable && st.Code() != codes.Canceled {
			t.Errorf("the stuck call ended with %v, want UNAVAILABLE", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the stuck call never ended")
	}
}
