package server

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
	"github.com/actiond/actiond/models/pptsmv2"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// The feature cache tests run the untrained PP-TSMv2 at a 32×32 crop
// (features [256,4,4] per frame): the real graph and its halves, small
// enough to run a window in milliseconds.
const featureTestSize = 32

var (
	splitModelOnce sync.Once
	splitModelDir  string
	splitModelErr  error
)

// splitModel writes the untrained PP-TSMv2 with its halves, once per test
// binary, and returns the model's path in a directory of the test's own
// (so that a test may remove a half).
func splitModel(t *testing.T) string {
	t.Helper()
	splitModelOnce.Do(func() {
		splitModelDir, splitModelErr = os.MkdirTemp("", "actiond-split-")
		if splitModelErr == nil {
			splitModelErr = pptsmv2.WriteFile(pptsmv2.RandomWeights(7, true),
				pptsmv2.BuildOptions{InputSize: featureTestSize}, filepath.Join(splitModelDir, "pptsmv2.onnx"))
		}
	})
	if splitModelErr != nil {
		t.Fatal(splitModelErr)
	}
	dir := t.TempDir()
	for _, name := range []string{"pptsmv2.onnx", "pptsmv2.front.onnx", "pptsmv2.back.onnx"} {
		b, err := os.ReadFile(filepath.Join(splitModelDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "pptsmv2.onnx")
}

// recordingEncoder is the server's front, remembering each frame it
// encoded and the features it gave, so that a window of features can be
// turned back into the window of pixels it came from.
type recordingEncoder struct {
	*engine.FeatureCache
	mu     sync.Mutex
	pixels [][]float32
	feats  [][]float32
}

func (r *recordingEncoder) Encode(frame, dst []float32) error {
	if err := r.FeatureCache.Encode(frame, dst); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pixels = append(r.pixels, slices.Clone(frame))
	r.feats = append(r.feats, slices.Clone(dst))
	return nil
}

// pixelsOf returns the pixel window [16,3,S,S] whose frames gave the
// features of win, and how many frames had been encoded.
func (r *recordingEncoder) pixelsOf(t *testing.T, win []float32, segments int) ([]float32, int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	fs := r.FeatureCache.FeatureSize()
	ps := len(r.pixels[0])
	out := make([]float32, 0, segments*ps)
	for s := range segments {
		i := slices.IndexFunc(r.feats, func(f []float32) bool { return slices.Equal(f, win[s*fs:(s+1)*fs]) })
		if i < 0 {
			t.Fatalf("slot %d holds features the front never gave", s)
		}
		out = append(out, r.pixels[i]...)
	}
	return out, len(r.pixels)
}

// Live frames from the simulator, through a stream that keeps the front's
// features and the scheduler running the back, score what the whole model
// scores on the same frames' pixels; and each kept frame goes through the
// front once, not once per window.
func TestFeatureCacheMatchesWholeModel(t *testing.T) {
	t.Parallel()
	path := splitModel(t)
	man, err := onnx.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := engine.OpenFeatureCache(path, man, 1)
	if err != nil {
		t.Fatalf("open halves (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	defer fc.Close()
	whole, err := engine.Open(path, engine.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	rec := &recordingEncoder{FeatureCache: fc}

	results := make(chan hubResult, 16)
	sched := NewScheduler([]*engine.Session{fc.Back()}, man, 2, 10*time.Millisecond, nil, func(r hubResult) { results <- r },
		NewMetrics(), slog.New(slog.DiscardHandler))
	sched.Start()
	defer sched.Close()

	sim, _ := startCamera(t, "", "")
	st, err := ingest.NewStream(ingest.StreamConfig{Name: "cam", URL: sim.URL("bounce"), Window: camsim.BounceWindow,
		Stride: 2 * camsim.BounceWindow / 16, Transport: ingest.TransportTCP}, man, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	st.SetEncoder(rec)
	st.Start()
	defer st.Close()

	const windows = 4
	var wins []ingest.Window
	timeout := time.After(60 * time.Second)
	for len(wins) < windows {
		select {
		case w := <-st.Windows():
			if want := man.Segments * fc.FeatureSize(); len(w.Tensor) != want {
				t.Fatalf("window tensor has %d values, want %d (16 × %v)", len(w.Tensor), want, fc.Shape())
			}
			wins = append(wins, w)
			// One stream each: a stream's newer window would replace its
			// waiting one (latest wins).
			if !sched.Submit(inferenceJob{stream: fmt.Sprintf("%s-%d", w.Stream, len(wins)), epoch: w.Epoch,
				span: ingest.Span{MediaStart: w.MediaStart}, tensor: w.Tensor}) {
				t.Fatal("scheduler refused a window")
			}
		case <-timeout:
			t.Fatalf("%d windows in 60s, want %d", len(wins), windows)
		}
	}
	st.Close()
	got := map[time.Duration][]float32{}
	for range windows {
		select {
		case r := <-results:
			got[r.span.MediaStart] = r.scores
		case <-time.After(30 * time.Second):
			t.Fatal("the scheduler gave no result")
		}
	}

	var encoded int
	for n, w := range wins {
		pixels, e := rec.pixelsOf(t, w.Tensor, man.Segments)
		encoded = e
		logits, err := whole.Run(pixels, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := engine.Softmax(logits)
		scores := got[w.MediaStart]
		if len(scores) != len(want) {
			t.Fatalf("window %d: %d scores, want %d", n, len(scores), len(want))
		}
		var d, m float64
		for i := range want {
			d = max(d, math.Abs(float64(scores[i]-want[i])))
			m = max(m, math.Abs(float64(want[i])))
		}
		t.Logf("%v: max |cached - whole| / max |whole| = %.2g over the scores", &w, d/m)
		if d/m > 1e-5 || math.IsNaN(d) {
			t.Errorf("%v: the scores differ from the whole model's by %.3g relative", &w, d/m)
		}
	}
	// At a stride of 2 slots a window brings 2 new frames: without the
	// cache the front's work would be 16 frames per window.
	if encoded >= windows*man.Segments/2 {
		t.Errorf("%d frames encoded for %d windows: the front ran per window, not per frame", encoded, windows)
	}
	t.Logf("%d frames encoded for %d windows", encoded, windows)
}

// The server runs a split model's halves by default, its windows hold
// features and their results arrive; with feature_cache false, or when a
// half is missing, it runs the whole model.
func TestServerFeatureCache(t *testing.T) {
	t.Parallel()
	sim, _ := startCamera(t, "", "")
	for _, tc := range []struct {
		name    string
		cache   *bool
		missing string
		wantLog string
		on      bool
	}{
		{name: "default", wantLog: "feature cache on", on: true},
		{name: "off", cache: ptr(false)},
		{name: "missing half", missing: "pptsmv2.back.onnx", wantLog: "feature cache off: running the whole model per window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := splitModel(t)
			if tc.missing != "" {
				if err := os.Remove(filepath.Join(filepath.Dir(path), tc.missing)); err != nil {
					t.Fatal(err)
				}
			}
			ts := startServer(t, Config{Model: path, Inference: InferenceConfig{FeatureCache: tc.cache}})
			c := ts.core.Load()
			if on := c.features != nil; on != tc.on {
				t.Fatalf("feature cache on: %t, want %t", on, tc.on)
			}
			if tc.wantLog != "" && !strings.Contains(ts.logs.String(), tc.wantLog) {
				t.Errorf("log lacks %q", tc.wantLog)
			}
			if tc.on && c.sched.sessions[0] != c.features.Back() {
				t.Error("the scheduler does not run the back")
			}
			ctx := ctxT(t, 60*time.Second)
			sub := subscribe(t, ctx, ts.recog, &actiondv1.SubscribeRequest{Kinds: []actiondv1.EventKind{actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT}})
			if _, err := ts.streams.AddStream(ctx, &actiondv1.AddStreamRequest{Name: "cam", Url: sim.URL("bounce"),
				Options: &actiondv1.StreamOptions{Window: dur(camsim.BounceWindow), Stride: dur(camsim.BounceStride), Transport: actiondv1.Transport_TRANSPORT_TCP}}); err != nil {
				t.Fatal(err)
			}
			w := sub.next(45 * time.Second).GetWindowResult()
			if w == nil || len(w.GetTop()) != 5 || w.GetMediaEnd().AsDuration()-w.GetMediaStart().AsDuration() != camsim.BounceWindow {
				t.Fatalf("first event %v, want a window result of %v with 5 labels", w, camsim.BounceWindow)
			}
			if v := testutilCounter(t, ts.metrics, "actiond_inference_errors_total"); v != 0 {
				t.Errorf("%v inference errors", v)
			}
		})
	}
}

// Halves that are not the model's are refused, each problem named: a half
// of another build, the front in place of the back.
func TestFeatureCacheRefusesOtherHalves(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(dir string) error
		want string
	}{
		{"other build", func(dir string) error {
			return setMetadata(filepath.Join(dir, "pptsmv2.back.onnx"), models.BuildKey, "fnv1a64:0000000000000000")
		}, `feature cache back "pptsmv2.back.onnx": metadata actiond.build is "fnv1a64:0000000000000000", want "fnv1a64:`},
		{"front as back", func(dir string) error {
			b, err := os.ReadFile(filepath.Join(dir, "pptsmv2.front.onnx"))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "pptsmv2.back.onnx"), b, 0o644)
		}, `feature cache back "pptsmv2.back.onnx": metadata actiond.part is "front", want "back"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := splitModel(t)
			if err := tc.edit(filepath.Dir(path)); err != nil {
				t.Fatal(err)
			}
			man, err := onnx.LoadManifest(path)
			if err != nil {
				t.Fatal(err)
			}
			fc, err := engine.OpenFeatureCache(path, man, 1)
			if err == nil {
				fc.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func setMetadata(path, key, value string) error {
	m, err := onnx.ReadFile(path)
	if err != nil {
		return err
	}
	m.SetMetadata(key, value)
	return m.WriteFile(path)
}
