package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testcert"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Shutdown ends every subscription with the streams' last status, STOPPED,
// then UNAVAILABLE; stops the cameras' connections, the scheduler and the
// hub; and leaves no goroutine behind. Not parallel: it counts goroutines.
func TestShutdownEndsSubscriptions(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	sim, _ := startCamera(t, "", "")
	ts := newTestServer(t, Config{Streams: []StreamSpec{
		{Name: "live", URL: sim.URL("bounce"), Window: camsim.BounceWindow, Stride: camsim.BounceStride, Transport: "tcp"},
		{Name: "idle", URL: "rtsp://127.0.0.1:1/x", Enabled: ptr(false)},
	}})
	if err := ts.Start(); err != nil {
		t.Fatal(err)
	}
	<-ts.Loaded()
	conn, err := grpc.NewClient(ts.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub := subscribe(t, ctx, actiondv1.NewRecognitionServiceClient(conn), &actiondv1.SubscribeRequest{})
	sub.until(30*time.Second, func(ev *actiondv1.Event) bool { return ev.GetWindowResult() != nil })

	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- ts.Shutdown(sctx)
	}()
	stopped := map[string]bool{}
	for ev := range sub.events {
		if st := ev.GetStreamStatus(); st.GetState() == actiondv1.StreamState_STREAM_STATE_STOPPED {
			stopped[ev.GetStream()] = true
		} else if stopped[ev.GetStream()] {
			t.Errorf("%s after the stream's STOPPED", describeEvent(ev))
		}
	}
	wantCode(t, "the subscription's end", <-sub.end, codes.Unavailable, "the server is shutting down")
	if !stopped["live"] || !stopped["idle"] {
		t.Errorf("STOPPED for %v, want live and idle", stopped)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("shutdown did not return")
	}
	if _, err := net.DialTimeout("tcp", ts.Addr(), time.Second); err == nil {
		t.Errorf("the server still accepts connections")
	}
	conn.Close()
	sim.Close()
}

// TLS from certificate files: a TLS client that trusts the certificate
// gets through; a plaintext one does not.
func TestTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	ts := newTestServer(t, Config{TLS: TLSConfig{CertFile: certFile, KeyFile: keyFile}})
	ts.start(t, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "localhost"})))
	<-ts.Loaded()
	ctx := ctxT(t, 20*time.Second)
	if _, err := ts.recog.GetModel(ctx, &actiondv1.GetModelRequest{}); err != nil {
		t.Errorf("over TLS: %v", err)
	}
	plain, err := grpc.NewClient(ts.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := actiondv1.NewRecognitionServiceClient(plain).GetModel(short, &actiondv1.GetModelRequest{}); err == nil {
		t.Errorf("a plaintext client got through to a TLS server")
	}
}

// selfSigned writes a certificate for localhost and its key, and returns
// a pool that trusts it (testcert's authority).
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	f, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f.Cert, f.Key, f.Roots
}

// newClientConn dials addr with a fixed flow-control window.
func newClientConn(addr string, window int32) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window))
}

// testutilCounter reads a counter from the server's registry.
func testutilCounter(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) > 0 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

var osReadFile = os.ReadFile

func absDir(t *testing.T, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		t.Fatal(err)
	}
	return real
}

// A server shut down while its model loads stops the core it finishes
// loading, with nothing left running (the goroutine check in TestMain):
// the core once waited for a fleet join that had never started.
func TestShutdownWhileLoading(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Config{})
	gate := make(chan struct{})
	ts.beforeLoad = func() { <-gate }
	if err := ts.Start(); err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() { shut <- ts.Close() }()
	// Close marks the server closed before loading can end.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts.closeMu.Lock()
		closed := ts.isClosed
		ts.closeMu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close did not begin")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(gate)
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("shutdown hung")
	}
	waitLoaded := time.After(60 * time.Second)
	select {
	case <-ts.loaded:
	case <-waitLoaded:
		t.Fatal("loading never ended after the shutdown")
	}
}
