package server

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/procstat"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// Load figures of the process: what a leak would make grow.
type processFigures struct {
	goroutines int
	fds        int
	rssKiB     int64
	heapKiB    int64 // Go's heap in use: RSS less this is the rest (C, stacks, the race detector)
}

func (f processFigures) String() string {
	return fmt.Sprintf("goroutines %d, open fds %d, RSS %.1f MiB (Go heap %.1f MiB)", f.goroutines, f.fds,
		float64(f.rssKiB)/1024, float64(f.heapKiB)/1024)
}

// measure returns the process's figures after a garbage collection that
// hands freed memory back to the system.
func measure(t *testing.T) processFigures {
	t.Helper()
	debug.FreeOSMemory()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f := processFigures{goroutines: runtime.NumGoroutine(), fds: len(fds), heapKiB: int64(ms.HeapInuse >> 10)}
	rss, err := procstat.RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f.rssKiB = rss >> 10
	return f
}

// loadSubscriber is one Subscribe call of the load test that checks, as
// events come, that every stream's events are numbered 1, 2, 3 … without a
// hole and end with STOPPED.
type loadSubscriber struct {
	last    map[string]uint64 // stream → last sequence seen
	stopped int               // streams seen to their STOPPED
	events  int
	bad     error // the first thing wrong
	done    chan struct{}
}

func (s *loadSubscriber) run(stream grpc.ServerStreamingClient[actiondv1.SubscribeResponse], want int) {
	defer close(s.done)
	for s.stopped < want {
		r, err := stream.Recv()
		if err != nil {
			s.bad = fmt.Errorf("after %d events: %w", s.events, err)
			return
		}
		ev := r.GetEvent()
		s.events++
		name, seq := ev.GetStream(), ev.GetSequence()
		switch {
		case ev.GetDropped() != nil:
			s.bad = fmt.Errorf("event %d: dropped %d", s.events, ev.GetDropped().GetCount())
		case seq != s.last[name]+1:
			s.bad = fmt.Errorf("event %d: %s after #%d", s.events, describeEvent(ev), s.last[name])
		case seq == 1 && ev.GetStreamStatus() == nil:
			s.bad = fmt.Errorf("event %d: %s, want a status first", s.events, describeEvent(ev))
		}
		if s.bad != nil {
			return
		}
		s.last[name] = seq
		if ev.GetStreamStatus().GetState() == actiondv1.StreamState_STREAM_STATE_STOPPED {
			s.stopped++
		}
	}
}

// 1,000 AddStream/RemoveStream cycles through the API while 200 clients
// subscribe to everything and one more subscribes and never reads. Every
// reading subscriber gets every event of every stream, numbered without a
// hole; the one that does not read loses its oldest events and, once it
// reads, is told how many; afterwards goroutines, open files and memory
// are back where they started. Not parallel: it counts goroutines and
// files of the whole process.
func TestLoadAddRemoveManySubscribers(t *testing.T) {
	const (
		cycles      = 1000
		workers     = 4   // clients adding and removing at once
		subscribers = 200 // reading every event
		conns       = 20  // client connections the subscribers share
	)
	sim, _ := startCamera(t, "", "")
	ts := startServer(t, Config{
		MaxStreams:  workers,
		Subscribers: SubscribersConfig{QueueSize: 256, MaxSubscribers: subscribers + 1},
		Ingest:      IngestConfig{BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond},
	})
	ctx := ctxT(t, 5*time.Minute)
	// The test's own client connection is up before the baseline.
	if _, err := ts.streams.ListStreams(ctx, &actiondv1.ListStreamsRequest{}); err != nil {
		t.Fatal(err)
	}
	before := measure(t)
	t.Logf("before: %v", before)

	// The subscribers, on their own connections.
	subCtx, cancelSubs := context.WithCancel(ctx)
	defer cancelSubs()
	var clientConns []*grpc.ClientConn
	closeConns := func() {
		for _, c := range clientConns {
			c.Close()
		}
		clientConns = nil
	}
	defer closeConns()
	for range conns {
		c, err := grpc.NewClient(ts.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		clientConns = append(clientConns, c)
	}
	// The first ten follow every stream; each of the others follows a
	// tenth of them, by name (on two cores with the race detector, 200
	// subscribers of everything would make the test take minutes).
	subs := make([]*loadSubscriber, subscribers)
	for i := range subs {
		req := &actiondv1.SubscribeRequest{}
		if i >= 10 {
			for n := i % 10; n < cycles; n += 10 {
				req.Streams = append(req.Streams, loadStream(n))
			}
		}
		stream, err := actiondv1.NewRecognitionServiceClient(clientConns[i%conns]).Subscribe(subCtx, req)
		if err == nil {
			_, err = stream.Header()
		}
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		subs[i] = &loadSubscriber{last: map[string]uint64{}, done: make(chan struct{})}
		want := cycles
		if len(req.Streams) > 0 {
			want = len(req.Streams)
		}
		go subs[i].run(stream, want)
	}
	// The one that does not read: a flow-control window of 64 KiB that is
	// never opened further, so the server's sends to it stop after some
	// 128 KiB and its queue of 256 fills.
	stuckConn, err := newClientConn(ts.Addr(), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	clientConns = append(clientConns, stuckConn)
	stuck, err := actiondv1.NewRecognitionServiceClient(stuckConn).Subscribe(subCtx, &actiondv1.SubscribeRequest{})
	if err == nil {
		_, err = stuck.Header()
	}
	if err != nil {
		t.Fatal(err)
	}
	// The limit is reached: one more is refused, clearly.
	over, err := ts.recog.Subscribe(subCtx, &actiondv1.SubscribeRequest{})
	if err == nil {
		_, err = over.Recv()
	}
	wantCode(t, "subscriber over the limit", err, codes.ResourceExhausted, "subscriber limit reached", "subscribers.max_subscribers")

	// The cycles: most streams point at a port where nobody listens (the
	// stream connects, is refused, retries), every tenth at the simulated
	// camera (a real RTSP session, torn down wherever it got to), every
	// fifth is disabled.
	start := time.Now()
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < cycles; i += workers {
				name := loadStream(i)
				req := &actiondv1.AddStreamRequest{Name: name, Url: "rtsp://127.0.0.1:1/" + name,
					Options: &actiondv1.StreamOptions{Transport: actiondv1.Transport_TRANSPORT_TCP}}
				switch {
				case i%10 == 0:
					req.Url = sim.URL("bounce")
				case i%5 == 0:
					req.Options.Enabled = ptr(false)
				}
				if _, err := ts.streams.AddStream(ctx, req); err != nil {
					errs <- fmt.Errorf("add %s: %w", name, err)
					return
				}
				if _, err := ts.streams.RemoveStream(ctx, &actiondv1.RemoveStreamRequest{Name: name}); err != nil {
					errs <- fmt.Errorf("remove %s: %w", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	took := time.Since(start)

	// Every reading subscriber gets every stream it follows to its end,
	// and the same events as the others that follow the same streams.
	events, delivered := 0, 0
	for i, s := range subs {
		select {
		case <-s.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("subscriber %d: %d streams ended within 60s of the last cycle", i, s.stopped)
		}
		if s.bad != nil {
			t.Fatalf("subscriber %d: %v", i, s.bad)
		}
		delivered += s.events
		switch {
		case i == 0:
			events = s.events
		case i < 10 && s.events != events, i >= 10 && s.events != subs[10+i%10].events:
			t.Errorf("subscriber %d got %d events, unlike the others that follow the same streams", i, s.events)
		}
	}
	t.Logf("%d add/remove cycles in %v with %d subscribers: %d events in all, %d delivered", cycles, took.Round(time.Millisecond),
		subscribers, events, delivered)

	// The one that did not read reads now: the events it gets and those
	// it is told were dropped add up to every event, and in each stream
	// the hole in the numbers is what the Dropped before it said.
	var got, lost, told uint64
	last := map[string]uint64{}
	stoppedSeen := 0
	for stoppedSeen < cycles && got+lost < uint64(events) {
		r, err := stuck.Recv()
		if err != nil {
			t.Fatalf("the subscriber that did not read: after %d events: %v", got, err)
		}
		ev := r.GetEvent()
		if d := ev.GetDropped(); d != nil {
			lost += d.GetCount()
			told += d.GetCount()
			continue
		}
		got++
		gap := ev.GetSequence() - last[ev.GetStream()] - 1
		if gap > told {
			t.Fatalf("%s after #%d: %d missing, but only %d said dropped", describeEvent(ev), last[ev.GetStream()], gap, told)
		}
		told -= gap
		last[ev.GetStream()] = ev.GetSequence()
		if ev.GetStreamStatus().GetState() == actiondv1.StreamState_STREAM_STATE_STOPPED {
			stoppedSeen++
		}
	}
	t.Logf("the subscriber that did not read got %d events and was told %d were dropped", got, lost)
	if lost == 0 || got+lost != uint64(events) {
		t.Errorf("the subscriber that did not read: %d events + %d dropped, want %d in all, some dropped", got, lost, events)
	}

	// Everything goes: the subscriptions end, the connections close.
	cancelSubs()
	closeConns()
	var after processFigures
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = measure(t)
		if after.goroutines <= before.goroutines+2 && after.fds <= before.fds+2 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("after:  %v", after)
	t.Logf("change: goroutines %+d, open fds %+d, RSS %+.1f MiB", after.goroutines-before.goroutines, after.fds-before.fds,
		float64(after.rssKiB-before.rssKiB)/1024)
	if d := after.goroutines - before.goroutines; d > 2 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines more than before:\n%s", d, buf[:runtime.Stack(buf, true)])
	}
	if d := after.fds - before.fds; d > 2 {
		t.Errorf("%d open files more than before", d)
	}
	// Go's heap is the test's own measure of what the server keeps; RSS
	// adds the decoders' C memory and, under the race detector, the
	// detector's, which grows with every goroutine the test made (some
	// 300 MiB here) and is never handed back.
	if d := after.heapKiB - before.heapKiB; d > 64<<10 {
		t.Errorf("Go's heap grew by %d MiB, more than 64 MiB", d>>10)
	}
	rssBound := int64(64 << 10)
	if raceEnabled {
		rssBound = 512 << 10
	}
	if d := after.rssKiB - before.rssKiB; d > rssBound {
		t.Errorf("RSS grew by %d MiB, more than %d MiB", d>>10, rssBound>>10)
	}
	if list := listAll(t, ctx, ts); len(list) != 0 {
		t.Errorf("%d streams left", len(list))
	}
}

func loadStream(i int) string { return fmt.Sprintf("load-%04d", i) }
