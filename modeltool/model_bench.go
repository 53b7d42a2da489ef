package modeltool

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/internal/stats"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// ModelBench is what BenchModel measured: per-run latency percentiles in
// milliseconds and the arithmetic rate at the median.
type ModelBench struct {
	Model      string  `json:"model"`
	Threads    int     `json:"threads"`
	Batch      int     `json:"batch"`
	Iterations int     `json:"iterations"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	Minms      float64 `json:"min_ms"`
	// GFLOPS is 2·MACsPerClip·Batch / P50, in 1e9 FLOP/s; 0 when the
	// model's manifest gives no MAC count.
	GFLOPS      float64 `json:"gflops"`
	MACsPerClip int64   `json:"macs_per_clip"`
	// Sessions ran side by side, each with Threads threads and its own
	// Iterations runs; ClipsPerS is every session's clips over the wall
	// time of all the timed runs (inference.sessions' throughput).
	Sessions  int     `json:"sessions"`
	ClipsPerS float64 `json:"clips_per_s"`
	// NoSpin: the intra-op threads slept between their parts of a run
	// instead of spinning, as the server's sessions do.
	NoSpin bool `json:"no_spin"`
}

// BenchModel opens the model at path with the given intra-op threads (0 =
// all cores), runs one warm-up batch of batch clips of seeded random input,
// then times iterations runs.
func BenchModel(path string, threads, batch, iterations int) (*ModelBench, error) {
	return BenchModelSessions(path, 1, threads, batch, iterations, false)
}

// BenchModelSessions is BenchModel with sessions engine sessions running
// side by side, as inference.sessions does: the latencies are those of
// every session's runs, ClipsPerS their throughput together. noSpin opens
// them as the server does (engine.Options.NoSpin).
func BenchModelSessions(path string, sessions, threads, batch, iterations int, noSpin bool) (*ModelBench, error) {
	if sessions < 1 {
		return nil, fmt.Errorf("model bench: sessions must be ≥ 1, got %d", sessions)
	}
	if batch < 1 {
		return nil, fmt.Errorf("model bench: batch must be ≥ 1, got %d", batch)
	}
	if iterations < 1 {
		return nil, fmt.Errorf("model bench: iterations must be ≥ 1, got %d", iterations)
	}
	var macs int64
	if man, err := onnx.LoadManifest(path); err == nil {
		macs = man.MACsPerClip
	} else if !errors.Is(err, models.ErrNoManifest) {
		return nil, err
	}
	var all []*engine.Session
	defer func() {
		for _, s := range all {
			s.Close()
		}
	}()
	for range sessions {
		s, err := engine.Open(path, engine.Options{Threads: threads, NoSpin: noSpin})
		if err != nil {
			return nil, err
		}
		all = append(all, s)
	}
	sess := all[0]
	// A model without a free axis (such as a bare MatMul) runs at its one
	// fixed shape; batch then only scales the FLOP count.
	shape := sess.Input().Shape
	if slices.Contains(shape, -1) {
		var err error
		if shape, err = sess.ItemShape(batch); err != nil {
			return nil, err
		}
	}
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	input := make([]float32, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range input {
		input[i] = rng.Float32()*4 - 2
	}
	for _, s := range all {
		if _, _, err := s.RunShape(input, shape); err != nil {
			return nil, err
		}
	}
	times := make([]float64, sessions*iterations)
	errs := make([]error, sessions)
	var wg sync.WaitGroup
	start := time.Now()
	for k, s := range all {
		wg.Go(func() {
			for i := range iterations {
				t := time.Now()
				if _, _, err := s.RunShape(input, shape); err != nil {
					errs[k] = err
					return
				}
				times[k*iterations+i] = float64(time.Since(t).Nanoseconds()) / 1e6
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.Sort(times)
	b := &ModelBench{
		Model: sess.Name(), Threads: sess.Threads(), Batch: batch, Iterations: iterations,
		P50ms: stats.Percentile(times, 0.5), P90ms: stats.Percentile(times, 0.9), Minms: times[0],
		MACsPerClip: macs, Sessions: sessions, NoSpin: noSpin,
		ClipsPerS: float64(sessions*iterations*batch) / wall.Seconds(),
	}
	if macs > 0 && b.P50ms > 0 {
		b.GFLOPS = 2 * float64(macs) * float64(batch) / (b.P50ms / 1e3) / 1e9
	}
	return b, nil
}
