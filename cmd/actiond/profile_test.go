package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// serve --cpuprofile/--memprofile: after a live run that produced a
// window, the stopped server leaves two profiles that go tool pprof reads,
// and the allocation profile shows the live path (the window's tensor).
func TestServeWritesProfiles(t *testing.T) {
	t.Parallel()
	gobin := testenv.Tool(t, "go") // go tool pprof reads the profiles
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.AddScene("right", camsim.Scene{Width: 160, Height: 120, FPS: 12, Duration: 4 * time.Second, Direction: camsim.Right}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof")
	config := filepath.Join(dir, "actiond.yaml")
	yaml := fmt.Sprintf("streams:\n  - name: cam\n    url: %s\n    window: 2.5s\n    stride: 0.625s\n    transport: tcp\n", sim.URL("right"))
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p, conn, _ := serveAndDial(t, nil, nil, "--config", config, "--model", model,
		"--cpuprofile", cpu, "--memprofile", mem)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := actiondv1.NewRecognitionServiceClient(conn).Subscribe(ctx, &actiondv1.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for windows := 0; windows < 3; {
		r, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetEvent().GetWindowResult() != nil {
			windows++
		}
	}
	p.stop(t, syscall.SIGINT, 30*time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", code, p.stderr)
	}
	for _, c := range []struct {
		file string
		args []string
		want string
	}{
		{cpu, nil, "Type: cpu"},
		// Allocations are sampled every 512 KiB; the model's input
		// tensor, which the scheduler's first run allocates (16×3×224×224
		// float32, 9.6 MB), is sure to be. (Windows themselves are leases
		// on their stream's ring: no allocation per window.)
		{mem, []string{"-sample_index=alloc_space"}, "server.(*Scheduler).runBatch"},
	} {
		args := append(append([]string{"tool", "pprof", "-top"}, c.args...), actiond, c.file)
		out, err := exec.Command(gobin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go tool pprof %s: %v\n%s", filepath.Base(c.file), err, out)
		}
		if !strings.Contains(string(out), c.want) {
			t.Errorf("go tool pprof -top %s lacks %q:\n%s", filepath.Base(c.file), c.want, out)
		}
	}
}
