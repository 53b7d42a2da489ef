package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/internal/testenv"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// fleetNodeEnv makes the test binary an `actiond serve` process on the
// configuration file it names (see TestMain), for the fleet test.
const fleetNodeEnv = "ACTIOND_TEST_FLEET_NODE"

// serveFleetNode is that process: it serves until it is signalled or
// killed.
func serveFleetNode(path string) {
	cfg, _, err := LoadConfig(path, nil)
	if err == nil {
		err = Run(context.Background(), cfg, RunOptions{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// fleetNode is one `actiond serve` process of the fleet test.
type fleetNode struct {
	name string
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{}
	conn *grpc.ClientConn
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startFleetNode(t *testing.T, name, natsURL string, cams []string, sim *camsim.Simulator) *fleetNode {
	t.Helper()
	addr := freeAddr(t)
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nmodel: %s\ndata_dir: %s\ninference: {threads: 1}\nshutdown_timeout: 10s\n", addr, motionModel, t.TempDir())
	fmt.Fprintf(&b, "nats: {url: \"nats://%s\"}\nnode: {name: %s}\nfleet: {lease: 3s}\nstreams:\n", natsURL, name)
	for _, c := range cams {
		fmt.Fprintf(&b, "  - {name: %s, url: %q, window: %s, stride: %s, transport: tcp}\n", c, sim.URL(c), camsim.BounceWindow, camsim.BounceStride)
	}
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &fleetNode{name: name, out: &testenv.Buffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(os.Args[0], "-test.run=^$")
	n.cmd.Env = append(os.Environ(), fleetNodeEnv+"="+path)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
		if t.Failed() {
			t.Logf("node %s log:\n%s", name, n.out)
		}
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n.conn = conn
	return n
}

// placement returns each stream's owner as node's ListStreams says, and
// whether every stream plays.
func placement(ctx context.Context, n *fleetNode) (map[string]string, bool) {
	resp, err := actiondv1.NewStreamServiceClient(n.conn).ListStreams(ctx, &actiondv1.ListStreamsRequest{})
	if err != nil {
		return nil, false
	}
	owners := map[string]string{}
	all := true
	for _, s := range resp.GetStreams() {
		owners[s.GetName()] = s.GetStatus().GetNode()
		if s.GetStatus().GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || s.GetStatus().GetNode() == "" {
			all = false
		}
	}
	return owners, all
}

// Three `actiond serve` processes on one nats-server, nine cameras: all
// nine play, at most ceil(9/3)+1 per node; one node is killed (SIGKILL)
// and its cameras play on the others; no camera ever has two RTSP
// sessions (sampled every 100 ms at the simulator); the shared log holds
// every stream's events with gapless per-stream sequences; and a
// subscriber on a surviving node saw every stream before and after the
// kill, every logged event after it subscribed, each once.
func TestFleetThreeNodesFailover(t *testing.T) {
	ns := startNATS(t, t.TempDir(), "")
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	var cams []string
	for i := range 10 { // cam9 is added over the API
		if err := sim.AddSceneSequence(fmt.Sprintf("cam%d", i), 160, 120, 12, camsim.Bounce); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 9 {
		cams = append(cams, fmt.Sprintf("cam%d", i))
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })

	// No camera ever has two sessions.
	var mu sync.Mutex
	var doubles []string
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
			for _, c := range append(cams, "cam9") {
				if r := sim.Stats(c).Readers; r > 1 {
					mu.Lock()
					doubles = append(doubles, fmt.Sprintf("%s: %d sessions at %s", c, r, time.Now().Format("15:04:05.000")))
					mu.Unlock()
				}
			}
		}
	})
	defer func() { close(stopSampling); sampling.Wait() }()

	var nodes []*fleetNode
	for i := range 3 {
		nodes = append(nodes, startFleetNode(t, fmt.Sprintf("n%d", i), ns.addr, cams, sim))
	}
	ctx := ctxT(t, 120*time.Second)
	streams := len(cams)
	waitPlaced := func(on *fleetNode, why string, not string, most int) map[string]string {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			owners, all := placement(ctx, on)
			perNode := map[string]int{}
			for _, o := range owners {
				perNode[o]++
			}
			fair := all && len(owners) == streams && perNode[not] == 0
			for _, k := range perNode {
				if k > most {
					fair = false
				}
			}
			if fair {
				return owners
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not every camera plays (at most %d per node) within 60s: %v", why, most, owners)
			}
		}
	}
	waitPlaced(nodes[0], "start", "-", 4) // ceil(9/3)+1
	// Any node lists every node, with what it owns.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := actiondv1.NewFleetServiceClient(nodes[1].conn).ListNodes(ctx, &actiondv1.ListNodesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		owned, loaded := 0, 0
		for _, n := range resp.GetNodes() {
			owned += len(n.GetStreamsOwned())
			if n.GetCpuLoad() > 0 && n.GetInferenceLoad() > 0 {
				loaded++
			}
			if n.GetAddress() == "" || !strings.HasPrefix(n.GetName(), "n") {
				t.Errorf("ListNodes: %v", n)
			}
		}
		if resp.GetFleet() == "actiond" && len(resp.GetNodes()) == 3 && owned == len(cams) && loaded == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListNodes within 30s: %v", resp)
		}
	}

	// A stream added on one node exists for all and plays on one of
	// them; removed on another, it is gone everywhere.
	streamsOf := func(n *fleetNode) actiondv1.StreamServiceClient { return actiondv1.NewStreamServiceClient(n.conn) }
	if _, err := streamsOf(nodes[1]).AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam9", Url: sim.URL("cam9"),
		Options: &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP}}); err != nil {
		t.Fatal(err)
	}
	streams = 10
	waitPlaced(nodes[2], "cam9 added on n1", "-", 5) // ceil(10/3)+1
	if _, err := streamsOf(nodes[0]).RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: "cam9"}); err != nil {
		t.Fatal(err)
	}
	streams = 9
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err1 := streamsOf(nodes[1]).GetStream(ctx, &actiondv1.GetStreamRequest{Name: "cam9"})
		_, err2 := streamsOf(nodes[2]).GetStream(ctx, &actiondv1.GetStreamRequest{Name: "cam9"})
		if status.Code(err1) == codes.NotFound && status.Code(err2) == codes.NotFound && sim.Stats("cam9").Readers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cam9 removed on n0: still on n1 (%v) or n2 (%v), or played (%d sessions) after 30s", err1, err2, sim.Stats("cam9").Readers)
		}
	}
	owners := waitPlaced(nodes[0], "cam9 removed", "-", 4)

	// The subscriber is on a node that survives; the victim is another
	// node that plays cameras.
	victim := nodes[2]
	for _, n := range nodes[1:] {
		for _, o := range owners {
			if o == n.name {
				victim = n
			}
		}
	}
	watcher := nodes[0]
	sub := subscribe(t, ctx, actiondv1.NewRecognitionServiceClient(watcher.conn), &actiondv1.SubscribeRequest{})
	var got []*actiondv1.Event
	seen := func(after func(*actiondv1.Event) bool) {
		t.Helper()
		want := map[string]bool{}
		for _, c := range cams {
			want[c] = true
		}
		got = append(got, sub.until(60*time.Second, func(ev *actiondv1.Event) bool {
			if ev.GetWindowResult() != nil && after(ev) {
				delete(want, ev.GetStream())
			}
			return len(want) == 0
		})...)
	}
	seen(func(*actiondv1.Event) bool { return true })

	var moved []string
	for c, o := range owners {
		if o == victim.name {
			moved = append(moved, c)
		}
	}
	sort.Strings(moved)
	victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.done
	killed := time.Now()
	after := waitPlaced(watcher, "after the kill", victim.name, 6) // ceil(9/2)+1
	t.Logf("killed %s (cameras %v); all nine play again after %v: %v", victim.name, moved, time.Since(killed).Round(100*time.Millisecond), after)
	seen(func(ev *actiondv1.Event) bool { return ev.GetWindowResult().GetEndTime().AsTime().After(killed) })

	// A second process under a live node's name is refused at start.
	dup := startFleetNode(t, watcher.name, ns.addr, cams, sim)
	select {
	case <-dup.done:
		if dup.cmd.ProcessState.ExitCode() == 0 || !strings.Contains(dup.out.String(), "node name in use") {
			t.Errorf("a second %s: exit %d, log:\n%s", watcher.name, dup.cmd.ProcessState.ExitCode(), dup.out)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("a second %s still runs after 60s", watcher.name)
	}

	// SIGTERM on a fleet node drains it: its cameras move before it
	// stops, and it exits 0.
	var leaving *fleetNode
	for _, n := range nodes[1:] {
		if n != victim {
			leaving = n
		}
	}
	leaving.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-leaving.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop within 60s of SIGTERM", leaving.name)
	}
	if code := leaving.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(leaving.out.String(), "drained") {
		t.Errorf("%s after SIGTERM: exit %d, no drain in its log", leaving.name, code)
	}
	waitPlaced(watcher, "after the drain", leaving.name, 10)
	drained := time.Now()
	seen(func(ev *actiondv1.Event) bool { return ev.GetWindowResult().GetEndTime().AsTime().After(drained) })

	mu.Lock()
	if len(doubles) > 0 {
		t.Errorf("cameras with two RTSP sessions: %v", doubles)
	}
	mu.Unlock()

	// The shared log: per stream, sequences 1, 2, 3, … with no gap and no
	// repeat across the owners; everything logged after the subscriber's
	// first event up to its last reached it, once.
	js := ns.jetStream(t)
	cons, err := js.OrderedConsumer(ctx, eventlog.StreamName, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.Stream(ctx, eventlog.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	last := info.CachedInfo().State.LastSeq
	var logged []*actiondv1.Event
	for len(logged) == 0 || logged[len(logged)-1].GetPosition() < last {
		msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("read the log: %v", err)
		}
		ev, err := eventlog.Decode(msg)
		if err != nil {
			t.Fatal(err)
		}
		logged = append(logged, ev)
	}
	seq := map[string]uint64{}
	for _, ev := range logged {
		if ev.GetSequence() != seq[ev.GetStream()]+1 {
			t.Errorf("stream %s: sequence %d at position %d after %d (fence %d)", ev.GetStream(), ev.GetSequence(), ev.GetPosition(), seq[ev.GetStream()], ev.GetFence())
		}
		seq[ev.GetStream()] = ev.GetSequence()
		if ev.GetFence() == 0 {
			t.Errorf("position %d of stream %s has no fence", ev.GetPosition(), ev.GetStream())
		}
	}
	first, lastGot := got[0].GetPosition(), got[len(got)-1].GetPosition()
	for i, ev := range got[1:] {
		if ev.GetPosition() <= got[i].GetPosition() {
			t.Errorf("the subscriber got position %d after %d", ev.GetPosition(), got[i].GetPosition())
		}
	}
	received := map[uint64]int{}
	for _, ev := range got {
		received[ev.GetPosition()]++
	}
	for _, ev := range logged {
		if p := ev.GetPosition(); p >= first && p <= lastGot && received[p] != 1 {
			t.Errorf("the subscriber got the event at position %d (%s) %d times", p, describeEvent(ev), received[p])
		}
	}
}
