package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The profiles answer on their own address: a CPU profile of the given
// seconds, the goroutine list naming this test; Close
// stops the listener.
func TestPprofServer(t *testing.T) {
	p, err := StartPprof("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	get := func(path string) []byte {
		t.Helper()
		resp, err := hc.Get("http://" + p.Addr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s, %v: %s", path, resp.Status, err, b)
		}
		return b
	}
	// A profile is a gzipped protocol buffer that names its sample types
	// ("samples", "cpu") in its string table.
	zr, err := gzip.NewReader(bytes.NewReader(get("/debug/pprof/profile?seconds=1")))
	if err != nil {
		t.Fatalf("CPU profile: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(raw, []byte("cpu")) || !bytes.Contains(raw, []byte("nanoseconds")) {
		t.Errorf("CPU profile: %v, %d bytes without the cpu sample type", err, len(raw))
	}
	if g := string(get("/debug/pprof/goroutine?debug=1")); !strings.Contains(g, "TestPprofServer") {
		t.Errorf("goroutine list does not name the test:\n%.2000s", g)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if resp, err := hc.Get("http://" + p.Addr() + "/debug/pprof/"); err == nil {
		resp.Body.Close()
		t.Errorf("still serving after Close: %s", resp.Status)
	}
}
