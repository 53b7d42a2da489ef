package engine_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/actiond/actiond/engine"
)

// npyTestArrays are the shapes the round trips cover, with values that
// include the awkward float32s (negative zero, infinities, NaN, subnormal).
var npyTestArrays = []struct {
	name  string
	shape []int
}{
	{"scalar", []int{}},
	{"empty", []int{0}},
	{"vector", []int{5}},
	{"matrix", []int{2, 3}},
	{"clip", []int{1, 16, 3, 4, 4}},
	{"zero inner", []int{2, 0, 3}},
}

func npyTestData(n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.SmallestNonzeroFloat32, math.MaxFloat32, -1.5}
	data := make([]float32, n)
	for i := range data {
		if i < len(special) {
			data[i] = special[i]
		} else {
			data[i] = float32(i)*0.25 - 3
		}
	}
	return data
}

func sameBits(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func TestNPYRoundTrip(t *testing.T) {
	for _, tt := range npyTestArrays {
		t.Run(tt.name, func(t *testing.T) {
			data := npyTestData(numel(tt.shape))
			var buf bytes.Buffer
			if err := engine.WriteNPY(&buf, tt.shape, data); err != nil {
				t.Fatal(err)
			}
			if buf.Len()%64 != 4*len(data)%64 {
				t.Errorf("data does not start on a 64-byte boundary: %d bytes for %d values", buf.Len(), len(data))
			}
			shape, got, err := engine.ReadNPY(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) || shape == nil {
				t.Errorf("shape = %#v, want %#v", shape, tt.shape)
			}
			if !sameBits(got, data) {
				t.Errorf("data = %v, want %v", got, data)
			}

			path := filepath.Join(t.TempDir(), "a.npy")
			if err := engine.WriteNPYFile(path, tt.shape, data); err != nil {
				t.Fatal(err)
			}
			shape, got, err = engine.ReadNPYFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) || !sameBits(got, data) {
				t.Errorf("file round trip = %v %v, want %v %v", shape, got, tt.shape, data)
			}
		})
	}
}

// TestWriteNPYHeader pins the exact bytes numpy 1.24 writes for a (2, 3)
// float32 array: np.save(f, np.zeros((2, 3), "<f4")).
func TestWriteNPYHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := engine.WriteNPY(&buf, []int{2, 3}, make([]float32, 6)); err != nil {
		t.Fatal(err)
	}
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
	want := "\x93NUMPY\x01\x00\x76\x00" + dict + strings.Repeat(" ", 128-10-len(dict)-1) + "\n" + strings.Repeat("\x00", 24)
	if got := buf.String(); got != want {
		t.Errorf("WriteNPY wrote\n%q\nwant\n%q", got, want)
	}
}

// A header over 64 KiB needs format 2.0 and its 4-byte length.
func TestWriteNPYVersion2(t *testing.T) {
	shape := make([]int, 30000) // "1, " per dimension: about 90 KB of header
	for i := range shape {
		shape[i] = 1
	}
	var buf bytes.Buffer
	if err := engine.WriteNPY(&buf, shape, []float32{42}); err != nil {
		t.Fatal(err)
	}
	if got := buf.Bytes()[6:8]; !bytes.Equal(got, []byte{2, 0}) {
		t.Fatalf("version = %v, want 2.0", got)
	}
	if hlen := binary.LittleEndian.Uint32(buf.Bytes()[8:12]); (12+int(hlen))%64 != 0 {
		t.Errorf("data offset %d is not a multiple of 64", 12+hlen)
	}
	gotShape, data, err := engine.ReadNPY(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gotShape, shape) || !slices.Equal(data, []float32{42}) {
		t.Errorf("read back %d dimensions and %v", len(gotShape), data)
	}
}

func TestWriteNPYErrors(t *testing.T) {
	tests := []struct {
		name  string
		shape []int
		n     int
		want  string
	}{
		{"too few values", []int{2, 3}, 5, "write npy: shape (2, 3) holds 6 values, got 5"},
		{"too many values", []int{4}, 5, "write npy: shape (4,) holds 4 values, got 5"},
		{"negative dimension", []int{2, -1}, 0, "negative dimension"},
		{"overflow", []int{math.MaxInt / 2, 4}, 0, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := engine.WriteNPY(&bytes.Buffer{}, tt.shape, make([]float32, tt.n))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteNPY error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteNPYFileLeavesNoTempOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.npy")
	if err := engine.WriteNPYFile(path, []int{3}, []float32{1}); err == nil {
		t.Fatal("WriteNPYFile succeeded with a wrong value count")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("directory holds %v after a failed write, want nothing", entries)
	}
}

// npyFile builds an .npy file around a header dict with numpy's padding.
func npyFile(dict string, data []byte) []byte {
	pad := 64 - (10+len(dict)+1)%64
	b := []byte("\x93NUMPY\x01\x00")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+pad+1))
	b = append(b, dict...)
	b = append(b, strings.Repeat(" ", pad)...)
	b = append(b, '\n')
	return append(b, data...)
}

func TestReadNPYAcceptsHeaderVariants(t *testing.T) {
	one := []byte{0, 0, 0x80, 0x3f} // float32 1.0
	tests := []struct {
		name  string
		dict  string
		shape []int
	}{
		{"numpy", "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", []int{1}},
		{"other key order", "{'shape': (1, 1), 'fortran_order': False, 'descr': '<f4'}", []int{1, 1}},
		{"double quotes", `{"descr": "<f4", "fortran_order": False, "shape": (1,)}`, []int{1}},
		{"tuple trailing comma", "{'descr':'<f4','fortran_order':False,'shape':(1,1,)}", []int{1, 1}},
		{"scalar", "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", []int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shape, data, err := engine.ReadNPY(bytes.NewReader(npyFile(tt.dict, one)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) || !slices.Equal(data, []float32{1}) {
				t.Errorf("got %v %v, want %v [1]", shape, data, tt.shape)
			}
		})
	}
}

func TestReadNPYErrors(t *testing.T) {
	valid := npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", make([]byte, 8))
	v3 := slices.Clone(valid)
	v3[6] = 3
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "read npy: unexpected EOF"},
		{"bad magic", []byte("PK\x03\x04 this is a zip file"), "not a .npy file"},
		{"version 3", v3, "format version 3.0 is not supported"},
		{"float64", npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)),
			"read npy: dtype '<f8' is not supported (need float32 '<f4')"},
		{"big endian", npyFile("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)),
			"dtype '>f4' is not supported"},
		{"uint8", npyFile("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }", make([]byte, 1)),
			"dtype '|u1' is not supported"},
		{"structured", npyFile("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", nil),
			"structured dtype is not supported"},
		{"fortran order", npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", make([]byte, 16)),
			"fortran_order True is not supported"},
		{"missing shape", npyFile("{'descr': '<f4', 'fortran_order': False}", nil), "header has no 'shape'"},
		{"unknown key", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", nil),
			"unknown key 'x'"},
		{"repeated key", npyFile("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", nil),
			"repeats 'descr'"},
		{"int shape", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (3)}", nil), "not a tuple"},
		{"negative dimension", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", nil),
			"non-negative integer"},
		{"huge shape", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999)}", nil),
			"too large"},
		{"text after dict", npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", nil),
			"after the dict"},
		{"truncated header", valid[:40], "read npy header: unexpected EOF"},
		{"truncated data", valid[:len(valid)-1], "data ends before 2 values of shape (2,)"},
		{"header length too large", []byte("\x93NUMPY\x02\x00\xff\xff\xff\xff"), "header of 4294967295 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shape, data, err := engine.ReadNPY(bytes.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadNPY = %v, %v, %v; want an error containing %q", shape, data, err, tt.want)
			}
		})
	}
}

func TestReadNPYFileRejectsTrailingBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.npy")
	b := npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", []byte{0, 0, 0, 0, 7})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := engine.ReadNPYFile(path); err == nil || !strings.Contains(err.Error(), "after the array") {
		t.Fatalf("ReadNPYFile error = %v, want one about bytes after the array", err)
	}
}

// npyPython is Debian's interpreter with python3-numpy; the python3 first on
// PATH may lack it. A missing numpy fails the test rather than skipping the
// interoperability check.
func npyPython(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if out, err := exec.Command(py, "-c", "import numpy").CombinedOutput(); err != nil {
		t.Fatalf("%s cannot import numpy (%v: %s): run make setup (installs python3-pil python3-numpy)",
			py, err, strings.TrimSpace(string(out)))
	}
	return py
}

func TestNPYLoadsInNumpy(t *testing.T) {
	py := npyPython(t)
	const script = `
import sys
import numpy as np
a = np.load(sys.argv[1])
print(a.shape, a.dtype, float(a.sum(dtype=np.float64)), a.tobytes().hex())
`
	for _, tt := range npyTestArrays {
		t.Run(tt.name, func(t *testing.T) {
			n := numel(tt.shape)
			data := make([]float32, n)
			raw := make([]byte, 0, 4*n)
			sum := 0.0
			for i := range data {
				data[i] = float32(i)*0.25 - 3 // exact sums
				sum += float64(data[i])
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(data[i]))
			}
			path := filepath.Join(t.TempDir(), "a.npy")
			if err := engine.WriteNPYFile(path, tt.shape, data); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, "-c", script, path).CombinedOutput()
			if err != nil {
				t.Fatalf("numpy: %v\n%s", err, out)
			}
			pyShape := "(" + strings.Trim(strings.ReplaceAll(fmt.Sprint(tt.shape), " ", ", "), "[]")
			if len(tt.shape) == 1 {
				pyShape += ","
			}
			pyShape += ")"
			want := strings.TrimSpace(fmt.Sprintf("%s float32 %s %s", pyShape, pyFloat(sum), hex.EncodeToString(raw)))
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("numpy printed\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// pyFloat formats f like Python's repr for the small exact sums used here.
func pyFloat(f float64) string {
	s := fmt.Sprint(f)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

func TestNPYFromNumpy(t *testing.T) {
	py := npyPython(t)
	dir := t.TempDir()
	const script = `
import sys
import numpy as np
d = sys.argv[1]
np.save(d + "/clip.npy", (np.arange(1 * 2 * 3 * 4 * 4, dtype="<f4") * 0.5 - 7).reshape(1, 2, 3, 4, 4))
np.save(d + "/vector.npy", np.array([1.5, -2, np.inf], dtype="<f4"))
np.save(d + "/scalar.npy", np.float32(3.25))
np.save(d + "/empty.npy", np.zeros((0, 3), dtype="<f4"))
np.save(d + "/fortran.npy", np.asfortranarray(np.ones((2, 3), dtype="<f4")))
np.save(d + "/f8.npy", np.ones(3))
`
	if out, err := exec.Command(py, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("numpy: %v\n%s", err, out)
	}
	clip := make([]float32, 96)
	for i := range clip {
		clip[i] = float32(i)*0.5 - 7
	}
	tests := []struct {
		file    string
		shape   []int
		data    []float32
		wantErr string
	}{
		{file: "clip.npy", shape: []int{1, 2, 3, 4, 4}, data: clip},
		{file: "vector.npy", shape: []int{3}, data: []float32{1.5, -2, float32(math.Inf(1))}},
		{file: "scalar.npy", shape: []int{}, data: []float32{3.25}},
		{file: "empty.npy", shape: []int{0, 3}, data: []float32{}},
		{file: "fortran.npy", wantErr: "fortran_order True is not supported"},
		{file: "f8.npy", wantErr: "dtype '<f8' is not supported (need float32 '<f4')"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			shape, data, err := engine.ReadNPYFile(filepath.Join(dir, tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadNPYFile error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(shape, tt.shape) || !slices.Equal(data, tt.data) {
				t.Errorf("got %v %v, want %v %v", shape, data, tt.shape, tt.data)
			}
		})
	}
}

func FuzzReadNPY(f *testing.F) {
	for _, tt := range npyTestArrays {
		var buf bytes.Buffer
		if err := engine.WriteNPY(&buf, tt.shape, npyTestData(numel(tt.shape))); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()-1])
	}
	f.Add(npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8)))
	f.Add(npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1), }", make([]byte, 4)))
	f.Add(npyFile("{'shape': (2, 1,), 'descr': \"<f4\", 'fortran_order': False}", make([]byte, 8)))
	f.Add(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", nil))
	f.Add([]byte("\x93NUMPY\x02\x00\x10\x00\x00\x00{}              "))
	f.Add([]byte("\x93NUMPY"))
	f.Add([]byte("garbage"))

	f.Fuzz(func(t *testing.T, in []byte) {
		shape, data, err := engine.ReadNPY(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(data) != numel(shape) {
			t.Fatalf("shape %v but %d values", shape, len(data))
		}
		// Whatever was accepted must survive a round trip.
		var buf bytes.Buffer
		if err := engine.WriteNPY(&buf, shape, data); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		shape2, data2, err := engine.ReadNPY(&buf)
		if err != nil {
			t.Fatalf("reread: %v", err)
		}
		if !slices.Equal(shape, shape2) || !sameBits(data, data2) {
			t.Fatalf("round trip changed %v %v into %v %v", shape, data, shape2, data2)
		}
	})
}
