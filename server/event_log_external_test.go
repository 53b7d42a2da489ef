package server

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// natsServer is a separate nats-server process with JetStream, built from
// the nats-server module at the version go.mod pins.
type natsServer struct {
	bin, dir, addr string
	cmd            *exec.Cmd
	out            *testenv.Buffer
	done           chan struct{}
}

var natsBin struct {
	once sync.Once
	path string
	err  error
}

// buildNATSServer builds the pinned nats-server once per test binary.
func buildNATSServer(t *testing.T) string {
	t.Helper()
	natsBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "actiond-nats-")
		if err != nil {
			natsBin.err = err
			return
		}
		natsBin.path = filepath.Join(dir, "nats-server")
		cmd := exec.Command("go", "build", "-o", natsBin.path, "github.com/nats-io/nats-server/v2")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			natsBin.err = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if natsBin.err != nil {
		t.Fatal(natsBin.err)
	}
	return natsBin.path
}

// startNATS runs nats-server with JetStream in dir on addr (a free
// loopback port when "").
func startNATS(t *testing.T, dir, addr string) *natsServer {
	t.Helper()
	if addr == "" {
		addr = testenv.FreeAddr(t)
	}
	host, port, _ := net.SplitHostPort(addr)
	n := &natsServer{bin: buildNATSServer(t), dir: dir, addr: addr, out: &testenv.Buffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(n.bin, "-js", "-sd", dir, "-a", host, "-p", port)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.stop(syscall.SIGKILL) })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if strings.Contains(n.out.String(), "Server is ready") {
			return n
		}
		select {
		case <-n.done:
			t.Fatalf("nats-server exited:\n%s", n.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server not ready within 30s:\n%s", n.out)
		}
	}
}

func (n *natsServer) stop(sig syscall.Signal) {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(sig)
	<-n.done
}

// TestExternalNATS runs the server on a separate nats-server (nats.url)
// and takes that server away under it: events keep flowing to
// subscribers, marked unlogged, counted, and HistoryService says
// NOT_SERVING; when NATS is back on the same store, events are logged
// again with positions that go on, and a resume replays the logged ones.
func TestExternalNATS(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	nats := startNATS(t, store, "")
	sim, _ := startCamera(t, "", "")
	ts := startServer(t, Config{MetricsListen: "127.0.0.1:0", NATS: NATSConfig{URL: "nats://" + nats.addr}})
	ctx := ctxT(t, 150*time.Second)
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{
		Name: "cam", Url: sim.URL("bounce"),
		Options: &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP},
	}); err != nil {
		t.Fatal(err)
	}
	windows := &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}}
	sub := subscribe(t, ctx, ts.recog, windows)
	var before []*actiondv1.Event
	for len(before) < 3 {
		ev := sub.next(30 * time.Second)
		if !ev.GetLogged() || ev.GetPosition() == 0 {
			t.Fatalf("with NATS up: %s unlogged", describeEvent(ev))
		}
		before = append(before, ev)
	}
	historyHealth := func() healthpb.HealthCheckResponse_ServingStatus {
		h, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: actiondv1.HistoryService_ServiceDesc.ServiceName})
		if err != nil {
			t.Fatal(err)
		}
		return h.GetStatus()
	}
	if st := historyHealth(); st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("HistoryService with NATS up: %v", st)
	}

	// NATS goes away: live events go on, unlogged.
	nats.stop(syscall.SIGKILL)
	unlogged := 0
	for unlogged < 3 {
		ev := sub.next(30 * time.Second)
		if !ev.GetLogged() {
			if ev.GetPosition() != 0 {
				t.Errorf("%s: unlogged with a position", describeEvent(ev))
			}
			unlogged++
		}
	}
	if st := historyHealth(); st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("HistoryService with NATS down: %v, want NOT_SERVING", st)
	}
	if st, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("the server with NATS down: %v %v, want SERVING", st, err)
	}
	if m := scrape(t, ts.MetricsAddr()); !strings.Contains(m, "actiond_event_log_up 0") || strings.Contains(m, "actiond_events_unlogged_total 0\n") {
		t.Errorf("metrics with NATS down lack the unlogged events")
	}

	// NATS comes back on the same store: logged again, positions go on.
	startNATS(t, store, nats.addr)
	var after *actiondv1.Event
	for after == nil {
		if ev := sub.next(30 * time.Second); ev.GetLogged() {
			after = ev
		}
	}
	if after.GetPosition() <= before[len(before)-1].GetPosition() {
		t.Errorf("position %d after NATS came back, %d before", after.GetPosition(), before[len(before)-1].GetPosition())
	}
	for deadline := time.Now().Add(20 * time.Second); historyHealth() != healthpb.HealthCheckResponse_SERVING; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("HistoryService not SERVING within 20s of NATS coming back")
		}
	}
	// A resume from before the outage replays what was logged: the
	// windows before it, then those after.
	resumed := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Kinds: windows.Kinds, ResumeAfter: ptr(before[0].GetPosition())})
	prev := before[0].GetPosition()
	for i := 0; i < 4; i++ {
		ev := resumed.next(30 * time.Second)
		if !ev.GetLogged() || ev.GetPosition() <= prev {
			t.Fatalf("resumed %s after %d", describeEvent(ev), prev)
		}
		if i < 2 && ev.GetPosition() != before[i+1].GetPosition() {
			t.Errorf("resumed %s, want position %d", describeEvent(ev), before[i+1].GetPosition())
		}
		prev = ev.GetPosition()
	}
}

// The external NATS is down when the server starts: the server serves
// (live events flow unlogged), HistoryService is NOT_SERVING, and stream
// changes over the API fail UNAVAILABLE (the registry cannot keep them);
// once NATS is up, the log is used, HistoryService answers and changes are
// kept.
func TestExternalNATSDownAtStart(t *testing.T) {
	t.Parallel()
	addr := testenv.FreeAddr(t)
	ts := startServer(t, Config{NATS: NATSConfig{URL: "nats://" + addr}})
	ctx := ctxT(t, 90*time.Second)
	h, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: actiondv1.HistoryService_ServiceDesc.ServiceName})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("HistoryService with NATS down at start: %v %v", h, err)
	}
	_, err = ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: "rtsp://127.0.0.1:1/x"})
	wantCode(t, "AddStream with the registry unavailable", err, codes.Unavailable)

	startNATS(t, t.TempDir(), addr)
	history := actiondv1.NewHistoryServiceClient(ts.conn)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		h, err := ts.health.Check(ctx, &healthpb.HealthCheckRequest{Service: actiondv1.HistoryService_ServiceDesc.ServiceName})
		if err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HistoryService not SERVING within 30s of NATS coming up: %v %v", h, err)
		}
	}
	if _, err := history.ListActions(ctx, &actiondv1.ListActionsRequest{}); err != nil {
		t.Errorf("ListActions once NATS is up: %v", err)
	}
	if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: "rtsp://127.0.0.1:1/x",
		Options: &actiondv1.StreamOptions{Enabled: ptr(false)}}); err != nil {
		t.Errorf("AddStream once NATS is up: %v", err)
	}
}
