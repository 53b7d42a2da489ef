package server

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models/motion"
)

// motionClip is a window tensor [16,3,224,224] of a dark picture with a
// bright square that moves dx pixels per frame (0: still).
func motionClip(dx int) []float32 {
	const t, c, s = 16, 3, 224
	man := motion.Manifest()
	clip := make([]float32, t*c*s*s)
	for f := range t {
		x0 := 100 + dx*(f-t/2)
		for ch := range c {
			dark, bright := (0-man.Mean[ch])/man.Std[ch], (1-man.Mean[ch])/man.Std[ch]
			plane := clip[(f*c+ch)*s*s : (f*c+ch+1)*s*s]
			for i := range plane {
				plane[i] = dark
			}
			for y := 100; y < 124; y++ {
				for x := x0; x < x0+24; x++ {
					plane[y*s+x] = bright
				}
			}
		}
	}
	return clip
}

// The scheduler runs the windows of several streams as one batch through
// the model, at most max_batch at a time, and gives each stream its own
// window's scores; fewer windows than max_batch run after max_wait. The
// windows are all handed over before the scheduler starts, so the batches
// do not depend on how fast the test goroutine runs.
func TestSchedulerBatchesAcrossStreams(t *testing.T) {
	t.Parallel()
	sess, err := engine.Open(motionModel, engine.Options{Threads: 1})
	if err != nil {
		t.Fatalf("open motion model (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	defer sess.Close()
	var (
		mu      sync.Mutex
		results = map[string]hubResult{}
		got     = make(chan struct{}, 16)
	)
	m := NewMetrics()
	s := NewScheduler([]*engine.Session{sess}, motion.Manifest(), 4, 50*time.Millisecond, nil, func(r hubResult) {
		mu.Lock()
		results[r.name] = r
		mu.Unlock()
		got <- struct{}{}
	}, m, slog.New(slog.DiscardHandler))
	defer s.Close()

	wait := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-got:
			case <-time.After(20 * time.Second):
				t.Fatal("results did not come")
			}
		}
	}
	// Six windows of six streams: a batch of four (max_batch), then one
	// of two after max_wait.
	want := map[string]string{"r1": "moving_right", "l1": "moving_left", "s1": "still", "r2": "moving_right", "l2": "moving_left", "s2": "still"}
	dx := map[string]int{"moving_right": 6, "moving_left": -6, "still": 0}
	for _, name := range []string{"r1", "l1", "s1", "r2", "l2", "s2"} {
		if !s.Submit(inferenceJob{stream: name, gen: 1, epoch: 1, tensor: motionClip(dx[want[name]]), made: time.Now()}) {
			t.Fatal("submit refused")
		}
	}
	s.Start()
	wait(6)
	mu.Lock()
	for name, label := range want {
		r := results[name]
		top := topLabels(r.scores, nil, 1)[0]
		if motion.Labels[top.Index] != label || top.Score < 0.9 {
			t.Errorf("stream %s: %s (%.3f), want %s: results must go to their own stream", name, motion.Labels[top.Index], top.Score, label)
		}
	}
	if results["r1"].latency != results["l1"].latency {
		t.Errorf("windows of one batch have latencies %v and %v, want the batch's", results["r1"].latency, results["l1"].latency)
	}
	mu.Unlock()
	batches, sum := histogram(t, m, "actiond_inference_batch_size")
	if batches != 2 || sum != 6 {
		t.Errorf("%d batches of %v windows in all, want 2 (4 and 2)", batches, sum)
	}

	// One window alone runs too (after max_wait).
	s.Submit(inferenceJob{stream: "alone", tensor: motionClip(6)})
	wait(1)
	if batches, _ := histogram(t, m, "actiond_inference_batch_size"); batches != 3 {
		t.Errorf("%d batches, want 3", batches)
	}
}

// gatedScheduler is a scheduler on the motion model whose runs wait for the
// test: each batch is announced on started and runs once release gets a
// value.
type gatedScheduler struct {
	*Scheduler
	pool    *ingest.TensorPool
	started chan []inferenceJob
	release chan struct{}
	results chan hubResult
	clips   map[int][]float32 // motionClip by dx
}

func newGatedScheduler(t *testing.T, maxBatch int) *gatedScheduler {
	t.Helper()
	sess, err := engine.Open(motionModel, engine.Options{Threads: 1})
	if err != nil {
		t.Fatalf("open motion model (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	t.Cleanup(func() { sess.Close() })
	man := motion.Manifest()
	g := &gatedScheduler{
		pool:    ingest.NewTensorPool(man.Segments * 3 * man.InputSize * man.InputSize),
		started: make(chan []inferenceJob, 64),
		release: make(chan struct{}),
		results: make(chan hubResult, 256),
		clips:   map[int][]float32{},
	}
	g.Scheduler = NewScheduler([]*engine.Session{sess}, man, maxBatch, time.Millisecond, g.pool,
		func(r hubResult) { g.results <- r }, NewMetrics(), slog.New(slog.DiscardHandler))
	g.beforeRun = func(batch []inferenceJob) {
		g.started <- batch
		<-g.release
	}
	g.Start()
	t.Cleanup(func() {
		close(g.release)
		g.Close()
	})
	return g
}

// noPicture: submit leaves the tensor as the pool gives it.
const noPicture = -1000

// submit hands over a window of stream moving dx pixels per frame, its
// tensor from the pool, numbered by its media end (in seconds).
func (g *gatedScheduler) submit(t *testing.T, stream string, n int, dx int, static bool) {
	t.Helper()
	tensor := g.pool.Get(g.ItemSize())
	if dx != noPicture {
		if g.clips[dx] == nil {
			g.clips[dx] = motionClip(dx)
		}
		copy(tensor, g.clips[dx])
	}
	if !g.Submit(inferenceJob{stream: stream, gen: 1, epoch: 1, tensor: tensor, static: static,
		span: ingest.Span{MediaEnd: time.Duration(n) * time.Second}, made: time.Now()}) {
		t.Fatal("submit refused")
	}
}

// next returns the next batch to run, and lets it run.
func (g *gatedScheduler) next(t *testing.T) []string {
	t.Helper()
	select {
	case b := <-g.started:
		g.release <- struct{}{}
		var out []string
		for _, j := range b {
			out = append(out, fmt.Sprintf("%s%d", j.stream, j.span.MediaEnd/time.Second))
		}
		return out
	case <-time.After(20 * time.Second):
		t.Fatal("no batch ran")
		return nil
	}
}

// result returns the next result as stream+window, with "(reused)".
func (g *gatedScheduler) result(t *testing.T) string {
	t.Helper()
	select {
	case r := <-g.results:
		s := fmt.Sprintf("%s%d", r.name, r.span.MediaEnd/time.Second)
		if r.reused {
			s += "(reused)"
		}
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no result came")
		return ""
	}
}

// Latest wins: while the model is busy each stream keeps only its newest
// window (the others are skipped and counted, and give no result), and the
// waiting streams are served oldest first, one window each: round robin.
func TestSchedulerLatestWinsRoundRobin(t *testing.T) {
	t.Parallel()
	g := newGatedScheduler(t, 1)
	g.submit(t, "a", 1, 6, false)
	first := <-g.started // a1 runs, held
	if len(first) != 1 || first[0].stream != "a" {
		t.Fatalf("first batch %v", first)
	}
	// While it runs: b and c start waiting, then a; then newer windows
	// replace the waiting ones.
	for _, w := range []struct {
		stream string
		n      int
	}{{"b", 1}, {"c", 1}, {"a", 2}, {"b", 2}, {"c", 2}, {"a", 3}, {"b", 3}} {
		g.submit(t, w.stream, w.n, 0, false)
	}
	for stream, want := range map[string]uint64{"a": 1, "b": 2, "c": 1} {
		if skipped, _ := g.streamStats(stream, 1); skipped != want {
			t.Errorf("stream %s: %d windows skipped, want %d", stream, skipped, want)
		}
	}
	if st := g.pool.Stats(); st.Lent != 3 {
		t.Errorf("%d tensors lent with a window waiting for each of 3 streams, want 3 (%+v)", st.Lent, st)
	}
	g.release <- struct{}{} // a1 ends
	var order []string
	order = append(order, g.next(t)...) // b3, the oldest waiting
	// While c runs, b hands over another window: it waits behind a.
	c := <-g.started
	g.submit(t, "b", 4, 0, false)
	g.release <- struct{}{}
	order = append(order, fmt.Sprintf("%s%d", c[0].stream, c[0].span.MediaEnd/time.Second))
	order = append(order, g.next(t)...)
	order = append(order, g.next(t)...)
	if want := []string{"b3", "c2", "a3", "b4"}; !slices.Equal(order, want) {
		t.Errorf("served %v, want %v", order, want)
	}
	var results []string
	for range 5 {
		results = append(results, g.result(t))
	}
	if want := []string{"a1", "b3", "c2", "a3", "b4"}; !slices.Equal(results, want) {
		t.Errorf("results %v, want %v: a skipped window gives none", results, want)
	}
	if st := g.pool.Stats(); st.Lent != 0 || st.Allocated > 4 {
		t.Errorf("pool after the runs: %+v, want nothing lent and at most 4 tensors made for 3 streams", st)
	}
}

// A static window (skip_static) takes the result of the window ahead of it
// in its stream, or the stream's last result at once: the model does not
// run for it, and its result says reused.
func TestSchedulerStaticWindowsReuse(t *testing.T) {
	t.Parallel()
	g := newGatedScheduler(t, 1)
	g.submit(t, "s", 1, 6, false)
	<-g.started // s1 runs, held
	g.submit(t, "s", 2, 6, true)
	g.submit(t, "s", 3, 6, true) // replaces s2 as the follower: s2 skipped
	g.release <- struct{}{}
	if got := []string{g.result(t), g.result(t)}; !slices.Equal(got, []string{"s1", "s3(reused)"}) {
		t.Errorf("results %v, want s1 and s3 reusing it", got)
	}
	g.submit(t, "s", 4, 6, true) // nothing ahead: the last result at once
	if got := g.result(t); got != "s4(reused)" {
		t.Errorf("result %s, want s4(reused)", got)
	}
	g.submit(t, "s", 5, 6, false) // moving: it runs
	if got := g.next(t); !slices.Equal(got, []string{"s5"}) {
		t.Errorf("ran %v, want s5", got)
	}
	if got := g.result(t); got != "s5" {
		t.Errorf("result %s, want s5", got)
	}
	if skipped, stride := g.streamStats("s", 1); skipped != 1 || stride != 4*time.Second/3 {
		t.Errorf("skipped %d, effective stride %v; want 1 and 1.333s (windows ending at 1, 3, 4 and 5 s served)", skipped, stride)
	}
	if st := g.pool.Stats(); st.Lent != 0 {
		t.Errorf("pool: %+v, want nothing lent", st)
	}
	select {
	case b := <-g.started:
		t.Errorf("the model ran %d more windows", len(b))
	default:
	}
}

// The pool bounds memory under overload: however many windows the streams
// hand over while the model is busy, the tensors made stay at one waiting
// window per stream, plus the one being handed over and those of a batch
// being copied into the model's input.
func TestSchedulerPoolBoundedUnderOverload(t *testing.T) {
	t.Parallel()
	const streams, rounds, maxBatch = 4, 100, 2
	g := newGatedScheduler(t, maxBatch)
	for n := 1; n <= rounds; n++ {
		for k := range streams {
			g.submit(t, fmt.Sprintf("cam%d", k), n, noPicture, false)
		}
		if n%20 == 0 {
			g.next(t) // let one batch through now and then
		}
	}
	st := g.pool.Stats()
	if most := streams + 1 + maxBatch; st.Allocated > uint64(most) || st.MaxLent > most {
		t.Errorf("%d windows handed over by %d streams: pool %+v, want at most %d tensors made", streams*rounds, streams, st, most)
	}
	var skipped uint64
	for k := range streams {
		s, _ := g.streamStats(fmt.Sprintf("cam%d", k), 1)
		skipped += s
	}
	t.Logf("pool %+v, %d windows skipped", st, skipped)
	if skipped < streams*rounds-streams*8 {
		t.Errorf("%d windows skipped of %d", skipped, streams*rounds)
	}
}

// When streams go, the pool lets their tensors go too: it keeps two per
// stream left (one waiting, one being handed over), not as many as were
// ever out at once.
func TestSchedulerPoolShrinksWithStreams(t *testing.T) {
	t.Parallel()
	const streams = 8
	g := newGatedScheduler(t, 1)
	for k := range streams {
		g.submit(t, fmt.Sprintf("cam%d", k), 1, noPicture, false)
	}
	g.next(t) // cam0 runs; the other 7 wait
	for k := 1; k < streams; k++ {
		g.submit(t, fmt.Sprintf("cam%d", k), 2, noPicture, false) // replaces its waiting window
	}
	if st := g.pool.Stats(); st.Free+st.Lent < streams-1 {
		t.Fatalf("pool %+v: want the waiting windows' tensors in it", st)
	}
	for k := 1; k < streams; k++ {
		g.forget(fmt.Sprintf("cam%d", k), 1)
	}
	st := g.pool.Stats()
	t.Logf("after 7 of 8 streams went: pool %+v", st)
	if st.Lent != 0 || st.Free > poolKeep(1) {
		t.Errorf("pool %+v after 7 of 8 streams went: want none lent and at most %d kept", st, poolKeep(1))
	}
}

// histogram returns a histogram's count and sum from the registry.
func histogram(t *testing.T, m *Metrics, name string) (uint64, float64) {
	t.Helper()
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			h := f.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0, 0
}
