package pptsmv2

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models/onnx"
	"github.com/actiond/actiond/models/paddle"
)

// The numeric tests run testSize frames (64×64, stage 4 at 2×2; 32×32
// under the race detector), a batch of two different clips, on one seeded
// checkpoint.
const (
	testSeed  = 20240305
	testBatch = 2
	// tolerance bounds max|ORT - reference| / max|reference| over the
	// logits: float32 with folded weights against float64 un-folded.
	tolerance = 1e-4
)

// testClips returns n different clips [n, 16, 3, s, s]: noise in the
// range of ImageNet-normalised pixels, plus a moving wave so that frames
// differ in a way the temporal parts can see, with a colour cast and
// contrast of its own per clip.
func testClips(n, s int) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]float32, n*Segments*3*s*s)
	i := 0
	for clip := range n {
		contrast := 1 + float64(clip)
		for f := range Segments {
			for c := range 3 {
				cast := math.Sin(float64(3*clip+c)) * 0.8
				for y := range s {
					for x := range s {
						wave := math.Sin(float64(x+(clip+1)*y+(clip+1)*f)/float64(s)*6 + float64(c))
						out[i] = float32(cast + contrast*(wave+rng.Float64()*2-1)*0.7)
						i++
					}
				}
			}
		}
	}
	return out
}

// relative strips a layout's prefix from a checkpoint's backbone keys and
// drops the rest, for the reference.
func relative(tensors map[string]paddle.Tensor, prefix string) map[string]paddle.Tensor {
	out := make(map[string]paddle.Tensor)
	for k, t := range tensors {
		if rel, ok := strings.CutPrefix(k, prefix); ok {
			out[rel] = t
		}
	}
	return out
}

var (
	refMu    sync.Mutex
	refCache = map[bool][]float64{}

	weightsMu    sync.Mutex
	weightsCache = map[bool]*Weights{}
)

// randomWeights is RandomWeights(1, lta), made once per test binary. Tests
// must not modify it.
func randomWeights(lta bool) *Weights {
	weightsMu.Lock()
	defer weightsMu.Unlock()
	if weightsCache[lta] == nil {
		weightsCache[lta] = RandomWeights(1, lta)
	}
	return weightsCache[lta]
}

// referenceLogits runs the reference on RandomCheckpoint(testSeed, lta),
// once per lta for the whole test binary.
func referenceLogits(t *testing.T, lta bool) []float64 {
	t.Helper()
	refMu.Lock()
	defer refMu.Unlock()
	if l, ok := refCache[lta]; ok {
		return l
	}
	_, tensors := RandomCheckpoint(testSeed, lta, LayoutPlain)
	r := reference{t: relative(tensors, "backbone.")}
	l := r.forward(testClips(testBatch, testSize), testBatch, testSize)
	refCache[lta] = l
	return l
}

// runModel writes m and runs it on input with ONNX Runtime.
func runModel(t *testing.T, m *onnx.Model, input []float32, n int) []float32 {
	t.Helper()
	// Not m.WriteFile: its fsync costs seconds per model on some disks.
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sess, err := engine.Open(path, engine.Options{Threads: 2})
	if err != nil {
		t.Fatalf("open model (set %s if ONNX Runtime is not found): %v", engine.LibraryEnv, err)
	}
	defer sess.Close()
	out, err := sess.Run(input, n)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// buildAndRun builds w at the test size and runs the test clips.
func buildAndRun(t *testing.T, w *Weights) []float32 {
	t.Helper()
	m, err := Build(w, BuildOptions{InputSize: testSize})
	if err != nil {
		t.Fatal(err)
	}
	out := runModel(t, m, testClips(testBatch, testSize), testBatch)
	if len(out) != testBatch*NumClasses {
		t.Fatalf("%d logits, want %d", len(out), testBatch*NumClasses)
	}
	return out
}

// relDiff is max|got - want| / max|want|.
func relDiff(got []float32, want []float64) float64 {
	var d, m float64
	for i := range want {
		d = max(d, math.Abs(float64(got[i])-want[i]))
		m = max(m, math.Abs(want[i]))
	}
	return d / m
}

// The built graph, run by ONNX Runtime, computes what the un-folded
// training-form network computes.
func TestGraphMatchesReference(t *testing.T) {
	for _, lta := range []bool{false, true} {
		t.Run(ltaName(lta), func(t *testing.T) {
			keys, tensors := RandomCheckpoint(testSeed, lta, LayoutPlain)
			w, err := LoadWeights(&paddle.Checkpoint{Keys: keys, Tensors: tensors})
			if err != nil {
				t.Fatal(err)
			}
			if w.LTA != lta || w.Layout != LayoutPlain {
				t.Fatalf("loaded LTA %t layout %q, want %t %q", w.LTA, w.Layout, lta, LayoutPlain)
			}
			got := buildAndRun(t, w)
			want := referenceLogits(t, lta)
			d := relDiff(got, want)
			t.Logf("max |ORT - reference| / max |reference| = %.2g (logits rms %.3g)", d, rms(want))
			if d > tolerance || math.IsNaN(d) {
				t.Errorf("relative difference %.3g > %g", d, tolerance)
			}
			// The two clips' logits differ by far more than the tolerance,
			// so a mix-up of the batch axis would fail the check above.
			if dc := relDiff(got[:NumClasses], want[NumClasses:]); dc < 10*tolerance {
				t.Errorf("the two clips' logits differ by only %.3g", dc)
			}
		})
	}
}

func ltaName(lta bool) string {
	if lta {
		return "LTA"
	}
	return "no LTA"
}
