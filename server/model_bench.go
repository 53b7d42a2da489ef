package server

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models"
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
}

// BenchModel opens the model at path with the given intra-op threads (0 =
// all cores), runs one warm-up batch of batch clips of seeded random input,
// then times iterations runs.
func BenchModel(path string, threads, batch, iterations int) (*ModelBench, error) {
	if batch < 1 {
		return nil, fmt.Errorf("model bench: batch must be ≥ 1, got %d", batch)
	}
	if iterations < 1 {
		return nil, fmt.Errorf("model bench: iterations must be ≥ 1, got %d", iterations)
	}
	var macs int64
	if man, err := models.LoadManifest(path); err == nil {
		macs = man.MACsPerClip
	} else if !errors.Is(err, models.ErrNoManifest) {
		return nil, err
	}
	sess, err := engine.Open(path, engine.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	// A model without a free axis (such as a bare MatMul) runs at its one
	// fixed shape; batch then only scales the FLOP count.
	shape := sess.Input().Shape
	if slices.Contains(shape, -1) {
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
	if _, _, err := sess.RunShape(input, shape); err != nil {
		return nil, err
	}
	times := make([]float64, iterations)
	for i := range times {
		start := time.Now()
		if _, _, err := sess.RunShape(input, shape); err != nil {
			return nil, err
		}
		times[i] = float64(time.Since(start).Nanoseconds()) / 1e6
	}
	slices.Sort(times)
	b := &ModelBench{
		Model: sess.Name(), Threads: sess.Threads(), Batch: batch, Iterations: iterations,
		P50ms: benchPercentile(times, 0.5), P90ms: benchPercentile(times, 0.9), Minms: times[0],
		MACsPerClip: macs,
	}
	if macs > 0 && b.P50ms > 0 {
		b.GFLOPS = 2 * float64(macs) * float64(batch) / (b.P50ms / 1e3) / 1e9
	}
	return b, nil
}

// percentile of sorted values, nearest rank.
func benchPercentile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
