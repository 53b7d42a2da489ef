package engine

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/actiond/actiond/models"
)

// FeatureCache is a split model's two halves, open (inference.feature_cache):
// the streams' windows run the front on each kept frame as it arrives
// (Encode, an ingest.FrameEncoder) and keep its features, and the
// scheduler runs only the back per window, [N, segments, features…].
//
// The front runs on the stream's own goroutine, one frame at a time, not
// batched by the scheduler: a stream keeps about one frame per slot
// (0.625 s), so fronts spread over time instead of arriving in bursts, and
// batching them costs more per frame on CPUs (on the 2-core development
// machine, 1 thread: 5.0–5.4 ms per frame at batch 1, 5.5–6.5 at batch 2,
// 6.0–6.2 at batch 8; `actiond model bench --model M.front.onnx --batch B`),
// as for whole windows (BENCHMARKS.md, "Batching"). With
// inference.sessions above 1 (Widen) there are as many fronts and backs:
// the streams' fronts run side by side, one per free front session.
type FeatureCache struct {
	front, back *Session
	shape       []int // features per frame
	size        int   // their count

	fronts chan *Session // free fronts, front among them
	backs  []*Session    // back first
	extra  []*Session    // opened by Widen, closed with the cache
}

// OpenFeatureCache opens the halves that the manifest of the model at path
// names, beside it, and checks that they are the halves of that model.
func OpenFeatureCache(path string, man models.Manifest, threads int) (*FeatureCache, error) {
	fc := man.FeatureCache
	if fc == nil {
		return nil, fmt.Errorf("model %q has no feature_cache in its manifest", filepath.Base(path))
	}
	dir := filepath.Dir(path)
	front, err := openHalf(filepath.Join(dir, fc.Front), "front", man, threads)
	if err != nil {
		return nil, err
	}
	back, err := openHalf(filepath.Join(dir, fc.Back), "back", man, threads)
	if err != nil {
		front.Close()
		return nil, err
	}
	f := &FeatureCache{front: front, back: back, shape: fc.FeatureShape, size: fc.FeatureSize(),
		fronts: make(chan *Session, 1), backs: []*Session{back}}
	f.fronts <- front
	feat := make([]int64, len(fc.FeatureShape))
	for i, d := range fc.FeatureShape {
		feat[i] = int64(d)
	}
	s := int64(man.InputSize)
	for _, c := range []struct {
		t    Tensor
		want []int64
	}{
		{front.Input(), []int64{-1, 3, s, s}},
		{front.Output(), append([]int64{-1}, feat...)},
		{back.Input(), append([]int64{-1, int64(man.Segments)}, feat...)},
		{back.Output(), []int64{-1, int64(len(man.Labels))}},
	} {
		if !slices.Equal(c.t.Shape, c.want) {
			f.Close()
			return nil, fmt.Errorf("model %q: feature cache half has %s, want shape %s", filepath.Base(path), c.t, formatShape(c.want))
		}
	}
	return f, nil
}

// openHalf opens the file at path, which must be the given half of the
// model man describes: a rebuilt model next to old halves would give wrong
// scores without an error.
func openHalf(path, part string, man models.Manifest, threads int) (*Session, error) {
	s, err := Open(path, Options{Threads: threads, NoSpin: true})
	if err != nil {
		return nil, fmt.Errorf("feature cache %s: %w", part, err)
	}
	want := map[string]string{
		models.PartKey: part, models.BuildKey: man.FeatureCache.Build,
		models.NameKey: man.Name, models.UntrainedKey: strconv.FormatBool(man.Untrained),
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := s.metadata[k]; got != want[k] {
			s.Close()
			return nil, fmt.Errorf("feature cache %s %q: metadata %s is %q, want %q", part, filepath.Base(path), k, got, want[k])
		}
	}
	return s, nil
}

// FeatureSize implements ingest.FrameEncoder.
func (f *FeatureCache) FeatureSize() int { return f.size }

// Front is the first front session.
func (f *FeatureCache) Front() *Session { return f.front }

// Back is the first back session.
func (f *FeatureCache) Back() *Session { return f.back }

// Backs are the back sessions, one per inference session (Widen), for the
// scheduler.
func (f *FeatureCache) Backs() []*Session { return f.backs }

// Shape is the features per frame.
func (f *FeatureCache) Shape() []int { return f.shape }

// Widen opens more fronts and backs, up to sessions of each, with threads
// intra-op threads each.
func (f *FeatureCache) Widen(sessions, threads int) error {
	if sessions <= len(f.backs) {
		return nil
	}
	fronts := make(chan *Session, sessions)
	for range len(f.backs) {
		fronts <- <-f.fronts
	}
	f.fronts = fronts
	for len(f.backs) < sessions {
		front, err := Open(f.front.Path(), Options{Threads: threads, NoSpin: true})
		if err != nil {
			return err
		}
		f.extra = append(f.extra, front)
		back, err := Open(f.back.Path(), Options{Threads: threads, NoSpin: true})
		if err != nil {
			return err
		}
		f.extra = append(f.extra, back)
		f.fronts <- front
		f.backs = append(f.backs, back)
	}
	return nil
}

// Encode implements ingest.FrameEncoder: the front on one frame, on the
// first front session free.
func (f *FeatureCache) Encode(frame, dst []float32) error {
	front := <-f.fronts
	defer func() { f.fronts <- front }()
	out, err := front.Run(frame, 1)
	if err != nil {
		return err
	}
	if len(out) != len(dst) {
		return fmt.Errorf("model %q: front gave %d values, want %d", front.Name(), len(out), len(dst))
	}
	copy(dst, out)
	return nil
}

// Close frees the sessions.
func (f *FeatureCache) Close() {
	f.front.Close()
	f.back.Close()
	for _, s := range f.extra {
		s.Close()
	}
}
