package sink

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestSinkHost is not a test: run by TestKilledWhileBehind as a child
// process (SINK_TEST_HOST set), it is the part of the server that a sink
// lives in: the event log on its file store and the sink manager. It
// appends SINK_TEST_EVENTS actions, then runs until killed.
func TestSinkHost(t *testing.T) {
	dir := os.Getenv("SINK_TEST_HOST")
	if dir == "" {
		t.Skip("run by TestKilledWhileBehind")
	}
	l := openLog(t, dir)
	m := NewManager(l.js, testLogger(t))
	spec := settled(t, Spec{Name: "behind", Type: "webhook", URL: os.Getenv("SINK_TEST_URL"), Timeout: time.Minute, BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond})
	if err := m.Apply([]Spec{spec}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "consumer", func() bool {
		_, err := l.js.Consumer(context.Background(), "ACTIOND_EVENTS", "behind")
		return err == nil
	})
	n, _ := strconv.Atoi(os.Getenv("SINK_TEST_EVENTS"))
	for i := range n {
		l.append(t, started("gate", fmt.Sprintf("a%d", i), "welding", uint64(i+1)))
	}
	fmt.Println("appended")
	select {}
}

// TestKilledWhileBehind: the process holding the log and the sink is
// SIGKILLed while the sink is behind (its receiver stalls on an event);
// after a restart the sink resumes at the event the receiver had not
// acknowledged: nothing lost, nothing acknowledged sent again.
//
// Killed at once, the consumer's own state is not written yet (JetStream
// writes it at most ten times a second): the sink's positions bucket
// skips what was delivered. Killed a second later, the consumer has it.
func TestKilledWhileBehind(t *testing.T) {
	if os.Getenv("SINK_TEST_HOST") != "" {
		t.Skip("child")
	}
	t.Run("at once", func(t *testing.T) { killedWhileBehind(t, 0) })
	t.Run("a second later", func(t *testing.T) { killedWhileBehind(t, time.Second) })
}

func killedWhileBehind(t *testing.T, before time.Duration) {
	const events, stallAt = 30, 10
	var (
		mu        sync.Mutex
		phase     = 1
		delivered = map[int][]uint64{} // phase -> positions answered 2xx
		requests  = map[int][]uint64{}
		stalled   = make(chan struct{})
		release   = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev actiondv1.Event
		body, _ := io.ReadAll(r.Body)
		if err := protojson.Unmarshal(body, &ev); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		p := phase
		requests[p] = append(requests[p], ev.GetPosition())
		stall := p == 1 && len(delivered[1]) == stallAt
		if !stall {
			delivered[p] = append(delivered[p], ev.GetPosition())
		}
		mu.Unlock()
		if stall {
			close(stalled)
			<-release
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	dir := t.TempDir()
	start := func(n int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSinkHost$", "-test.v")
		cmd.Env = append(os.Environ(), "SINK_TEST_HOST="+dir, "SINK_TEST_URL="+srv.URL, "SINK_TEST_EVENTS="+strconv.Itoa(n))
		cmd.Stdout, cmd.Stderr = testWriterNL{t, "child"}, testWriterNL{t, "child"}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	child := start(events)
	select {
	case <-stalled:
	case <-time.After(60 * time.Second):
		t.Fatal("the sink never got to the stalling event")
	}
	time.Sleep(time.Second)                      // the consumer's state is written
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = child.Wait()
	mu.Lock()
	phase = 2
	mu.Unlock()
	close(release)

	child = start(0)
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	waitFor(t, 90*time.Second, "the rest of the events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered[1])+len(delivered[2]) >= events
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("before the kill: acknowledged %v; after the restart: requests %v", delivered[1], requests[2])
	want := uint64(1)
	for _, p := range append(append([]uint64(nil), delivered[1]...), delivered[2]...) {
		if p != want {
			t.Fatalf("delivered %v then %v: want every position once, in order", delivered[1], delivered[2])
		}
		want++
	}
	if requests[2][0] != stallAt+1 {
		t.Errorf("after the restart the sink started at %d, want %d (the first unacknowledged)", requests[2][0], stallAt+1)
	}
}
