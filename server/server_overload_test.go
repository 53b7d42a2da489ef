package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest/camsim"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// blockModel makes every model run of ts wait until the test ends (or
// release is closed): the model looks saturated. It returns a channel that
// gets a value when a run starts.
func blockModel(t *testing.T, ts *testServer) (started <-chan []inferenceJob, release chan struct{}) {
	t.Helper()
	c := ts.core.Load()
	runs := make(chan []inferenceJob, 1024)
	release = make(chan struct{})
	c.sched.beforeRun = func(b []inferenceJob) {
		runs <- b
		<-release
	}
	return runs, release
}

// With the model saturated (its run blocked), AddStream, UpdateStream,
// RemoveStream and ListStreams still answer: a stream's goroutine never
// waits for the model. Each stream keeps only its latest window, skipping
// and counting the others, and the windows' tensors stay few. The calls'
// deadlines only catch hangs.
func TestControlCallsAnswerWithTheModelBlocked(t *testing.T) {
	t.Parallel()
	sim, _ := startCamera(t, "", "")
	ts := startServer(t, Config{MetricsListen: "127.0.0.1:0"})
	started, release := blockModel(t, ts)
	var released bool
	t.Cleanup(func() {
		if !released {
			close(release)
		}
	})
	ctx := ctxT(t, 120*time.Second)
	results := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}})
	opts := func() *actiondv1.StreamOptions {
		return &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceWindow / 16), Transport: actiondv1.Transport_TRANSPORT_TCP}
	}
	for _, name := range []string{"a", "b", "c"} {
		if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: name, Url: sim.URL("bounce"), Options: opts()}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("no model run started")
	}
	// Every stream makes windows while the model is blocked: all but the
	// latest are skipped.
	skipped := func(name string) (*actiondv1.StreamStatus, error) {
		s, err := ts.streams.GetStream(ctx, &actiondv1.GetStreamRequest{Name: name})
		return s.GetStream().GetStatus(), err
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range []string{"a", "b", "c"} {
		for {
			st, err := skipped(name)
			if err != nil {
				t.Fatal(err)
			}
			if st.GetSkippedWindows() >= 4 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s: %d windows skipped with the model blocked, want 4 or more (status %v)", name, st.GetSkippedWindows(), st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The control calls answer, each within its own deadline.
	short := func() context.Context { return ctxT(t, 15*time.Second) }
	if _, err := ts.streams.UpdateStream(short(), &actiondv1.UpdateStreamRequest{Name: "a", Options: &actiondv1.StreamOptions{TopK: ptr(uint32(3))}}); err != nil {
		t.Errorf("UpdateStream (top_k) with the model blocked: %v", err)
	}
	if _, err := ts.streams.UpdateStream(short(), &actiondv1.UpdateStreamRequest{Name: "b", Options: &actiondv1.StreamOptions{Stride: dur(camsim.BounceWindow / 8)}}); err != nil {
		t.Errorf("UpdateStream (stride: a new connection) with the model blocked: %v", err)
	}
	if _, err := ts.streams.UpdateStream(short(), &actiondv1.UpdateStreamRequest{Name: "c", Options: &actiondv1.StreamOptions{Enabled: ptr(false)}}); err != nil {
		t.Errorf("UpdateStream (disable) with the model blocked: %v", err)
	}
	if _, err := ts.streams.RemoveStream(short(), &actiondv1.RemoveStreamRequest{Name: "a"}); err != nil {
		t.Errorf("RemoveStream with the model blocked: %v", err)
	}
	if _, err := ts.streams.AddStream(short(), &actiondv1.AddStreamRequest{Name: "d", Url: sim.URL("bounce"), Options: opts()}); err != nil {
		t.Errorf("AddStream with the model blocked: %v", err)
	}
	if l, err := ts.streams.ListStreams(short(), &actiondv1.ListStreamsRequest{}); err != nil || len(l.GetStreams()) != 3 {
		t.Errorf("ListStreams with the model blocked: %d streams, %v; want b, c and d", len(l.GetStreams()), err)
	}

	// Memory: one waiting window per stream, whatever the number of
	// windows made.
	var made uint64
	for _, name := range []string{"b", "c", "d"} {
		st, _ := skipped(name)
		made += st.GetWindowCount()
	}
	pool := ts.core.Load().pool.Stats()
	t.Logf("%d windows made with the model blocked; tensor pool %+v", made, pool)
	if pool.Allocated > 3*4 {
		t.Errorf("the pool made %d window tensors for 4 streams, want at most 12: memory must not grow with the windows waiting", pool.Allocated)
	}

	if !strings.Contains(ts.logs.String(), "windows skipped: model busy") {
		t.Errorf("the log does not say that windows were skipped because the model was busy")
	}

	// The skipped windows are in the metrics.
	resp, err := http.Get("http://" + ts.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{
		`actiond_stream_skipped_windows_total\{stream="b"\} [1-9]`,
		`actiond_stream_effective_stride_seconds\{stream="b"\} `,
		`actiond_inference_runs_in_flight 1`,
	} {
		if !regexp.MustCompile(re).MatchString(string(body)) {
			t.Errorf("metrics lack %s", re)
		}
	}

	// Unblocked, the streams get results again; a skipped window never
	// gives one.
	close(release)
	released = true
	got := map[string]int{}
	results.until(60*time.Second, func(ev *actiondv1.Event) bool {
		got[ev.GetStream()]++
		return got["b"] >= 2 && got["d"] >= 2
	})
	for _, name := range []string{"b", "d"} {
		st, err := skipped(name)
		if err != nil {
			t.Fatal(err)
		}
		if served := uint64(got[name]); served+st.GetSkippedWindows() > st.GetWindowCount() {
			t.Errorf("stream %s: %d results and %d skipped of %d windows made: a skipped window gave a result", name, served, st.GetSkippedWindows(), st.GetWindowCount())
		}
		if st.GetEffectiveStride() == nil {
			t.Errorf("stream %s: no effective_stride after %d results", name, got[name])
		}
	}
}

// skip_static: the windows of a still scene reuse the last result (reused:
// true, the model does not run for them); those of a moving scene all run.
// Two engine sessions (inference.sessions) serve the two streams.
func TestSkipStaticReusesTheLastResult(t *testing.T) {
	t.Parallel()
	sim := camsim.NewSimulator(camsim.SimulatorConfig{Listen: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err := sim.AddSceneSequence("bounce", 160, 120, 12, camsim.Bounce); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddSceneSequence("still", 160, 120, 12, []camsim.SceneSegment{{Direction: camsim.Still, Duration: 8 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	ts := startServer(t, Config{Inference: InferenceConfig{Threads: 2, Sessions: 2}})
	if !strings.Contains(ts.logs.String(), "sessions=2 threads_per_session=1") {
		t.Errorf("the log does not say 2 sessions of 1 thread")
	}
	ctx := ctxT(t, 120*time.Second)
	results := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}})
	for name, path := range map[string]string{"quiet": "still", "busy": "bounce"} {
		added, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: name, Url: sim.URL(path), Options: &actiondv1.StreamOptions{
			Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceWindow / 8), Transport: actiondv1.Transport_TRANSPORT_TCP, SkipStatic: ptr(true),
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !added.GetStream().GetOptions().GetSkipStatic() {
			t.Errorf("stream %s: options %v, want skip_static", name, added.GetStream().GetOptions())
		}
	}
	type tally struct{ ran, reused int }
	got := map[string]*tally{"quiet": {}, "busy": {}}
	evs := results.until(90*time.Second, func(ev *actiondv1.Event) bool {
		w := ev.GetWindowResult()
		tl := got[ev.GetStream()]
		if w.GetReused() {
			tl.reused++
			if ev.GetStream() == "quiet" && w.GetTop()[0].GetLabel() != "still" {
				t.Errorf("reused window of the still scene says %s", w.GetTop()[0].GetLabel())
			}
		} else {
			tl.ran++
		}
		return got["quiet"].ran+got["quiet"].reused >= 8 && got["busy"].ran >= 8
	})
	runs, _ := histogram(t, ts.metrics, "actiond_inference_batch_size")
	t.Logf("still scene: %d run, %d reused; moving scene: %d run, %d reused; %d model runs",
		got["quiet"].ran, got["quiet"].reused, got["busy"].ran, got["busy"].reused, runs)
	if got["quiet"].reused < 5 {
		t.Errorf("still scene: %d of %d windows reused, want most\n%s", got["quiet"].reused, got["quiet"].ran+got["quiet"].reused, describeEvents(evs))
	}
	if got["busy"].reused != 0 {
		t.Errorf("moving scene: %d windows reused, want none", got["busy"].reused)
	}
	// The model ran for the windows that say so (and at most one window
	// per stream whose result is still on its way), not for the reused.
	if ran := uint64(got["quiet"].ran + got["busy"].ran); runs < ran || runs > ran+2 {
		t.Errorf("%d model runs for %d windows run, %d reused", runs, ran, got["quiet"].reused)
	}
}
