package paddle

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	keys, ts := sampleTensors()
	// Enough data to span several protocol 4 frames and one array written
	// outside them.
	big := make([]float32, 20000)
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	keys = append(keys, "backbone.big")
	ts["backbone.big"] = Float32Tensor([]int{100, 200}, big)

	for _, c := range writeCases() {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, keys, ts, c.opts); err != nil {
				t.Fatal(err)
			}
			ck, err := Read(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ck.Keys, keys) {
				t.Fatalf("keys %v, want %v", ck.Keys, keys)
			}
			for _, k := range keys {
				assertTensor(t, k, ck.Tensors[k], ts[k])
			}
			if c.opts.NoParamNames {
				if ck.ParamNames != nil {
					t.Errorf("ParamNames = %v, want none", ck.ParamNames)
				}
			} else if got := ck.ParamNames["backbone.fc.weight"]; got != "linear_0.w_0" || len(ck.ParamNames) != len(keys) {
				t.Errorf("ParamNames[fc.weight] = %q (%d names), want linear_0.w_0 (%d)", got, len(ck.ParamNames), len(keys))
			}
		})
	}
}

// assertTensor compares a tensor read back with the one written.
func assertTensor(t *testing.T, key string, got, want Tensor) {
	t.Helper()
	if !slices.Equal(got.Shape, want.Shape) || got.DType != want.DType {
		t.Errorf("%s: %v %s, want %v %s", key, got.Shape, got.DType, want.Shape, want.DType)
		return
	}
	if want.DType == "<f4" {
		if got.Raw != nil || len(got.Data) != len(want.Data) || !bytes.Equal(float32sToLE(got.Data), float32sToLE(want.Data)) {
			t.Errorf("%s: Data %v Raw %v, want Data %v", key, got.Data, got.Raw, want.Data)
		}
		return
	}
	if got.Data != nil || !bytes.Equal(got.Raw, want.Raw) {
		t.Errorf("%s: Raw % x, want % x", key, got.Raw, want.Raw)
	}
}

func TestParamNamesOption(t *testing.T) {
	keys, ts := sampleTensors()
	var buf bytes.Buffer
	err := Write(&buf, keys, ts, WriteOptions{ParamNames: map[string]string{"backbone.fc.bias": "fc_7.b_0"}})
	if err != nil {
		t.Fatal(err)
	}
	ck, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"backbone.fc.bias":             "fc_7.b_0",
		"backbone.fc.weight":           "linear_0.w_0",
		"backbone.stem.0.conv.weight":  "conv2d_0.w_0",
		"backbone.stem.0.bn._variance": "batch_norm2d_0.w_2",
	} {
		if got := ck.ParamNames[k]; got != want {
			t.Errorf("ParamNames[%s] = %q, want %q", k, got, want)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	f := Float32Tensor([]int{2}, []float32{1, 2})
	cases := []struct {
		name    string
		keys    []string
		ts      map[string]Tensor
		opts    WriteOptions
		wantErr string
	}{
		{"missing tensor", []string{"a", "b"}, map[string]Tensor{"a": f, "c": f}, WriteOptions{}, `key "b" has no tensor`},
		{"extra tensor", []string{"a"}, map[string]Tensor{"a": f, "b": f}, WriteOptions{}, "1 keys for 2 tensors"},
		{"duplicate key", []string{"a", "a"}, map[string]Tensor{"a": f, "b": f}, WriteOptions{}, `key "a" is listed twice`},
		{"reserved key", []string{paramNamesKey}, map[string]Tensor{paramNamesKey: f}, WriteOptions{}, "reserved"},
		{"short data", []string{"a"}, map[string]Tensor{"a": Float32Tensor([]int{3}, []float32{1})}, WriteOptions{}, `tensor "a": shape [3] needs 3 float32 values, Data has 1`},
		{"short raw", []string{"a"}, map[string]Tensor{"a": {Shape: []int{2}, DType: "<f8", Raw: make([]byte, 8)}}, WriteOptions{}, "shape [2] and dtype <f8 need 16 bytes, Raw has 8"},
		{"bad dtype", []string{"a"}, map[string]Tensor{"a": {Shape: []int{1}, DType: "<U4", Raw: make([]byte, 16)}}, WriteOptions{}, `unsupported numpy dtype "<U4"`},
		{"negative dim", []string{"a"}, map[string]Tensor{"a": {Shape: []int{-1}, DType: "<f4"}}, WriteOptions{}, "invalid shape [-1]"},
		{"protocol", []string{"a"}, map[string]Tensor{"a": f}, WriteOptions{Protocol: 5}, "protocol 5: want 2, 3 or 4"},
		{"numpy core", []string{"a"}, map[string]Tensor{"a": f}, WriteOptions{NumpyCore: "numpy"}, `NumpyCore "numpy"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, c.keys, c.ts, c.opts)
			if err == nil || !strings.HasPrefix(err.Error(), "write pdparams: ") || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	keys, ts := sampleTensors()
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pdparams")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, keys, ts, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	ck, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ck.Keys, keys) {
		t.Errorf("keys %v, want %v", ck.Keys, keys)
	}

	// A failed write leaves the old file and no temporary behind.
	err = WriteFile(path, []string{"x"}, map[string]Tensor{"x": {Shape: []int{2}, DType: "<f4"}}, WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want one naming %s", err, path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(entries))
	}
	if _, err := ReadFile(path); err != nil {
		t.Errorf("old file damaged: %v", err)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "m.pdparams"), keys, ts, WriteOptions{}); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestEncodeLong(t *testing.T) {
	// Values from CPython's pickle.encode_long.
	for v, want := range map[int64]string{
		0:            "",
		255:          "\xff\x00",
		-256:         "\x00\xff",
		1 << 31:      "\x00\x00\x00\x80\x00",
		-1<<31 - 1:   "\xff\xff\xff\x7f\xff",
		1<<63 - 1:    "\xff\xff\xff\xff\xff\xff\xff\x7f",
		-1 << 63:     "\x00\x00\x00\x00\x00\x00\x00\x80",
		-(1 << 40):   "\x00\x00\x00\x00\x00\xff",
		1<<40 + 0x7f: "\x7f\x00\x00\x00\x00\x01",
	} {
		if got := string(encodeLong(v)); got != want {
			t.Errorf("encodeLong(%d) = %q, want %q", v, got, want)
		}
	}
}
