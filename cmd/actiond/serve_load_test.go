package main

import (
	"context"
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
	"github.com/actiond/actiond/internal/slowmodel"
	"github.com/actiond/actiond/internal/testenv"
)

// SIGTERM with the model saturated: several cameras feed a model whose
// every run lasts minutes; the server ends the run in flight (ONNX
// Runtime's terminate flag), says so in its log, and exits 0 within its
// shutdown_timeout instead of waiting for the model. The deadline is far
// below one run's length, so only an interrupted run meets it.
func TestServeSIGTERMInterruptsAModelRun(t *testing.T) {
	t.Parallel()
	model := filepath.Join(t.TempDir(), "slow.onnx")
	if err := slowmodel.WriteFile(model, 3000); err != nil { // a minute or more per window
		t.Fatal(err)
	}
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.AddSceneSequence("bounce", 160, 120, 12, demo.DemoBounce); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	metrics := testenv.FreeAddr(t)
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "shutdown_timeout: 10s\nmetrics_listen: %s\ninference:\n  threads: 1\nstreams:\n", metrics)
	for i := range 4 {
		fmt.Fprintf(&yaml, "  - name: cam%d\n    url: %s\n    window: 2.5s\n    stride: 0.3125s\n    transport: tcp\n", i, sim.URL("bounce"))
	}
	config := filepath.Join(t.TempDir(), "actiond.yaml")
	if err := os.WriteFile(config, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _, _ := serveAndDial(t, nil, nil, "--config", config, "--model", model)

	// Wait until a run is in flight and other windows are being skipped.
	deadline := time.Now().Add(90 * time.Second)
	for {
		m := scrape(t, metrics)
		if strings.Contains(m, "actiond_inference_runs_in_flight 1") && strings.Contains(m, "actiond_stream_skipped_windows_total{stream=\"cam1\"} ") &&
			!strings.Contains(m, "actiond_stream_skipped_windows_total{stream=\"cam1\"} 0\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run in flight with windows skipped within 90s; metrics:\n%s", m)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopAt := time.Now()
	p.stop(t, syscall.SIGTERM, 30*time.Second) // with a model run in flight
	t.Logf("exited %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0 (a graceful shutdown)", code)
	}
	logs := p.stderr.String()
	for _, want := range []string{"model run interrupted by shutdown", "msg=stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// scrape returns the metrics page at addr, "" while it does not answer.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
