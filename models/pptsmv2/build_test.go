package pptsmv2

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// The graph's initializers are exactly the folded parameters of §5.1; the
// dropout's 0.8 and the shapes, slice indices and pads listed here are
// Constant nodes, nothing else.
func TestBuildParamCount(t *testing.T) {
	ints := map[string]int64{
		"shape.frames": 4, "shape.clips": 5, "shape.shifted_frames": 4, "shape.segments": 3,
		"temporal_shift.later.starts": 2, "temporal_shift.later.ends": 2, "temporal_shift.later.axes": 2,
		"temporal_shift.later.pads":     10,
		"temporal_shift.earlier.starts": 2, "temporal_shift.earlier.ends": 2, "temporal_shift.earlier.axes": 2,
		"temporal_shift.earlier.pads": 10,
		"temporal_shift.kept.starts":  1, "temporal_shift.kept.ends": 1, "temporal_shift.kept.axes": 1,
	}
	for _, lta := range []bool{false, true} {
		t.Run(ltaName(lta), func(t *testing.T) {
			want := maps(ints)
			if lta {
				want["shape.attention"] = 5
			}
			m, err := Build(randomWeights(lta), BuildOptions{InputSize: testSize})
			if err != nil {
				t.Fatal(err)
			}
			var floats int64
			for _, init := range m.Graph.Initializers {
				if init.DataType != onnx.Float {
					t.Errorf("initializer %s is %v, want float32", init.Name, init.DataType)
				}
				floats += init.NumElements()
			}
			got := map[string]int64{}
			for _, n := range m.Graph.Nodes {
				if n.OpType != "Constant" {
					continue
				}
				v := n.Attrs[0].T
				switch {
				case n.Outputs[0] == "dropout.scale":
					if v.DataType != onnx.Float || len(v.Floats) != 1 || v.Floats[0] != 0.8 {
						t.Errorf("dropout.scale = %+v, want the scalar 0.8", v)
					}
				case v.DataType == onnx.Int64:
					got[n.Outputs[0]] = v.NumElements()
				default:
					t.Errorf("constant %s is %v", n.Outputs[0], v.DataType)
				}
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("int64 constant %s has %d elements, want %d", k, got[k], n)
				}
			}
			if len(got) != len(want) {
				t.Errorf("int64 constants %v, want %v", got, want)
			}
			c := Count(testSize, lta)
			if floats != c.ParamsFolded {
				t.Errorf("float initializers hold %d values, want the %d folded params", floats, c.ParamsFolded)
			}
			if p := m.Graph.ParamCount(); p != c.ParamsFolded {
				t.Errorf("ParamCount %d, want %d", p, c.ParamsFolded)
			}
			// One Conv node per row of the §1.3 layer table.
			convs := 0
			for _, n := range m.Graph.Nodes {
				if n.OpType == "Conv" {
					convs++
				}
			}
			if convs != 46 {
				t.Errorf("%d Conv nodes, want 46", convs)
			}
		})
	}
}

func maps(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// The manifest describes the model for the server.
func TestBuildManifest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		w         *Weights
		opts      BuildOptions
		size      int
		shortSide int
		untrained bool
	}{
		{"random at 224", randomWeights(true), BuildOptions{}, 224, 256, true},
		{"loaded at 64", withLayout(randomWeights(false), LayoutDML),
			BuildOptions{InputSize: 64, Name: "pptsmv2-small"}, 64, 73, false},
		{"marked untrained", withLayout(randomWeights(false), LayoutPlain),
			BuildOptions{InputSize: 96, Untrained: true}, 96, 110, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Build(tc.w, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			man, err := onnx.ManifestFromModel(m)
			if err != nil {
				t.Fatal(err)
			}
			wantName := tc.opts.Name
			if wantName == "" {
				wantName = "pptsmv2"
			}
			if man.Name != wantName || man.Segments != 16 || man.InputSize != tc.size || man.ShortSide != tc.shortSide ||
				man.Untrained != tc.untrained || man.Output != models.OutputLogits ||
				man.MACsPerClip != Count(tc.size, tc.w.LTA).MACsPerClip ||
				man.Mean != models.ImageNetMean || man.Std != models.ImageNetStd ||
				!slices.Equal(man.Labels, models.Kinetics400()) {
				t.Errorf("manifest %+v", man)
			}
			if got := strings.Contains(man.Description, "UNTRAINED"); got != tc.untrained {
				t.Errorf("description %q", man.Description)
			}
			if m.Opset("") != 17 {
				t.Errorf("opset %d, want 17", m.Opset(""))
			}
			wantIn := []onnx.Dim{{Param: "N"}, {Value: 16}, {Value: 3}, {Value: int64(tc.size)}, {Value: int64(tc.size)}}
			if in := m.Graph.Inputs; len(in) != 1 || in[0].Name != "input" || !slices.Equal(in[0].Shape, wantIn) {
				t.Errorf("inputs %+v", in)
			}
			wantOut := []onnx.Dim{{Param: "N"}, {Value: 400}}
			if out := m.Graph.Outputs; len(out) != 1 || out[0].Name != "logits" || !slices.Equal(out[0].Shape, wantOut) {
				t.Errorf("outputs %+v", out)
			}
		})
	}
	if got := Count(224, true).MACsPerClip; got != 9_482_039_552 {
		t.Errorf("MACs per clip with LTA at 224: %d", got)
	}
}

// withLayout returns a copy of w that says it came from layout.
func withLayout(w *Weights, layout string) *Weights {
	c := *w
	c.Layout = layout
	return &c
}

func TestBuildRejects(t *testing.T) {
	tamper := func(f func(w *Weights)) *Weights {
		w := *randomWeights(false)
		w.Params = slices.Clone(w.Params)
		f(&w)
		return &w
	}
	for _, tc := range []struct {
		name string
		w    *Weights
		opts BuildOptions
		want string
	}{
		{"no weights", nil, BuildOptions{}, "build pptsmv2: no weights"},
		{"negative size", randomWeights(false), BuildOptions{InputSize: -1}, "input size must be ≥ 1, got -1"},
		{"LTA without its tensors", tamper(func(w *Weights) { w.LTA = true }), BuildOptions{},
			"weights have 93 tensors, want 95 (LTA true)"},
		{"renamed tensor", tamper(func(w *Weights) { w.Params[0].Name = "stem.0.conv.weight" }), BuildOptions{},
			"weights tensor 0 is stem.0.conv.weight [32 3 3 3] with 864 values, want stem.0.weight [32 3 3 3]"},
		{"short tensor", tamper(func(w *Weights) { w.Params[1].Data = w.Params[1].Data[:3] }), BuildOptions{},
			"weights tensor 1 is stem.0.bias [32] with 3 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.w, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteFileProgress(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pptsmv2.onnx")
	var steps []string
	last, lastTotal := 0, 0
	opts := BuildOptions{InputSize: 32, Progress: func(done, total int, what string) {
		if done != last+1 || (lastTotal != 0 && total != lastTotal) || done > total {
			t.Errorf("progress %d/%d after %d/%d", done, total, last, lastTotal)
		}
		last, lastTotal = done, total
		steps = append(steps, what)
	}}
	if err := WriteFile(randomWeights(false), opts, path); err != nil {
		t.Fatal(err)
	}
	if last != lastTotal || !strings.HasPrefix(steps[len(steps)-1], "write ") || !slices.Contains(steps, "stages.2.5") {
		t.Errorf("progress ended at %d/%d with steps %q", last, lastTotal, steps)
	}
	m, err := onnx.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.ManifestFromModel(m); err != nil {
		t.Error(err)
	}
}

// The real size: 224×224 random weights build, load in ONNX Runtime with
// the documented shapes, and give finite logits.
func TestFullSize(t *testing.T) {
	m, err := Build(randomWeights(true), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	man, err := onnx.ManifestFromModel(m)
	if err != nil || !man.Untrained {
		t.Fatalf("manifest %+v (%v), want untrained", man, err)
	}
	logits := runModel(t, m, testClips(1, DefaultInputSize), 1)
	if len(logits) != NumClasses {
		t.Fatalf("%d logits, want %d", len(logits), NumClasses)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range logits {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("logit %v", v)
		}
		lo, hi = min(lo, float64(v)), max(hi, float64(v))
	}
	t.Logf("logits in [%.3g, %.3g]", lo, hi)
	if hi-lo < 1e-3 {
		t.Errorf("logits barely differ: [%g, %g]", lo, hi)
	}
}
