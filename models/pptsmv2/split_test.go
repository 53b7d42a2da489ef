package pptsmv2

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// splitTolerance bounds max|front+back - whole| / max|whole| over the
// logits: the same float32 operations in the same order, but ONNX Runtime
// fuses and tiles the two halves differently from the whole graph.
const splitTolerance = 1e-5

// buildAll builds w at the test size whole and split.
func buildAll(t *testing.T, w *Weights) (whole, front, back *onnx.Model) {
	t.Helper()
	whole, err := Build(w, BuildOptions{InputSize: testSize})
	if err != nil {
		t.Fatal(err)
	}
	if front, back, err = BuildSplit(w, BuildOptions{InputSize: testSize}); err != nil {
		t.Fatal(err)
	}
	return whole, front, back
}

// The front on every frame, then the back on the stacked features, gives
// the whole graph's logits, with and without LTA, for one clip and for a
// batch of two.
func TestSplitMatchesWhole(t *testing.T) {
	for _, lta := range []bool{false, true} {
		whole, front, back := buildAll(t, randomWeights(lta))
		feat := featureShape(testSize)
		featSize := feat[0] * feat[1] * feat[2]
		for _, n := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/batch %d", ltaName(lta), n), func(t *testing.T) {
				clips := testClips(n, testSize)
				want := runModel(t, whole, clips, n)
				// [n,16,3,s,s] is [16n,3,s,s] in memory: the front's batch.
				features := runModel(t, front, clips, n*Segments)
				if len(features) != n*Segments*featSize {
					t.Fatalf("front gave %d values, want %d frames of %v", len(features), n*Segments, feat)
				}
				got := runModel(t, back, features, n)
				if len(got) != n*NumClasses || len(want) != n*NumClasses {
					t.Fatalf("%d and %d logits, want %d", len(got), len(want), n*NumClasses)
				}
				w64 := make([]float64, len(want))
				for i, v := range want {
					w64[i] = float64(v)
				}
				d := relDiff(got, w64)
				t.Logf("max |split - whole| / max |whole| = %.2g (logits rms %.3g)", d, rms(w64))
				if d > splitTolerance || math.IsNaN(d) {
					t.Errorf("relative difference %.3g > %g", d, splitTolerance)
				}
				if n == 2 {
					// The clips' logits differ by far more than the tolerance:
					// frames of one clip reaching the other's back would show.
					if dc := relDiff(got[:NumClasses], w64[NumClasses:]); dc < 100*splitTolerance {
						t.Errorf("the two clips' logits differ by only %.3g", dc)
					}
				}
			})
		}
	}
}

// Each half holds only the weights it reads, and together exactly the
// whole graph's.
func TestSplitWeights(t *testing.T) {
	whole, front, back := buildAll(t, randomWeights(true))
	names := func(m *onnx.Model) map[string]bool {
		out := map[string]bool{}
		for _, t := range m.Graph.Initializers {
			out[t.Name] = true
		}
		return out
	}
	all, f, b := names(whole), names(front), names(back)
	for n := range f {
		if b[n] {
			t.Errorf("%s is in both halves", n)
		}
	}
	if len(f)+len(b) != len(all) {
		t.Errorf("front %d + back %d initializers, whole %d", len(f), len(b), len(all))
	}
	for _, n := range []string{"stem.0.weight", "stages.1.1.pw_conv.weight"} {
		if !f[n] {
			t.Errorf("front lacks %s", n)
		}
	}
	for _, n := range []string{ltaPath + ".weight", "stages.2.0.dw_conv.weight", "fc.weight"} {
		if !b[n] {
			t.Errorf("back lacks %s", n)
		}
	}
}

// WriteFile writes the halves beside the model; its manifest names them,
// and they say which half they are and that the weights are untrained.
func TestWriteFileHalves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := WriteFile(randomWeights(false), BuildOptions{InputSize: testSize}, path); err != nil {
		t.Fatal(err)
	}
	man, err := onnx.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	fc := man.FeatureCache
	want := featureShape(testSize)
	if fc == nil || fc.Front != "m.front.onnx" || fc.Back != "m.back.onnx" || fmt.Sprint(fc.FeatureShape) != fmt.Sprint(want) {
		t.Fatalf("feature_cache %+v, want m.front.onnx, m.back.onnx, %v", fc, want)
	}
	if testSize == 32 && fmt.Sprint(want) != "[256 4 4]" {
		t.Errorf("feature shape %v at 32×32, want [256 4 4]", want)
	}
	for part, name := range map[string]string{"front": fc.Front, "back": fc.Back} {
		m, err := onnx.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(fc.Build, "fnv1a64:") {
			t.Errorf("build %q", fc.Build)
		}
		for k, v := range map[string]string{models.PartKey: part, models.UntrainedKey: "true", models.NameKey: "pptsmv2", models.BuildKey: fc.Build} {
			if got, _ := m.MetadataValue(k); got != v {
				t.Errorf("%s: %s = %q, want %q", name, k, got, v)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "m.onnx.front.onnx")); err == nil {
		t.Error("half named after the full file name")
	}
}

// The build fingerprint follows the weights: another seed, or the same
// weights at another size, is another build.
func TestBuildID(t *testing.T) {
	a, b := randomWeights(false), RandomWeights(2, false)
	opts := BuildOptions{InputSize: 32}
	if id, again := buildID(a, opts), buildID(RandomWeights(1, false), opts); id != again {
		t.Errorf("the same weights have two build IDs: %s and %s", id, again)
	}
	if buildID(a, opts) == buildID(b, opts) {
		t.Error("two seeds have the same build ID")
	}
	if buildID(a, opts) == buildID(a, BuildOptions{InputSize: 64}) {
		t.Error("two input sizes have the same build ID")
	}
}
