package server

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
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
// window's scores; a lone window runs after max_wait.
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
	s := NewScheduler(sess, motion.Manifest(), 4, 300*time.Millisecond, func(r hubResult) {
		mu.Lock()
		results[r.name] = r
		mu.Unlock()
		got <- struct{}{}
	}, m, slog.New(slog.DiscardHandler))
	s.Start()
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
	ctx := context.Background()
	// Six windows of six streams, handed over at once: a batch of four
	// (max_batch), then one of two after max_wait.
	want := map[string]string{"r1": "moving_right", "l1": "moving_left", "s1": "still", "r2": "moving_right", "l2": "moving_left", "s2": "still"}
	dx := map[string]int{"moving_right": 6, "moving_left": -6, "still": 0}
	var jobs []inferenceJob
	for _, name := range []string{"r1", "l1", "s1", "r2", "l2", "s2"} {
		jobs = append(jobs, inferenceJob{stream: name, gen: 1, epoch: 1, tensor: motionClip(dx[want[name]])})
	}
	for _, j := range jobs {
		j.made = time.Now()
		if !s.Submit(ctx, j) {
			t.Fatal("submit refused")
		}
	}
	wait(6)
	for name, label := range want {
		r := results[name]
		top := topLabels(r.scores, nil, 1)[0]
		if motion.Labels[top.Index] != label || top.Score < 0.9 {
			t.Errorf("stream %s: %s (%.3f), want %s: results must go to their own stream", name, motion.Labels[top.Index], top.Score, label)
		}
	}
	batches, sum := histogram(t, m, "actiond_inference_batch_size")
	if batches != 2 || sum != 6 {
		t.Errorf("%d batches of %v windows in all, want 2 (4 and 2)", batches, sum)
	}
	if results["r1"].latency != results["l1"].latency {
		t.Errorf("windows of one batch have latencies %v and %v, want the batch's", results["r1"].latency, results["l1"].latency)
	}

	// One window alone runs after max_wait.
	alone := inferenceJob{stream: "alone", tensor: motionClip(6)}
	start := time.Now()
	s.Submit(ctx, alone)
	wait(1)
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("a lone window ran after %v, before max_wait (300ms)", d)
	}
	if batches, _ := histogram(t, m, "actiond_inference_batch_size"); batches != 3 {
		t.Errorf("%d batches, want 3", batches)
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
