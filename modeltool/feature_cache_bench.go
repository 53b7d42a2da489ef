package modeltool

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/internal/stats"
	"github.com/actiond/actiond/models/onnx"
)

// FeatureCacheBench is what BenchFeatureCache measured: the model's cost
// per live window without the feature cache (the whole model on 16 frames)
// and with it (the front on the window's new frames, one run each as a
// stream does it, then the back), p50s in milliseconds over the same
// iterations, interleaved.
type FeatureCacheBench struct {
	Model      string `json:"model"`
	Threads    int    `json:"threads"`
	NewFrames  int    `json:"new_frames"`
	Iterations int    `json:"iterations"`
	// WholeP50ms is one window through the whole model.
	WholeP50ms float64 `json:"whole_p50_ms"`
	// FrontP50ms is one frame through the front; BackP50ms one window
	// through the back.
	FrontP50ms float64 `json:"front_p50_ms"`
	BackP50ms  float64 `json:"back_p50_ms"`
	// CachedP50ms is the p50 over iterations of NewFrames fronts plus one
	// back, each run timed on its own and the times added.
	CachedP50ms float64 `json:"cached_p50_ms"`
	// WholeWindowsPerCoreS and CachedWindowsPerCoreS are windows per
	// second per intra-op thread: 1000 / (p50 · threads).
	WholeWindowsPerCoreS  float64 `json:"whole_windows_per_core_s"`
	CachedWindowsPerCoreS float64 `json:"cached_windows_per_core_s"`
	// Speedup is WholeP50ms / CachedP50ms.
	Speedup float64 `json:"speedup"`
	// MaxLogitDiff is the largest difference between a logit of the
	// window through the halves (the front on each frame, then the back)
	// and the same logit through the whole model; MaxAbsLogit is the
	// largest magnitude of the whole model's logits, its scale.
	MaxLogitDiff float64 `json:"max_logit_diff"`
	MaxAbsLogit  float64 `json:"max_abs_logit"`
	// Top5Same says whether the halves rank the same five labels first, in
	// the same order, as the whole model.
	Top5Same bool `json:"top5_same"`
}

// BenchFeatureCache opens the model at path and its halves (its manifest's
// feature_cache) with the given intra-op threads (0 = all cores), runs each
// once to warm up, then times iterations rounds of: the whole model on one
// window, and newFrames fronts plus one back (a window that brings
// newFrames frames its predecessor did not have: 2 at the default stride).
func BenchFeatureCache(path string, threads, newFrames, iterations int) (*FeatureCacheBench, error) {
	if iterations < 1 {
		return nil, fmt.Errorf("model bench: iterations must be ≥ 1, got %d", iterations)
	}
	man, err := onnx.LoadManifest(path)
	if err != nil {
		return nil, err
	}
	if newFrames < 1 || newFrames > man.Segments {
		return nil, fmt.Errorf("model bench: new frames must be between 1 and %d, got %d", man.Segments, newFrames)
	}
	if man.FeatureCache == nil {
		return nil, fmt.Errorf("model bench: model %q has no halves (no feature_cache in its manifest); build it with actiond model build pptsmv2", filepath.Base(path))
	}
	fc, err := engine.OpenFeatureCache(path, man, threads)
	if err != nil {
		return nil, err
	}
	defer fc.Close()
	whole, err := engine.Open(path, engine.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	defer whole.Close()

	frameSize := 3 * man.InputSize * man.InputSize
	clip := make([]float32, man.Segments*frameSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range clip {
		clip[i] = rng.Float32()*4 - 2
	}
	features := make([]float32, man.Segments*fc.FeatureSize())
	for f := range man.Segments {
		if err := fc.Encode(clip[f*frameSize:(f+1)*frameSize], features[f*fc.FeatureSize():(f+1)*fc.FeatureSize()]); err != nil {
			return nil, err
		}
	}
	// Warm-up (every shape once), and what a user checks first: the
	// halves give the whole model's logits.
	wholeLogits, err := whole.Run(clip, 1)
	if err != nil {
		return nil, err
	}
	splitLogits, err := fc.Back().Run(features, 1)
	if err != nil {
		return nil, err
	}
	diff, scale, top5 := compareLogits(wholeLogits, splitLogits)
	var wholeMS, frontMS, backMS, cachedMS []float64
	since := func(t time.Time) float64 { return float64(time.Since(t).Nanoseconds()) / 1e6 }
	for i := range iterations {
		t := time.Now()
		if _, err := whole.Run(clip, 1); err != nil {
			return nil, err
		}
		wholeMS = append(wholeMS, since(t))

		// The cached window: each front and the back timed on its own.
		cached := 0.0
		for k := range newFrames {
			// Frames that vary with the iteration, into the slots a new
			// window fills, as a stream does.
			f := (i*newFrames + k) % man.Segments
			t := time.Now()
			if err := fc.Encode(clip[f*frameSize:(f+1)*frameSize], features[f*fc.FeatureSize():(f+1)*fc.FeatureSize()]); err != nil {
				return nil, err
			}
			ms := since(t)
			frontMS, cached = append(frontMS, ms), cached+ms
		}
		t = time.Now()
		if _, err := fc.Back().Run(features, 1); err != nil {
			return nil, err
		}
		ms := since(t)
		backMS, cachedMS = append(backMS, ms), append(cachedMS, cached+ms)
	}
	p50 := func(v []float64) float64 {
		slices.Sort(v)
		return stats.Percentile(v, 0.5)
	}
	b := &FeatureCacheBench{
		Model: whole.Name(), Threads: whole.Threads(), NewFrames: newFrames, Iterations: iterations,
		WholeP50ms: p50(wholeMS), FrontP50ms: p50(frontMS), BackP50ms: p50(backMS), CachedP50ms: p50(cachedMS),
		MaxLogitDiff: diff, MaxAbsLogit: scale, Top5Same: top5,
	}
	perCore := func(ms float64) float64 { return 1000 / ms / float64(b.Threads) }
	b.WholeWindowsPerCoreS, b.CachedWindowsPerCoreS = perCore(b.WholeP50ms), perCore(b.CachedP50ms)
	b.Speedup = b.WholeP50ms / b.CachedP50ms
	return b, nil
}

// compareLogits returns the largest difference between the logits a and b
// of one clip, the largest magnitude in a, and whether both rank the same
// five labels first, in the same order.
func compareLogits(a, b []float32) (diff, scale float64, top5Same bool) {
	if len(a) != len(b) {
		return math.Inf(1), 0, false
	}
	for i := range a {
		diff = max(diff, math.Abs(float64(a[i]-b[i])))
		scale = max(scale, math.Abs(float64(a[i])))
	}
	if math.IsNaN(diff) {
		return math.Inf(1), scale, false
	}
	index := func(s engine.Scored) int { return s.Index }
	k := min(5, len(a))
	return diff, scale, slices.Equal(mapSlice(engine.TopK(a, k), index), mapSlice(engine.TopK(b, k), index))
}

func mapSlice[T, U any](in []T, f func(T) U) []U {
	out := make([]U, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}
