package serveproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A child that prints its addresses as `actiond serve` does is started,
// its addresses read back, its output kept in the log, and stopped; one
// that exits first is reported with its log.
func TestStartReadsAddressesAndStops(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-actiond")
	script := `#!/bin/sh
if [ "$1" = fail ]; then echo "no model" >&2; exit 3; fi
echo "actiond: pprof on http://127.0.0.1:3/debug/pprof/"
echo "actiond: serving gRPC on 127.0.0.1:1"
echo "actiond: metrics on http://127.0.0.1:2/metrics"
exec sleep 60
`
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, bin, []string{"serve"}, filepath.Join(dir, "ok.log"), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if p.GRPC != "127.0.0.1:1" || p.Metrics != "127.0.0.1:2" || p.Pprof != "127.0.0.1:3" {
		t.Errorf("addresses %q %q %q", p.GRPC, p.Metrics, p.Pprof)
	}
	if done, _ := p.Exited(); done {
		t.Error("exited while running")
	}
	if err := p.Stop(10 * time.Second); err == nil || !strings.Contains(err.Error(), "signal: terminated") {
		t.Errorf("stop: %v, want terminated by SIGTERM", err)
	}
	if b, _ := os.ReadFile(p.LogPath); !strings.Contains(string(b), "actiond: serving gRPC on 127.0.0.1:1") {
		t.Errorf("log lacks the child's output: %q", b)
	}

	_, err = Start(ctx, bin, []string{"fail"}, filepath.Join(dir, "fail.log"), 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before serving (exit status 3)") || !strings.Contains(err.Error(), "no model") {
		t.Errorf("a child that exits first: %v", err)
	}
}
