package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// The fault matrix (RELIABILITY.md, "Faults"): one server, one simulated
// camera per fault and a healthy one beside them, all through the real
// server and gRPC. Each subtest breaks its camera and checks what a user
// reads through the API (state, last error, epoch, reconnects, size) and
// that the stream recovers when the fault ends; every subtest also checks
// that the healthy stream kept making windows on time while it ran.

// The fault streams' window and stride, and the cameras' frame rate: a
// window a second, and eight cameras that cost little even under the race
// detector, where converting a frame to the model's input is what costs
// (each camera's stream converts 2 frames a second).
const (
	faultWindow = 4 * time.Second
	faultStride = time.Second
	faultFPS    = 2
)

// faultIngest is the server's ingest configuration in these tests: a read
// timeout short enough for a stall to trip it, long enough that a loaded
// machine does not; backoff short enough to recover within seconds.
var faultIngest = IngestConfig{
	ConnectTimeout: 10 * time.Second,
	ReadTimeout:    3 * time.Second,
	BackoffMin:     100 * time.Millisecond,
	BackoffMax:     800 * time.Millisecond,
}

// healthyGap is the longest a healthy stream may go without a window: ten
// strides, generous for a loaded 2-core machine running the race detector.
const healthyGap = 10 * faultStride

func TestFaults(t *testing.T) {
	t.Parallel()
	const user, pass = "viewer", "right-pass"
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	for _, name := range []string{"healthy", "cam", "lossy", "auth"} {
		if err := sim.AddSceneSequence(name, 160, 120, faultFPS, camsim.Bounce); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.AddMJPEGScene("mjpeg", camsim.Scene{Width: 160, Height: 120, FPS: faultFPS, Duration: 2 * time.Second, Direction: camsim.Right}); err != nil {
		t.Fatal(err)
	}
	sim.SetCredentials(user, pass)
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ts := startServer(t, Config{Ingest: faultIngest})
	ctx := ctxT(t, 6*time.Minute)

	f := &faultRig{ctx: ctx, ts: ts, sim: sim, subs: map[string]*subscriber{}}
	for _, name := range []string{"healthy", "cam", "lossy", "mjpeg", "auth", "dns"} {
		f.subs[name] = subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Streams: []string{name}})
	}
	f.healthy = watchHealthy(f.subs["healthy"])
	add := func(name, url string, transport actiondv1.Transport) {
		t.Helper()
		if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{
			Name: name, Url: url,
			Options: &actiondv1.StreamOptions{Window: dur(faultWindow), Stride: dur(faultStride), Transport: transport},
		}); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
	}
	camera := func(path string) string { return withCredentials(sim.URL(path), user, pass) }
	added := time.Now()
	add("healthy", camera("healthy"), actiondv1.Transport_TRANSPORT_TCP)
	add("cam", camera("cam"), actiondv1.Transport_TRANSPORT_TCP)
	add("mjpeg", camera("mjpeg"), actiondv1.Transport_TRANSPORT_TCP)
	add("lossy", camera("lossy"), actiondv1.Transport_TRANSPORT_UDP)
	add("auth", withCredentials(sim.URL("auth"), user, "wrong-pass"), actiondv1.Transport_TRANSPORT_TCP)
	// A name under .invalid (RFC 6761) never resolves.
	add("dns", "rtsp://"+user+":"+pass+"@camera.invalid:554/stream1", actiondv1.Transport_TRANSPORT_TCP)
	f.healthy.firstWindow(t, 60*time.Second)

	// Each fault in its own subtest. The faults of camera "cam" come one
	// after the other (converting frames is what costs, under the race
	// detector, so only three cameras send video); the others run beside
	// them, from goroutines rather than t.Parallel, which -parallel
	// (GOMAXPROCS) would run two at a time.
	faults := []struct {
		name string
		run  func(*testing.T)
	}{
		{"camera cam", func(t *testing.T) {
			t.Run("connection dropped", func(t *testing.T) { f.dropped(t, "cam") })
			t.Run("stall with the connection open", func(t *testing.T) { f.stall(t, "cam") })
			t.Run("restart with timestamps at zero", func(t *testing.T) { f.restart(t, "cam") })
			t.Run("resolution change", func(t *testing.T) { f.resolution(t, "cam") })
		}},
		{"5% packet loss over UDP", f.packetLoss},
		{"unsupported codec", func(t *testing.T) { f.refused(t, "mjpeg", added, "unsupported codec: the stream offers M-JPEG") }},
		{"wrong credentials", func(t *testing.T) { f.refused(t, "auth", added, "unauthorized: the camera refused the credentials") }},
		{"name does not resolve", func(t *testing.T) { f.refused(t, "dns", added, "lookup camera.invalid", "no such host") }},
	}
	var wg sync.WaitGroup
	for _, fault := range faults {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(fault.name, fault.run)
		}()
	}
	wg.Wait()

	// The healthy stream, over the whole test: every event numbered
	// without a hole, windows in stride, all in its first epoch, never a
	// reconnect.
	f.healthy.check(t, time.Time{}, time.Now())
	st := f.status(t, "healthy")
	if st.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || st.GetReconnectCount() != 0 || st.GetEpoch() != 1 {
		t.Errorf("healthy stream at the end: %v", st)
	}
}

// faultRig is what the fault subtests share.
type faultRig struct {
	ctx     context.Context
	ts      *testServer
	sim     *camsim.Simulator
	subs    map[string]*subscriber // one per stream
	healthy *healthyWatch
}

// status returns the stream's status as GetStream gives it.
func (f *faultRig) status(t *testing.T, name string) *actiondv1.StreamStatus {
	t.Helper()
	r, err := f.ts.streams.GetStream(f.ctx, &actiondv1.GetStreamRequest{Name: name})
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return r.GetStream().GetStatus()
}

// waitWindow reads the stream's events up to a window that ok accepts.
func (f *faultRig) waitWindow(t *testing.T, name string, d time.Duration, ok func(*actiondv1.WindowResult) bool) (*actiondv1.WindowResult, []*actiondv1.Event) {
	t.Helper()
	var w *actiondv1.WindowResult
	s := *f.subs[name] // shares the events; fails t, the subtest, not the test that subscribed
	s.t = t
	evs := s.until(d, func(ev *actiondv1.Event) bool {
		w = ev.GetWindowResult()
		return w != nil && ok(w)
	})
	return w, evs
}

func anyWindow(*actiondv1.WindowResult) bool { return true }

// statusEvents returns the StreamStatus events among evs.
func statusEvents(evs []*actiondv1.Event) []*actiondv1.StreamStatus {
	var out []*actiondv1.StreamStatus
	for _, ev := range evs {
		if st := ev.GetStreamStatus(); st != nil {
			out = append(out, st)
		}
	}
	return out
}

// The camera drops the connection: the stream goes RETRYING with an error
// that says the camera closed it, reconnects and makes windows of a new
// epoch.
func (f *faultRig) dropped(t *testing.T, name string) {
	last, _ := f.waitWindow(t, name, 60*time.Second, anyWindow)
	from := time.Now()
	if err := f.sim.DropConnections(name); err != nil {
		t.Fatal(err)
	}
	w, evs := f.waitWindow(t, name, 60*time.Second, func(w *actiondv1.WindowResult) bool { return w.GetEpoch() > last.GetEpoch() })
	var lost *actiondv1.StreamStatus
	for _, st := range statusEvents(evs) {
		if st.GetState() == actiondv1.StreamState_STREAM_STATE_RETRYING && lost == nil {
			lost = st
		}
	}
	t.Logf("after the drop:\n%s", describeEvents(evs))
	if lost == nil || !strings.Contains(lost.GetLastError(), "the camera closed the connection") {
		t.Errorf("no RETRYING status saying the camera closed the connection: %v", lost)
	}
	if w.GetMediaStart().AsDuration() < last.GetMediaEnd().AsDuration() {
		t.Errorf("window after the reconnect %v starts before the last one ended (%v)", w.GetMediaStart().AsDuration(), last.GetMediaEnd().AsDuration())
	}
	st := f.status(t, name)
	if st.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || st.GetReconnectCount() < 1 || st.GetEpochReason() != "reconnected" {
		t.Errorf("after the drop: %v, want PLAYING, a reconnect counted, a new epoch", st)
	}
	f.healthy.check(t, from, time.Now())
}

// The camera stalls with the connection open: after the read timeout the
// stream is RETRYING ("read timeout: no video for ..."), and once the
// camera sends again windows come back.
func (f *faultRig) stall(t *testing.T, name string) {
	last, _ := f.waitWindow(t, name, 60*time.Second, anyWindow)
	from := time.Now()
	const stall = 6 * time.Second
	if err := f.sim.Stall(name, stall); err != nil {
		t.Fatal(err)
	}
	w, evs := f.waitWindow(t, name, stall+60*time.Second, func(w *actiondv1.WindowResult) bool { return w.GetEpoch() > last.GetEpoch() })
	t.Logf("after the stall:\n%s", describeEvents(evs))
	var timedOut bool
	for _, st := range statusEvents(evs) {
		if st.GetState() == actiondv1.StreamState_STREAM_STATE_RETRYING {
			timedOut = timedOut || strings.Contains(st.GetLastError(), ": read timeout: ")
		}
	}
	if !timedOut {
		t.Error("no RETRYING status with a read timeout")
	}
	if time.Since(from) < stall {
		t.Errorf("a window of epoch %d came %v into a %v stall", w.GetEpoch(), time.Since(from), stall)
	}
	if st := f.status(t, name); st.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING {
		t.Errorf("after the stall: %v", st)
	}
	f.healthy.check(t, from, time.Now())
}

// The camera restarts with its clock back at zero (the connection stays):
// the stream starts a new epoch, says why, and windows go on from where
// media time was, without a reconnect.
func (f *faultRig) restart(t *testing.T, name string) {
	last, _ := f.waitWindow(t, name, 60*time.Second, anyWindow)
	before := f.status(t, name)
	from := time.Now()
	if err := f.sim.JumpTimestamps(name, 0); err != nil {
		t.Fatal(err)
	}
	w, evs := f.waitWindow(t, name, 60*time.Second, func(w *actiondv1.WindowResult) bool { return w.GetEpoch() > last.GetEpoch() })
	t.Logf("after the jump:\n%s", describeEvents(evs))
	var reason string
	for _, st := range statusEvents(evs) {
		if st.GetEpoch() == w.GetEpoch() {
			reason = st.GetEpochReason()
		}
	}
	if !strings.HasPrefix(reason, "timestamp jumped back") {
		t.Errorf("epoch %d began because %q, want a jump back", w.GetEpoch(), reason)
	}
	if w.GetMediaStart().AsDuration() < last.GetMediaEnd().AsDuration() || w.GetMediaEnd().AsDuration()-w.GetMediaStart().AsDuration() != faultWindow {
		t.Errorf("window after the jump %s, the last before it ended at %v", describeEvent(evs[len(evs)-1]), last.GetMediaEnd().AsDuration())
	}
	st := f.status(t, name)
	if st.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || st.GetReconnectCount() != before.GetReconnectCount() || st.GetEpoch() != w.GetEpoch() {
		t.Errorf("after the jump: %v, want PLAYING in epoch %d without a reconnect", st, w.GetEpoch())
	}
	f.healthy.check(t, from, time.Now())
}

// 5% of the RTP packets lost over UDP: the stream stays connected, counts
// the lost packets, and windows keep coming.
func (f *faultRig) packetLoss(t *testing.T) {
	f.waitWindow(t, "lossy", 60*time.Second, anyWindow)
	before := f.status(t, "lossy")
	if before.GetTransport() != actiondv1.Transport_TRANSPORT_UDP {
		t.Fatalf("transport %v, want UDP", before.GetTransport())
	}
	from := time.Now()
	if err := f.sim.SetPacketLoss("lossy", 0.05); err != nil {
		t.Fatal(err)
	}
	// At least six windows, and until the loss has shown: at 2 fps the
	// camera sends about ten packets a second, so 5% of them takes a while.
	var wins []*actiondv1.WindowResult
	_, evs := f.waitWindow(t, "lossy", 90*time.Second, func(w *actiondv1.WindowResult) bool {
		wins = append(wins, w)
		return len(wins) >= 6 && f.sim.Stats("lossy").PacketsDropped >= 3 && f.status(t, "lossy").GetPacketsLost() > before.GetPacketsLost()
	})
	if err := f.sim.SetPacketLoss("lossy", 0); err != nil {
		t.Fatal(err)
	}
	st := f.status(t, "lossy")
	sent := f.sim.Stats("lossy")
	t.Logf("during the loss:\n%s\nstatus %v\nsimulator: %+v", describeEvents(evs), st, sent)
	if sent.PacketsDropped == 0 || st.GetPacketsLost() == before.GetPacketsLost() {
		t.Errorf("simulator dropped %d packets, stream counted %d lost (%d before)", sent.PacketsDropped, st.GetPacketsLost(), before.GetPacketsLost())
	}
	if st.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING || st.GetReconnectCount() != 0 || st.GetTransport() != actiondv1.Transport_TRANSPORT_UDP {
		t.Errorf("during the loss: %v, want PLAYING over UDP without a reconnect", st)
	}
	f.healthy.check(t, from, time.Now())
}

// The camera's resolution changes mid-stream: the status shows the new
// size, and windows keep coming in the same epoch, without a reconnect.
func (f *faultRig) resolution(t *testing.T, name string) {
	last, _ := f.waitWindow(t, name, 60*time.Second, anyWindow)
	before := f.status(t, name)
	if before.GetWidth() != 160 || before.GetHeight() != 120 {
		t.Fatalf("before: %dx%d, want 160x120", before.GetWidth(), before.GetHeight())
	}
	from := time.Now()
	if err := f.sim.SwitchSceneSequence(name, 240, 176, faultFPS, camsim.Bounce); err != nil {
		t.Fatal(err)
	}
	// Generous: on a loaded machine the decoder may be tens of seconds
	// behind the network (its queue holds 64 access units, 32 s at 2 fps).
	deadline := time.Now().Add(90 * time.Second)
	var st *actiondv1.StreamStatus
	for st = f.status(t, name); st.GetWidth() != 240; st = f.status(t, name) {
		if time.Now().After(deadline) {
			t.Fatalf("not at the new size within 90s: %v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resized := st.GetWindowCount()
	w, evs := f.waitWindow(t, name, 60*time.Second, func(*actiondv1.WindowResult) bool {
		return f.status(t, name).GetWindowCount() >= resized+3
	})
	t.Logf("after the switch:\n%s", describeEvents(evs))
	st = f.status(t, name)
	if st.GetWidth() != 240 || st.GetHeight() != 176 || st.GetState() != actiondv1.StreamState_STREAM_STATE_PLAYING ||
		st.GetReconnectCount() != before.GetReconnectCount() || st.GetEpoch() != last.GetEpoch() || st.GetDecodeErrors() != before.GetDecodeErrors() {
		t.Errorf("after the switch: %v, want 240x176, PLAYING in epoch %d without a reconnect or decode error", st, last.GetEpoch())
	}
	if w.GetEpoch() != last.GetEpoch() || w.GetMediaStart().AsDuration() <= last.GetMediaStart().AsDuration() {
		t.Errorf("window after the switch %v, before %v", w, last)
	}
	f.healthy.check(t, from, time.Now())
}

// A camera that cannot be played (wrong codec, wrong password, a host
// name that does not resolve): the stream is RETRYING with an error that
// says what is wrong, and it backs off: over a few seconds it tries about
// as often as the exponential backoff allows, not more (the simulator
// counts the attempts with wrong credentials itself).
func (f *faultRig) refused(t *testing.T, name string, added time.Time, want ...string) {
	from := time.Now()
	const period = 6 * time.Second
	time.Sleep(time.Until(added.Add(period)))
	evs := f.subs[name].pending()
	st := f.status(t, name)
	elapsed := time.Since(added)
	var authFailures uint64
	if name == "auth" {
		authFailures = f.sim.Stats("auth").AuthFailures
	}
	t.Logf("%v: %d attempts (%d refused by the simulator)\n%s", elapsed.Round(time.Millisecond), st.GetReconnectCount()+1, authFailures, describeEvents(evs))
	for _, w := range want {
		if !strings.Contains(st.GetLastError(), w) {
			t.Errorf("last error %q lacks %q", st.GetLastError(), w)
		}
	}
	if strings.Contains(st.GetLastError(), "right-pass") || strings.Contains(st.GetLastError(), "wrong-pass") {
		t.Errorf("last error %q shows the credentials", st.GetLastError())
	}
	if st.GetState() != actiondv1.StreamState_STREAM_STATE_RETRYING && st.GetState() != actiondv1.StreamState_STREAM_STATE_CONNECTING {
		t.Errorf("state %v", st.GetState())
	}
	if st.GetFramesDecoded() != 0 || st.GetWindowCount() != 0 {
		t.Errorf("%d frames decoded, %d windows", st.GetFramesDecoded(), st.GetWindowCount())
	}
	// Each wait is drawn at random up to its bound (backoff): the status
	// says when the next attempt comes, never later than the bound.
	retrying := 0
	for _, s := range statusEvents(evs) {
		if s.GetState() != actiondv1.StreamState_STREAM_STATE_RETRYING {
			continue
		}
		retrying++
		wait := s.GetNextAttempt().AsTime().Sub(s.GetSince().AsTime())
		if bound := backoffBound(int(s.GetReconnectCount())); wait < 0 || wait > bound+time.Millisecond {
			t.Errorf("after attempt %d: next in %v, want at most %v", s.GetReconnectCount()+1, wait, bound)
		}
	}
	attempts := st.GetReconnectCount() + 1
	if most := maxAttempts(elapsed); retrying < 3 || attempts > most {
		t.Errorf("%d attempts in %v (%d RETRYING statuses): want 3 to %d", attempts, elapsed.Round(time.Millisecond), retrying, most)
	}
	if name == "auth" && (authFailures+1 < attempts || authFailures > attempts+1) {
		t.Errorf("the simulator refused %d attempts, the stream counts %d", authFailures, attempts)
	}
	f.healthy.check(t, from, time.Now())
}

// backoffBound is the longest wait after the n-th failure in a row
// (from 0) with faultIngest: doubling from BackoffMin up to BackoffMax.
func backoffBound(n int) time.Duration {
	return min(faultIngest.BackoffMax, faultIngest.BackoffMin<<min(n, 20))
}

// maxAttempts is the most connection attempts a stream with faultIngest's
// backoff may make in d. Waits are uniform up to their bound (full
// jitter), so on average half of it; allowing them to average a quarter
// leaves a margin that random draws practically never cross (for tens of
// waits, several standard deviations), while a stream without backoff
// would make hundreds.
func maxAttempts(d time.Duration) uint64 {
	var sum time.Duration
	n := 0
	for sum <= d {
		sum += backoffBound(n) / 4
		n++
	}
	return uint64(n + 1)
}

// healthyWatch records the healthy stream's events as they arrive.
type healthyWatch struct {
	mu     sync.Mutex
	events []*actiondv1.Event
	at     []time.Time
	first  chan struct{} // closed at the first window
}

func watchHealthy(s *subscriber) *healthyWatch {
	h := &healthyWatch{first: make(chan struct{})}
	go func() {
		var once sync.Once
		for ev := range s.events {
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.at = append(h.at, time.Now())
			h.mu.Unlock()
			if ev.GetWindowResult() != nil {
				once.Do(func() { close(h.first) })
			}
		}
	}()
	return h
}

func (h *healthyWatch) firstWindow(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-h.first:
	case <-time.After(d):
		t.Fatalf("the healthy stream made no window within %v", d)
	}
}

// check waits until the healthy stream has a window after to (bounded),
// then checks its events from..to: numbered without a hole, windows whole
// strides apart in media time in epoch 1, none later than healthyGap after
// the one before (the zero from: since the first).
func (h *healthyWatch) check(t *testing.T, from, to time.Time) {
	t.Helper()
	deadline := time.Now().Add(healthyGap + 10*time.Second)
	for {
		h.mu.Lock()
		n := len(h.at)
		past := n > 0 && h.at[n-1].After(to) && h.events[n-1].GetWindowResult() != nil
		h.mu.Unlock()
		if past {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the healthy stream made no window after the fault")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var (
		lastWin  *actiondv1.WindowResult
		lastAt   time.Time
		problems []string
		dropped  int
	)
	for i, ev := range h.events {
		if ev.GetSequence() != uint64(i+1) {
			problems = append(problems, fmt.Sprintf("event %d is #%d", i+1, ev.GetSequence()))
			break
		}
		w := ev.GetWindowResult()
		if w == nil {
			continue
		}
		at := h.at[i]
		if at.Before(from) {
			lastWin, lastAt = w, at
			continue
		}
		if w.GetEpoch() != 1 {
			problems = append(problems, describeEvent(ev)+": not epoch 1")
		}
		if lastWin != nil {
			// Windows dropped because inference fell behind (a
			// loaded machine) leave whole strides out; nothing else may.
			if d := w.GetMediaEnd().AsDuration() - lastWin.GetMediaEnd().AsDuration(); d <= 0 || d%faultStride != 0 {
				problems = append(problems, fmt.Sprintf("%s: %v after the last window, want a multiple of %v", describeEvent(ev), d, faultStride))
			} else if d > faultStride {
				dropped += int(d/faultStride) - 1
			}
			if gap := at.Sub(lastAt); gap > healthyGap {
				problems = append(problems, fmt.Sprintf("%s: came %v after the last window, want at most %v", describeEvent(ev), gap.Round(time.Millisecond), healthyGap))
			}
		}
		lastWin, lastAt = w, at
		if at.After(to) {
			break
		}
	}
	if len(problems) > 0 {
		t.Errorf("the healthy stream during the fault:\n%s", strings.Join(problems, "\n"))
	}
	if dropped > 0 {
		t.Logf("the healthy stream dropped %d windows (inference behind)", dropped)
	}
}

// pending returns the events that have arrived and not been read yet.
func (s *subscriber) pending() []*actiondv1.Event {
	var evs []*actiondv1.Event
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}
