package server

import (
	"net"
	"strings"
	"testing"
)

// When the default http_listen is taken (a second server on the machine),
// the server warns and serves gRPC without it; an http_listen that was
// asked for and is taken is an error.
func TestHTTPListenTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	ts := newTestServer(t, Config{})
	if !ts.cfg.httpDefault {
		t.Fatal("http_listen was not filled in as a default")
	}
	ts.cfg.HTTPListen = &addr // the default, as if 127.0.0.1:8080 were taken
	ts.start(t)
	if got := ts.HTTPAddr(); got != "" {
		t.Errorf("HTTPAddr = %q, want none", got)
	}
	if !strings.Contains(ts.logs.String(), "the default http_listen is taken") {
		t.Errorf("no warning in the log:\n%s", ts.logs)
	}

	asked := newTestServer(t, Config{HTTPListen: &addr})
	err = asked.Start()
	if err == nil {
		asked.Close()
		t.Fatal("Start with a taken http_listen succeeded")
	}
	if !strings.Contains(err.Error(), "http_listen: ") {
		t.Errorf("error %q does not name http_listen", err)
	}
}
