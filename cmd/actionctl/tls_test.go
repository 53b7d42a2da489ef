package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testcert"
	"github.com/actiond/actiond/internal/testenv"
)

// A server with TLS (a certificate of a test CA) and a token, as
// actionctl and grpcurl users meet it: with the CA and the token, calls
// work; without the token they are Unauthenticated; a client that does
// not trust the CA, or speaks plaintext, gets nowhere.
func TestTLSWithToken(t *testing.T) {
	t.Parallel()
	_, simURL := sharedServer(t)
	dir := t.TempDir()
	certs, err := testcert.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := writeConfig(dir, simURL, 5*time.Second, fmt.Sprintf("tls:\n  cert_file: %s\n  key_file: %s\n", certs.Cert, certs.Key))
	if err != nil {
		t.Fatal(err)
	}
	addr := testenv.FreeAddr(t)
	p, err := start("actiond serve", []string{"ACTIOND_TOKENS=tls-token-7731"}, actiond, "serve", "--listen", addr, "--model", motion, "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop(syscall.SIGTERM)
	logOnFailure(t, p)
	srv := &server{proc: p, addr: addr}
	// Health needs no token, but TLS.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := runCtl(t, srv, nil, "--ca", certs.CA, "health")
		if r.code == 0 && strings.HasPrefix(r.stdout, "SERVING\n") {
			break
		}
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("not SERVING over TLS within 60s: %s%s", r.stdout, r.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}

	wantFail(t, runCtl(t, srv, nil, "--ca", certs.CA, "model"), "Unauthenticated")
	wantFail(t, runCtl(t, srv, nil, "--ca", certs.CA, "--token", "guess-1234", "model"), "Unauthenticated")
	if r := runCtl(t, srv, []string{"ACTIOND_TOKEN=tls-token-7731"}, "--ca", certs.CA, "streams", "ls"); r.code != 0 || !strings.Contains(r.stdout, "right") {
		t.Errorf("actionctl with the CA and the token: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The system's roots do not know the test CA; plaintext is no TLS.
	for _, args := range [][]string{{"--tls", "--token", "tls-token-7731", "--timeout", "5s", "model"}, {"--timeout", "5s", "health"}} {
		if r := runCtl(t, srv, nil, args...); r.code != 1 {
			t.Errorf("actionctl %v: exit %d, want 1\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}

	grpcurlTLS := func(args ...string) result {
		return run(t, nil, "", append(append([]string{grpcurl}, args...), addr, "actiond.v1.RecognitionService/GetModel")...)
	}
	if r := grpcurlTLS("-cacert", certs.CA, "-H", "authorization: Bearer tls-token-7731"); r.code != 0 || !strings.Contains(r.stdout, `"name": "motion"`) {
		t.Errorf("grpcurl with the CA and the token: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if r := grpcurlTLS("-cacert", certs.CA); r.code == 0 || !strings.Contains(r.stderr, "Unauthenticated") {
		t.Errorf("grpcurl without the token: exit %d %s", r.code, r.stderr)
	}
	if r := grpcurlTLS("-H", "authorization: Bearer tls-token-7731", "-max-time", "5"); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("grpcurl not trusting the CA: exit %d %s", r.code, r.stderr)
	}
	if r := grpcurlTLS("-plaintext", "-H", "authorization: Bearer tls-token-7731", "-max-time", "5"); r.code == 0 {
		t.Errorf("grpcurl in plaintext to a TLS server: exit 0")
	}
	if strings.Contains(p.out.String(), "tls-token-7731") || strings.Contains(p.out.String(), "guess-1234") {
		t.Errorf("a token is in the server's log")
	}
}
