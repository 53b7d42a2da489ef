package engine_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models/onnx"
)

// affineModel writes y = x*scale + bias with input x of the given shape
// (-1 = symbolic) and returns its path.
func affineModel(t *testing.T, shape []int64, scale, bias float32) string {
	t.Helper()
	dims := func(s []int64) []onnx.Dim {
		out := make([]onnx.Dim, len(s))
		for i, d := range s {
			if d < 0 {
				out[i] = onnx.Dim{Param: string(rune('N' + i))}
			} else {
				out[i] = onnx.Dim{Value: d}
			}
		}
		return out
	}
	m := &onnx.Model{
		OpsetImports: []onnx.OpsetID{{Version: 17}},
		ProducerName: "engine_test",
		Graph: onnx.Graph{
			Name: "affine",
			Nodes: []onnx.Node{
				{OpType: "Mul", Inputs: []string{"x", "scale"}, Outputs: []string{"xs"}},
				{OpType: "Add", Inputs: []string{"xs", "bias"}, Outputs: []string{"y"}},
			},
			Initializers: []onnx.Tensor{
				onnx.FloatTensor("scale", nil, []float32{scale}),
				onnx.FloatTensor("bias", nil, []float32{bias}),
			},
			Inputs:  []onnx.ValueInfo{{Name: "x", ElemType: onnx.Float, Shape: dims(shape)}},
			Outputs: []onnx.ValueInfo{{Name: "y", ElemType: onnx.Float, Shape: dims(shape)}},
		},
	}
	p := filepath.Join(t.TempDir(), "affine.onnx")
	if err := m.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func openSession(t *testing.T, path string) *engine.Session {
	t.Helper()
	s, err := engine.Open(path, engine.Options{Threads: 1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSessionRunsBatchesAndReusesTensors(t *testing.T) {
	s := openSession(t, affineModel(t, []int64{-1, 2, 3}, 2, 1))
	if got := s.Input().String(); got != "x [N,2,3]" {
		t.Errorf("input = %q, want x [N,2,3]", got)
	}
	for _, n := range []int{1, 2, 4, 1, 2} { // repeated sizes reuse tensors
		in := make([]float32, n*6)
		for i := range in {
			in[i] = float32(i*n) - 3
		}
		out, err := s.Run(in, n)
		if err != nil {
			t.Fatalf("batch %d: %v", n, err)
		}
		if len(out) != len(in) {
			t.Fatalf("batch %d: %d outputs, want %d", n, len(out), len(in))
		}
		for i := range in {
			if want := in[i]*2 + 1; out[i] != want {
				t.Fatalf("batch %d: out[%d] = %v, want %v", n, i, out[i], want)
			}
		}
	}
}

// RunInto writes the output into the caller's array when it has room, with
// the values Run gives; without room it allocates.
func TestSessionRunIntoWritesInPlace(t *testing.T) {
	s := openSession(t, affineModel(t, []int64{-1, 2, 3}, 2, 1))
	in := []float32{-3, -2, -1, 0, 1, 2}
	dst := make([]float32, 6)
	out, err := s.RunInto(in, 1, dst)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &dst[0] || len(out) != 6 {
		t.Fatalf("RunInto returned %d values in another array, want dst", len(out))
	}
	for i, v := range in {
		if want := v*2 + 1; dst[i] != want {
			t.Fatalf("dst[%d] = %v, want %v", i, dst[i], want)
		}
	}
	if out, err := s.RunInto(in, 1, make([]float32, 2)); err != nil || len(out) != 6 || out[5] != 5 {
		t.Fatalf("RunInto into a short slice: %v, %v; want the 6 values in a new array", out, err)
	}
}

func TestSessionShapeErrorsNameModelAndShapes(t *testing.T) {
	path := affineModel(t, []int64{-1, 2, 3}, 1, 0)
	s := openSession(t, path)
	tests := []struct {
		name  string
		in    []float32
		shape []int64
		want  string
	}{
		{"wrong rank", make([]float32, 6), []int64{6}, `model "affine.onnx": input x expects shape [N,2,3], given [6]`},
		{"wrong axis", make([]float32, 8), []int64{1, 2, 4}, `expects shape [N,2,3], given [1,2,4]`},
		{"wrong count", make([]float32, 5), []int64{1, 2, 3}, `input x of shape [1,2,3] needs 6 values, given 5`},
		{"zero batch", nil, []int64{0, 2, 3}, `given [0,2,3]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.RunShape(tt.in, tt.shape)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := s.Run(make([]float32, 7), 1); err == nil || !strings.Contains(err.Error(), "needs 6 values, given 7") {
		t.Fatalf("Run with 7 values: err = %v", err)
	}
}

func TestSessionFreeInnerAxis(t *testing.T) {
	s := openSession(t, affineModel(t, []int64{-1, -1}, 3, 0))
	if _, err := s.Run(make([]float32, 4), 1); err == nil || !strings.Contains(err.Error(), "free axis 1") {
		t.Fatalf("Run on [N,?]: err = %v, want a free-axis error", err)
	}
	out, shape, err := s.RunShape([]float32{1, 2, 3, 4, 5, 6}, []int64{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != 2 || shape[1] != 3 || out[5] != 18 {
		t.Fatalf("got %v %v, want shape [2 3] and out[5] = 18", out, shape)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := engine.Open(filepath.Join(t.TempDir(), "missing.onnx"), engine.Options{}); err == nil || !strings.Contains(err.Error(), `open model "missing.onnx"`) {
		t.Errorf("missing file: err = %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.onnx")
	os.WriteFile(junk, []byte("this is not a model"), 0o644)
	if _, err := engine.Open(junk, engine.Options{}); err == nil || !strings.Contains(err.Error(), `open model "junk.onnx"`) {
		t.Errorf("junk file: err = %v", err)
	}
}

// TestRuntimeMissing runs this test binary again with ACTIOND_ORT_LIB set to
// a file that is not ONNX Runtime, as a user with a broken setup would.
func TestRuntimeMissing(t *testing.T) {
	if os.Getenv("ENGINE_TEST_CHILD") == "1" {
		err := engine.Init("")
		if err == nil {
			os.Exit(3)
		}
		os.Stderr.WriteString(err.Error())
		os.Exit(1)
	}
	for _, tt := range []struct{ lib, want string }{
		{filepath.Join(t.TempDir(), "nope.so"), "nope.so"},
		{"/etc/hostname", `load "/etc/hostname"`},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRuntimeMissing$")
		cmd.Env = append(os.Environ(), "ENGINE_TEST_CHILD=1", engine.LibraryEnv+"="+tt.lib)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%s: child exit: %v, output %s", tt.lib, err, out)
		}
		msg := string(out)
		for _, want := range []string{"onnx runtime unavailable", tt.want, "make setup", "1.29.0"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: error %q does not mention %q", tt.lib, msg, want)
			}
		}
	}
}

func TestFindLibraryFromCheckout(t *testing.T) {
	t.Setenv(engine.LibraryEnv, "")
	p, err := engine.FindLibrary()
	if err != nil {
		t.Fatalf("FindLibrary from the checkout (after make setup): %v", err)
	}
	if !strings.HasSuffix(p, filepath.Join(engine.CacheDir, "libonnxruntime.so.1")) && !strings.Contains(p, "/lib") {
		t.Errorf("FindLibrary = %q", p)
	}
}
