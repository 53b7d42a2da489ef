package pptsmv2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actiond/actiond/models/paddle"
)

// writeCheckpoint writes a checkpoint to a temporary .pdparams file. (Not
// paddle.WriteFile: its fsync costs seconds per file on some disks.)
func writeCheckpoint(t *testing.T, keys []string, tensors map[string]paddle.Tensor, opts paddle.WriteOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := paddle.Write(&b, keys, tensors, opts); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ckpt.pdparams")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// The spec's §2.2 table: tensors and elements per released file.
func TestRandomCheckpointSizes(t *testing.T) {
	for _, tc := range []struct {
		layout   string
		lta      bool
		tensors  int
		elements int
	}{
		{LayoutPlain, false, 278, 6_072_592},
		{LayoutPlain, true, 280, 6_072_864},
		{LayoutDML, true, 557, 30_472_976},
		{LayoutStudent, true, 280, 6_072_864},
	} {
		t.Run(tc.layout+" "+ltaName(tc.lta), func(t *testing.T) {
			keys, tensors := RandomCheckpoint(1, tc.lta, tc.layout)
			n := 0
			for _, k := range keys {
				n += tensors[k].NumElements()
			}
			if len(keys) != tc.tensors || len(tensors) != tc.tensors || n != tc.elements {
				t.Errorf("%d keys, %d tensors, %d elements; want %d, %d", len(keys), len(tensors), n, tc.tensors, tc.elements)
			}
		})
	}
}

func TestRandomWeightsDeterministic(t *testing.T) {
	a, b, c := RandomWeights(3, true), RandomWeights(3, true), RandomWeights(4, true)
	if a.Layout != LayoutRandom || !a.LTA {
		t.Errorf("layout %q LTA %t, want %q true", a.Layout, a.LTA, LayoutRandom)
	}
	if !sameParams(a, b) {
		t.Error("the same seed gave different weights")
	}
	if sameParams(a, c) {
		t.Error("different seeds gave the same weights")
	}
	// Every value is finite, and BatchNorm folding did not blow up.
	for _, p := range a.Params {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.Abs(float64(v)) > 100 {
				t.Fatalf("%s holds %v", p.Name, v)
			}
		}
	}
}

// sameParams reports whether two sets of weights are bit for bit equal.
func sameParams(a, b *Weights) bool {
	if a.LTA != b.LTA || len(a.Params) != len(b.Params) {
		return false
	}
	for i, p := range a.Params {
		q := b.Params[i]
		if p.Name != q.Name || !slices.Equal(p.Shape, q.Shape) || len(p.Data) != len(q.Data) {
			return false
		}
		for j := range p.Data {
			if math.Float32bits(p.Data[j]) != math.Float32bits(q.Data[j]) {
				return false
			}
		}
	}
	return true
}

// Checkpoints written as .pdparams in every layout, with and without LTA,
// in pickle protocols 2 and 4, load and give the reference's logits.
func TestCheckpointFiles(t *testing.T) {
	for _, layout := range []string{LayoutPlain, LayoutDML, LayoutStudent} {
		for _, lta := range []bool{false, true} {
			for _, protocol := range []int{2, 4} {
				name := layout + "/" + ltaName(lta) + "/protocol " + string(rune('0'+protocol))
				if raceEnabled && !raceFileCells[name] {
					continue
				}
				t.Run(name, func(t *testing.T) {
					keys, tensors := RandomCheckpoint(testSeed, lta, layout)
					opts := paddle.WriteOptions{Protocol: protocol}
					if protocol == 4 && layout == LayoutStudent {
						opts.NumpyCore = "numpy._core" // as NumPy 2 writes it
					}
					path := writeCheckpoint(t, keys, tensors, opts)
					w, err := LoadWeightsFile(path)
					if err != nil {
						t.Fatal(err)
					}
					if w.Layout != layout || w.LTA != lta {
						t.Fatalf("loaded layout %q LTA %t, want %q %t", w.Layout, w.LTA, layout, lta)
					}
					d := relDiff(buildAndRun(t, w), referenceLogits(t, lta))
					t.Logf("max |ORT - reference| / max |reference| = %.2g", d)
					if d > tolerance || math.IsNaN(d) {
						t.Errorf("relative difference %.3g > %g", d, tolerance)
					}
				})
			}
		}
	}
}

// raceFileCells are the cells of TestCheckpointFiles run under the race
// detector, where the pickle codec is slow: each layout, LTA setting and
// protocol once, the 122 MB DML file as released.
var raceFileCells = map[string]bool{
	"plain/no LTA/protocol 2": true,
	"student/LTA/protocol 4":  true,
	"dml/LTA/protocol 4":      true,
}

// f64 returns t as a float64 tensor of the same shape and values.
func f64(t paddle.Tensor) paddle.Tensor {
	raw := make([]byte, 8*len(t.Data))
	for i, v := range t.Data {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(float64(v)))
	}
	return paddle.Tensor{Shape: t.Shape, DType: "<f8", Raw: raw}
}

// Damaged checkpoints fail with one error that names every offender.
func TestLoadErrors(t *testing.T) {
	type damage func(keys []string, tensors map[string]paddle.Tensor) []string
	drop := func(name string) damage {
		return func(keys []string, tensors map[string]paddle.Tensor) []string {
			delete(tensors, name)
			for i, k := range keys {
				if k == name {
					return append(keys[:i:i], keys[i+1:]...)
				}
			}
			return keys
		}
	}
	extra := func(name string) damage {
		return func(keys []string, tensors map[string]paddle.Tensor) []string {
			tensors[name] = paddle.Float32Tensor([]int{4}, make([]float32, 4))
			return append(keys, name)
		}
	}
	reshape := func(name string, shape []int) damage {
		return func(keys []string, tensors map[string]paddle.Tensor) []string {
			tensors[name] = paddle.Float32Tensor(shape, make([]float32, numel(shape)))
			return keys
		}
	}
	double := func(name string) damage {
		return func(keys []string, tensors map[string]paddle.Tensor) []string {
			tensors[name] = f64(tensors[name])
			return keys
		}
	}
	const (
		missing    = "missing backbone.fc.bias"
		unexpected = "unexpected backbone.stages.0.0.extra.weight"
		shape      = "backbone.stem.0.conv.weight has shape [32 3 5 5], want [32 3 3 3]"
		dtype      = "backbone.last_conv.weight is <f8, want float32 (<f4)"
	)
	for _, tc := range []struct {
		name    string
		layout  string
		lta     bool
		damage  []damage
		want    []string
		problem int
		viaFile bool
	}{
		{"missing key", LayoutPlain, false, []damage{drop("backbone.fc.bias")}, []string{"1 problem: " + missing}, 1, false},
		{"unexpected backbone key", LayoutPlain, false, []damage{extra("backbone.stages.0.0.extra.weight")}, []string{unexpected}, 1, false},
		{"wrong shape", LayoutPlain, false, []damage{reshape("backbone.stem.0.conv.weight", []int{32, 3, 5, 5})}, []string{shape}, 1, false},
		{"float64 tensor", LayoutPlain, false, []damage{double("backbone.last_conv.weight")}, []string{dtype}, 1, true},
		{"all four at once", LayoutPlain, false, []damage{
			drop("backbone.fc.bias"),
			extra("backbone.stages.0.0.extra.weight"),
			reshape("backbone.stem.0.conv.weight", []int{32, 3, 5, 5}),
			double("backbone.last_conv.weight"),
		}, []string{"4 problems: ", missing, unexpected, shape, dtype}, 4, true},
		{"LTA weight without bias", LayoutStudent, true, []damage{drop("0.global_attention.fc.bias")},
			[]string{"missing 0.global_attention.fc.bias"}, 1, false},
		{"LTA bias without weight", LayoutStudent, true, []damage{drop("0.global_attention.fc.weight")},
			[]string{"unexpected 0.global_attention.fc.bias"}, 1, false},
		{"key outside the backbone", LayoutDML, true, []damage{extra("Student.1.fc.weight")},
			[]string{"unexpected Student.1.fc.weight"}, 1, false},
		{"rep branch missing", LayoutDML, true, []damage{drop("Student.0.stages.3.1.dw_conv_list.2.bn._variance")},
			[]string{"missing Student.0.stages.3.1.dw_conv_list.2.bn._variance"}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, tensors := RandomCheckpoint(1, tc.lta, tc.layout)
			for _, d := range tc.damage {
				keys = d(keys, tensors)
			}
			// In memory; through a file when the context matters.
			var (
				w       *Weights
				err     error
				context = "load pptsmv2 weights: "
			)
			if !tc.viaFile {
				w, err = LoadWeights(&paddle.Checkpoint{Keys: keys, Tensors: tensors})
			} else {
				path := writeCheckpoint(t, keys, tensors, paddle.WriteOptions{})
				w, err = LoadWeightsFile(path)
				context = "load pptsmv2 weights from " + path + ": "
			}
			if err == nil {
				t.Fatalf("loaded (LTA %t), want an error", w.LTA)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, context) {
				t.Errorf("error %q does not start with %q", msg, context)
			}
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q\ndoes not contain %q", msg, s)
				}
			}
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) != tc.problem {
				t.Errorf("error %q is not a *LoadError with %d problems", msg, tc.problem)
			}
		})
	}
}

// Files that are no checkpoint at all, or of another model.
func TestLoadBadFiles(t *testing.T) {
	dir := t.TempDir()
	keys, tensors := RandomCheckpoint(1, false, LayoutPlain)
	good := writeCheckpoint(t, keys, tensors, paddle.WriteOptions{})
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other := writeCheckpoint(t, []string{"conv1.weight", "conv1.bias"}, map[string]paddle.Tensor{
		"conv1.weight": paddle.Float32Tensor([]int{2, 2}, make([]float32, 4)),
		"conv1.bias":   paddle.Float32Tensor([]int{2}, make([]float32, 2)),
	}, paddle.WriteOptions{})
	mixed := writeCheckpoint(t, []string{"backbone.fc.bias", "0.fc.bias"}, map[string]paddle.Tensor{
		"backbone.fc.bias": paddle.Float32Tensor([]int{400}, make([]float32, 400)),
		"0.fc.bias":        paddle.Float32Tensor([]int{400}, make([]float32, 400)),
	}, paddle.WriteOptions{})
	for _, tc := range []struct {
		name   string
		path   string
		is     error
		substr []string
	}{
		{"truncated", file("truncated.pdparams", data[:len(data)/2]), paddle.ErrTruncated, nil},
		{"cut after the header", file("header.pdparams", data[:40]), paddle.ErrTruncated, nil},
		{"not a pickle", file("text.pdparams", []byte("this is not a checkpoint\n")), paddle.ErrNotPickle, nil},
		{"empty", file("empty.pdparams", nil), paddle.ErrNotPickle, nil},
		{"no such file", filepath.Join(dir, "absent.pdparams"), os.ErrNotExist, nil},
		{"another model", other, nil, []string{
			`no key starts with "backbone.", "Student.0.", "0."`, `2 keys, the first "conv1.weight", "conv1.bias"`,
		}},
		{"two layouts", mixed, nil, []string{"several layouts (plain, student)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadWeightsFile(tc.path)
			if err == nil {
				t.Fatal("loaded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "load pptsmv2 weights") {
				t.Errorf("error %q lacks context", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, s := range tc.substr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\ndoes not contain %q", err, s)
				}
			}
		})
	}
	if _, err := LoadWeights(nil); err == nil {
		t.Error("LoadWeights(nil) succeeded")
	}
}

// The teacher's tensors and the stale dw_conv of rep blocks are never read:
// changing them changes nothing, while changing a rep branch does.
func TestIgnoredTensors(t *testing.T) {
	keys, tensors := RandomCheckpoint(testSeed, true, LayoutDML)
	load := func() *Weights {
		t.Helper()
		w, err := LoadWeights(&paddle.Checkpoint{Keys: keys, Tensors: tensors})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	before := load()
	logits := buildAndRun(t, before)

	// New values: a random run, repeated (the teacher has 24M values).
	rng := rand.New(rand.NewPCG(9, 9))
	noise := make([]float32, 1009)
	for i := range noise {
		noise[i] = float32(rng.NormFloat64() * 10)
	}
	changed := 0
	for _, k := range keys {
		isStale := strings.HasPrefix(k, "Student.0.stages.") && strings.Contains(k, ".dw_conv.") &&
			!strings.Contains(k, ".dw_conv.conv.") && !strings.Contains(k, ".dw_conv.bn.")
		if !strings.HasPrefix(k, teacherPrefix) && !isStale {
			continue
		}
		old := tensors[k]
		v := make([]float32, len(old.Data))
		for i := copy(v, noise[rng.IntN(len(noise)):]); i < len(v); i += copy(v[i:], noise) {
		}
		tensors[k] = paddle.Float32Tensor(old.Shape, v)
		changed++
	}
	if want := 277 + 2*8; changed != want {
		t.Fatalf("changed %d tensors, want %d (teacher, and dw_conv weight and bias of 8 rep blocks)", changed, want)
	}
	after := load()
	if !sameParams(before, after) {
		t.Error("teacher or stale dw_conv values changed the weights")
	}
	if got := buildAndRun(t, after); relDiff(got, float64s(logits)) != 0 {
		t.Error("teacher or stale dw_conv values changed the logits")
	}

	// A tensor that is used does change them.
	k := "Student.0.stages.2.1.dw_conv_list.1.bn._mean"
	v := make([]float32, len(tensors[k].Data))
	for i := range v {
		v[i] = 0.5
	}
	tensors[k] = paddle.Float32Tensor(tensors[k].Shape, v)
	if relDiff(buildAndRun(t, load()), float64s(logits)) == 0 {
		t.Errorf("changing %s changed nothing", k)
	}
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
