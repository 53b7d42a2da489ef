package modeltool

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models/onnx"
	"github.com/actiond/actiond/models/pptsmv2"
)

// shippedClips are the clips in the repository's testdata.
var shippedClips = []string{"../testdata/arm_wrestling.mp4", "../testdata/archery_h264.mp4", "../testdata/archery.avi"}

// The int8 build of a seeded PP-TSMv2 (32×32, small enough for a test):
// ONNX Runtime runs it, its halves give its own logits, and it agrees
// with the float model of the same weights on the shipped clips.
func TestPPTSMv2Int8(t *testing.T) {
	t.Parallel()
	const size = 32
	dir := t.TempDir()
	w := pptsmv2.RandomWeights(7, true)
	opts := pptsmv2.BuildOptions{InputSize: size}
	fp32, int8 := filepath.Join(dir, "fp32.onnx"), filepath.Join(dir, "int8.onnx")
	if err := pptsmv2.WriteFile(w, opts, fp32); err != nil {
		t.Fatal(err)
	}
	clips, err := Int8CalibrationClips(shippedClips, size)
	if err != nil {
		t.Fatal(err)
	}
	agree, err := writePPTSMv2Int8(w, opts, int8, clips, 1)
	if err != nil {
		t.Fatalf("write int8 (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	open := func(path string) *engine.Session {
		s, err := engine.Open(path, engine.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	fs, qs := open(fp32), open(int8)
	man, err := onnx.LoadManifest(int8)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := engine.OpenFeatureCache(int8, man, 1)
	if err != nil {
		t.Fatalf("int8 halves: %v", err)
	}
	defer fc.Close()
	for i, path := range shippedClips {
		clip := clips[i]
		fl, err := fs.Run(clip, 1)
		if err != nil {
			t.Fatal(err)
		}
		ql, err := qs.Run(clip, 1)
		if err != nil {
			t.Fatal(err)
		}
		a := compareInt8(fl, ql)
		t.Logf("%s: int8 against float32: max logit difference %.3g (largest logit %.3g), top-5 overlap %d/5",
			filepath.Base(path), a.MaxLogitDiff, a.MaxAbsLogit, a.MinTop5Overlap)
		if a.MaxLogitDiff > agree.MaxLogitDiff || a.MinTop5Overlap < agree.MinTop5Overlap {
			t.Errorf("%s: the build reported agreement %+v, this clip gives %+v", filepath.Base(path), agree, a)
		}
		// Loose bounds that a broken quantisation (a wrong scale, a
		// channel off by one) crosses by far: the int8 model answers as
		// the float one does.
		if a.MaxLogitDiff > 0.1*a.MaxAbsLogit || a.MinTop5Overlap < 4 {
			t.Errorf("%s: int8 differs from float32 by %.3g (largest logit %.3g), top-5 overlap %d/5", filepath.Base(path), a.MaxLogitDiff, a.MaxAbsLogit, a.MinTop5Overlap)
		}

		feats := make([]float32, man.Segments*fc.FeatureSize())
		frame := len(clip) / man.Segments
		for f := range man.Segments {
			if err := fc.Encode(clip[f*frame:(f+1)*frame], feats[f*fc.FeatureSize():(f+1)*fc.FeatureSize()]); err != nil {
				t.Fatal(err)
			}
		}
		hl, err := fc.Back().Run(feats, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d, scale, same := compareLogits(ql, hl); d > 1e-3*scale || !same {
			t.Errorf("%s: the int8 halves differ from the int8 model by %.3g (largest logit %.3g), top 5 the same: %v", filepath.Base(path), d, scale, same)
		}
	}
}

// BenchmarkPPTSMv2Int8 times the seeded PP-TSMv2 at 224×224, float32
// against int8 (calibrated on the shipped clips and the synthetic scenes),
// the whole model on a clip and the back half on a window of features, one
// intra-op thread each, the four runs interleaved in every iteration so
// that a neighbour's load falls on all of them; it reports p50s, the
// speedups and the int8 model's agreement with the float one on the
// shipped clips. BENCHMARKS.md, "int8 PP-TSMv2":
//
//	go test ./server -run '^$' -bench PPTSMv2Int8 -benchtime 20x
func BenchmarkPPTSMv2Int8(b *testing.B) {
	dir := b.TempDir()
	w := pptsmv2.RandomWeights(1, true)
	opts := pptsmv2.BuildOptions{}
	fp32, int8 := filepath.Join(dir, "fp32.onnx"), filepath.Join(dir, "int8.onnx")
	if err := pptsmv2.WriteFile(w, opts, fp32); err != nil {
		b.Fatal(err)
	}
	clips, err := Int8CalibrationClips(shippedClips, pptsmv2.DefaultInputSize)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := writePPTSMv2Int8(w, opts, int8, clips, 1); err != nil {
		b.Fatal(err)
	}
	type model struct {
		whole *engine.Session
		fc    *engine.FeatureCache
		feats []float32
	}
	open := func(path string) model {
		s, err := engine.Open(path, engine.Options{Threads: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		man, err := onnx.LoadManifest(path)
		if err != nil {
			b.Fatal(err)
		}
		fc, err := engine.OpenFeatureCache(path, man, 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(fc.Close)
		feats := make([]float32, man.Segments*fc.FeatureSize())
		frame := len(clips[0]) / man.Segments
		for f := range man.Segments {
			if err := fc.Encode(clips[0][f*frame:(f+1)*frame], feats[f*fc.FeatureSize():(f+1)*fc.FeatureSize()]); err != nil {
				b.Fatal(err)
			}
		}
		return model{s, fc, feats}
	}
	fm, qm := open(fp32), open(int8)
	worst := Int8Agreement{MinTop5Overlap: 5}
	for i := range shippedClips {
		fl, err := fm.whole.Run(clips[i], 1)
		if err != nil {
			b.Fatal(err)
		}
		ql, err := qm.whole.Run(clips[i], 1)
		if err != nil {
			b.Fatal(err)
		}
		a := compareInt8(fl, ql)
		b.Logf("%s: max logit difference %.3g (largest logit %.3g), top-5 overlap %d/5", filepath.Base(shippedClips[i]), a.MaxLogitDiff, a.MaxAbsLogit, a.MinTop5Overlap)
		worst.MaxLogitDiff, worst.MaxAbsLogit = max(worst.MaxLogitDiff, a.MaxLogitDiff), max(worst.MaxAbsLogit, a.MaxAbsLogit)
		worst.MinTop5Overlap = min(worst.MinTop5Overlap, a.MinTop5Overlap)
	}
	runs := []struct {
		name string
		run  func() error
		ms   []float64
	}{
		{name: "whole-fp32", run: func() error { _, err := fm.whole.Run(clips[0], 1); return err }},
		{name: "whole-int8", run: func() error { _, err := qm.whole.Run(clips[0], 1); return err }},
		{name: "back-fp32", run: func() error { _, err := fm.fc.Back().Run(fm.feats, 1); return err }},
		{name: "back-int8", run: func() error { _, err := qm.fc.Back().Run(qm.feats, 1); return err }},
	}
	for i := range runs { // warm-up
		if err := runs[i].run(); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		for i := range runs {
			t := time.Now()
			if err := runs[i].run(); err != nil {
				b.Fatal(err)
			}
			runs[i].ms = append(runs[i].ms, float64(time.Since(t).Microseconds())/1000)
		}
	}
	p50 := make(map[string]float64)
	for _, r := range runs {
		slices.Sort(r.ms)
		p50[r.name] = r.ms[len(r.ms)/2]
		b.ReportMetric(p50[r.name], r.name+"-p50-ms")
	}
	b.ReportMetric(p50["whole-fp32"]/p50["whole-int8"], "whole-speedup")
	b.ReportMetric(p50["back-fp32"]/p50["back-int8"], "back-speedup")
	b.ReportMetric(worst.MaxLogitDiff, "max-logit-diff")
	b.ReportMetric(worst.MaxAbsLogit, "max-abs-logit")
	b.ReportMetric(float64(worst.MinTop5Overlap), "min-top5-overlap")
}
