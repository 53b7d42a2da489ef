package client

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testcert"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, addr string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(testContext(t), addr, opts...)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialNobodyListening(t *testing.T) {
	lis := listen(t)
	addr := lis.Addr().String()
	lis.Close()
	_, err := Dial(testContext(t), addr)
	if !errors.Is(err, ErrUnavailable) || status.Code(err) != codes.Unavailable {
		t.Fatalf("Dial to a closed port: %v (code %v), want Unavailable", err, status.Code(err))
	}
	if !strings.HasPrefix(err.Error(), "connect to "+addr+": Unavailable: ") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestDialTimeout(t *testing.T) {
	lis := listen(t) // accepts TCP, never speaks HTTP/2
	defer lis.Close()
	start := time.Now()
	_, err := Dial(testContext(t), lis.Addr().String(), WithDialTimeout(300*time.Millisecond))
	if c := status.Code(err); c != codes.DeadlineExceeded && c != codes.Unavailable {
		t.Fatalf("Dial to a silent peer: %v, want DeadlineExceeded or Unavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Dial took %v despite a 300ms dial timeout", d)
	}
}

func TestStreamsCRUDAndErrors(t *testing.T) {
	f := newFakeServer()
	lis := listen(t)
	f.serve(t, lis, nil)
	c := dial(t, lis.Addr().String())
	ctx := testContext(t)

	opts := &actiondv1.StreamOptions{TopK: proto.Uint32(3)}
	s, err := c.AddStream(ctx, "dock-3", "rtsp://10.0.0.7/stream1", opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.GetName() != "dock-3" || s.GetOptions().GetTopK() != 3 {
		t.Errorf("AddStream returned %v", s)
	}
	if got, err := c.GetStream(ctx, "dock-3"); err != nil || got.GetUrl() != "rtsp://10.0.0.7/stream1" {
		t.Errorf("GetStream = %v, %v", got, err)
	}

	cases := []struct {
		name     string
		call     func() error
		code     codes.Code
		sentinel error
		text     string
	}{
		{"add twice", func() error { _, err := c.AddStream(ctx, "dock-3", "rtsp://h/p", nil); return err },
			codes.AlreadyExists, ErrAlreadyExists, `add stream "dock-3": AlreadyExists: stream "dock-3" already exists`},
		{"get unknown", func() error { _, err := c.GetStream(ctx, "nope"); return err },
			codes.NotFound, ErrNotFound, `get stream "nope": NotFound: stream "nope" not found`},
		{"bad url", func() error { _, err := c.AddStream(ctx, "x", "http://h/p", nil); return err },
			codes.InvalidArgument, ErrInvalidArgument, `add stream "x": InvalidArgument: 'url' must be`},
		{"remove unknown", func() error { return c.RemoveStream(ctx, "nope") },
			codes.NotFound, ErrNotFound, `remove stream "nope": NotFound`},
		{"update unimplemented", func() error {
			_, err := c.UpdateStream(ctx, &actiondv1.UpdateStreamRequest{Name: "dock-3"})
			return err
		}, codes.Unimplemented, ErrUnimplemented, `update stream "dock-3": Unimplemented`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %v: code %v, want %v", err, status.Code(err), tc.code)
			}
			if !strings.HasPrefix(err.Error(), tc.text) {
				t.Errorf("error %q, want it to start with %q", err, tc.text)
			}
			var e *Error
			if !errors.As(err, &e) || e.Code() != tc.code {
				t.Errorf("error %v is not an *Error with code %v", err, tc.code)
			}
			// Wrapped again by a caller, the code still shows.
			if wrapped := errors.Join(errors.New("outer"), err); !errors.Is(wrapped, tc.sentinel) {
				t.Errorf("errors.Is lost the code through a wrapper")
			}
		})
	}

	if err := c.RemoveStream(ctx, "dock-3"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetStream(ctx, "dock-3"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetStream after RemoveStream: %v, want NotFound", err)
	}
}

func TestListStreamsReadsEveryPage(t *testing.T) {
	f := newFakeServer()
	f.pageSize = 4
	var want []string
	for i := range 23 {
		name := string(rune('a'+i)) + "-cam"
		want = append(want, name)
		f.streams[name] = &actiondv1.Stream{Name: name}
	}
	lis := listen(t)
	f.serve(t, lis, nil)
	c := dial(t, lis.Addr().String())
	got, err := c.ListStreams(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.GetName())
	}
	if !slices.Equal(names, want) {
		t.Errorf("ListStreams = %v, want %v", names, want)
	}
	// Empty server: no streams, no error.
	f.streams = map[string]*actiondv1.Stream{}
	if got, err := c.ListStreams(testContext(t)); err != nil || len(got) != 0 {
		t.Errorf("ListStreams of none = %v, %v", got, err)
	}
}

func TestBearerToken(t *testing.T) {
	f := newFakeServer()
	f.token = "s3cret"
	lis := listen(t)
	f.serve(t, lis, nil)
	addr := lis.Addr().String()
	ctx := testContext(t)

	// No token: Dial works (health needs none), calls are Unauthenticated.
	anon := dial(t, addr)
	if _, err := anon.GetModel(ctx); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("GetModel without a token: %v, want Unauthenticated", err)
	}
	wrong := dial(t, addr, WithToken("guess"))
	if _, err := wrong.ListStreams(ctx); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListStreams with a wrong token: %v, want Unauthenticated", err)
	}
	// The right token travels as "authorization: Bearer TOKEN" over
	// plaintext, since the address is loopback.
	ok := dial(t, addr, WithToken("s3cret"))
	if m, err := ok.GetModel(ctx); err != nil || m.GetName() != "fake" {
		t.Fatalf("GetModel with the token: %v, %v", m, err)
	}
	f.mu.Lock()
	auth := f.lastAuth
	f.mu.Unlock()
	if !slices.Equal(auth, []string{"Bearer s3cret"}) {
		t.Errorf("authorization metadata %q", auth)
	}
}

func TestTokenNeedsTLSBeyondLoopback(t *testing.T) {
	_, err := Dial(testContext(t), "192.0.2.1:50051", WithToken("t"))
	if err == nil || !strings.Contains(err.Error(), "without TLS, a token is sent only to a loopback address") {
		t.Fatalf("Dial with a token over plaintext to a remote address: %v", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for target, want := range map[string]bool{
		"127.0.0.1:50051":           true,
		"127.3.2.1:1":               true,
		"[::1]:50051":               true,
		"localhost:50051":           true,
		"LOCALHOST":                 true,
		"dns:///localhost:50051":    true,
		"unix:///run/actiond.sock":  true,
		"passthrough:///[::1]:5":    true,
		"10.0.0.7:50051":            false,
		"actiond.example.com:50051": false,
		"dns:///actiond:50051":      false,
		"0.0.0.0:50051":             false,
	} {
		if got := isLoopback(target); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", target, got, want)
		}
	}
}

func TestTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	f := newFakeServer()
	f.token = "s3cret"
	lis := listen(t)
	f.serve(t, lis, &cert)
	addr := lis.Addr().String()
	ctx := testContext(t)

	for name, opts := range map[string][]Option{
		"ca file":     {WithCAFile(caFile)},
		"skip verify": {WithInsecureSkipVerify()},
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr, append(opts, WithToken("s3cret"))...)
			if st, err := c.Health(ctx, ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("Health = %v, %v", st, err)
			}
			if _, err := c.ListStreams(ctx); err != nil {
				t.Errorf("ListStreams over TLS with a token: %v", err)
			}
		})
	}
	t.Run("system roots do not know a self-signed cert", func(t *testing.T) {
		_, err := Dial(ctx, addr, WithTLS())
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Dial: %v, want Unavailable naming the certificate", err)
		}
	})
	t.Run("plaintext to a TLS server", func(t *testing.T) {
		if _, err := Dial(ctx, addr, WithDialTimeout(2*time.Second)); err == nil {
			t.Errorf("Dial in plaintext to a TLS server succeeded")
		}
	})
	t.Run("missing CA file", func(t *testing.T) {
		_, err := Dial(ctx, addr, WithCAFile(filepath.Join(t.TempDir(), "none.pem")))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Dial with a missing CA file: %v", err)
		}
	})
}

// selfSigned makes a server certificate for 127.0.0.1 (testcert's) and
// returns it with the PEM file of the authority that signed it.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	f, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, f.CA
}

func TestClassifyAndModel(t *testing.T) {
	f := newFakeServer()
	lis := listen(t)
	f.serve(t, lis, nil)
	c := dial(t, lis.Addr().String(), WithCallTimeout(5*time.Second))
	ctx := testContext(t)

	clip := filepath.Join(t.TempDir(), "upload.mp4")
	if err := os.WriteFile(clip, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := c.ClassifyFile(ctx, clip, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetFile() != "upload.mp4" || r.GetFramesTotal() != 10 || len(r.GetTop()) != 1 {
		t.Errorf("ClassifyFile = %v: want the base name echoed and all 10 bytes sent", r)
	}
	if r, err := c.ClassifyURI(ctx, "file:///srv/clips/a.mp4", 0); err != nil || r.GetFile() != "/srv/clips/a.mp4" {
		t.Errorf("ClassifyURI = %v, %v", r, err)
	}
	f.mu.Lock()
	sent := f.classified
	f.mu.Unlock()
	if len(sent) != 2 || sent[0].GetTopK() != 1 || sent[1].GetUri() != "file:///srv/clips/a.mp4" || sent[1].GetContent() != nil {
		t.Errorf("requests sent: %v", sent)
	}
	if _, err := c.ClassifyFile(ctx, filepath.Join(t.TempDir(), "missing.mp4"), 0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ClassifyFile of a missing file: %v", err)
	}
	if m, err := c.GetModel(ctx); err != nil || len(m.GetLabels()) != 2 {
		t.Errorf("GetModel = %v, %v", m, err)
	}
	if st, err := c.Health(ctx, ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("Health = %v, %v", st, err)
	}
	if _, err := c.Health(ctx, "no.such.Service"); status.Code(err) != codes.NotFound {
		t.Errorf("Health of an unknown service: %v, want NotFound", err)
	}
}

func TestCallTimeout(t *testing.T) {
	f := newFakeServer()
	lis := listen(t)
	f.serve(t, lis, nil)
	c := dial(t, lis.Addr().String(), WithCallTimeout(time.Nanosecond))
	_, err := c.GetModel(testContext(t))
	if status.Code(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetModel with a 1ns call timeout: %v, want DeadlineExceeded", err)
	}
}
