package paddle

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// written returns a real file as Write produces it.
func written(t testing.TB, proto int) []byte {
	t.Helper()
	keys, ts := sampleTensors()
	var buf bytes.Buffer
	if err := Write(&buf, keys, ts, WriteOptions{Protocol: proto}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadTruncated(t *testing.T) {
	for _, proto := range []int{2, 3, 4} {
		data := written(t, proto)
		cuts := []int{1, 2, 3, 10, 11, 12, 50, 100, 333, len(data) / 2, len(data) - 2, len(data) - 1}
		for _, cut := range cuts {
			t.Run(fmt.Sprintf("p%d-at-%d", proto, cut), func(t *testing.T) {
				_, err := Read(bytes.NewReader(data[:cut]))
				want := fmt.Sprintf("read pdparams: truncated at byte %d ", cut)
				if !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("error %v, want ErrTruncated starting %q", err, want)
				}
			})
		}
	}
	_, err := Read(bytes.NewReader(nil))
	if !errors.Is(err, ErrNotPickle) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty input: %v", err)
	}
}

func TestReadTruncatedNamesOpcode(t *testing.T) {
	// Protocol 3 has no frames, so the cut lands in the array's bytes.
	data := written(t, 3)
	i := bytes.Index(data, []byte{opShortBinBytes, 192}) // the 4x3x2x2 conv weight
	if i < 0 {
		t.Fatal("conv weight bytes not found")
	}
	_, err := Read(bytes.NewReader(data[:i+100]))
	want := fmt.Sprintf("read pdparams: truncated at byte %d (opcode SHORT_BINBYTES at byte %d wants 192 bytes, 98 left)", i+100, i)
	if err == nil || err.Error() != want {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}

func TestReadRejects(t *testing.T) {
	valid := written(t, 3)
	// The 2-element fc.bias: shape (2,) is BININT1 2, TUPLE1.
	i := bytes.Index(valid, []byte("backbone.fc.bias"))
	j := i + bytes.Index(valid[i:], []byte{opBinInt1, 2, opTuple1})
	badShape := bytes.Clone(valid)
	badShape[j+1] = 3

	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.UintN(256))
	}
	random[0] = 0x42

	cases := []struct {
		name  string
		data  []byte
		isErr error
		want  string
	}{
		{"zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl"), ErrNotPickle, "starts with 50 4b 03 04, not 0x80 (PROTO); it is a zip archive"},
		{"onnx", []byte("\x08\x07\x12\x07pytorch\x1a\x032.1:\x9a\x01\n"), ErrNotPickle, "it looks like a protobuf such as an ONNX model"},
		{"text", []byte("hello: world\n"), ErrNotPickle, "it looks like text"},
		{"random", random, ErrNotPickle, "starts with 42"},
		{"protocol 5", []byte("\x80\x05\x95\x00"), ErrNotPickle, "protocol 5"},
		{"os.system", []byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."), ErrRefusedGlobal,
			"byte 2 (opcode GLOBAL): refused global os.system"},
		{"builtins.eval stack global", []byte("\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R."), ErrRefusedGlobal,
			"byte 18 (opcode STACK_GLOBAL): refused global builtins.eval"},
		{"odd global name", []byte("\x80\x02cnumpy\nndarray\x00x\n."), ErrRefusedGlobal, `refused global "numpy.ndarray\x00x"`},
		{"shape mismatch", badShape, nil, "numpy array of shape [3] and dtype <f4 needs 12 bytes, has 8"},
		{"not a dict", []byte("\x80\x02]q\x00."), nil, "top-level object is a list, want a dict of numpy arrays"},
		{"value not an array", []byte("\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s."), nil, `key "a": value is an int, want a numpy array`},
		{"missing memo", []byte("\x80\x02h\x05."), nil, "byte 2 (opcode BINGET): memo key 5 was never stored"},
		{"stack underflow", []byte("\x80\x02s."), nil, "stack underflow"},
		{"unknown opcode", []byte("\x80\x02\xff."), nil, "byte 2 (opcode 0xff): unknown opcode"},
		{"leftover stack", []byte("\x80\x02}}."), nil, "1 values and 0 marks left"},
		{"huge length", []byte("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f"), ErrTruncated, "opcode BINBYTES8 at byte 2 wants 9223372036854775807 bytes, 0 left"},
		{"huge frame", []byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff}."), ErrTruncated, "opcode FRAME"},
		{"persistent id", []byte("\x80\x02X\x01\x00\x00\x000Q."), nil, "persistent IDs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(c.data))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if c.isErr != nil && !errors.Is(err, c.isErr) {
				t.Errorf("error %v is not %v", err, c.isErr)
			}
			if !strings.HasPrefix(err.Error(), "read pdparams: ") || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

// TestReadBoundsAllocation: a small stream that references one big string
// many times cannot make the reader allocate without bound.
func TestReadBoundsAllocation(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("\x80\x02c_codecs\nencode\nq\x00X")
	b.Write([]byte{0xa0, 0x86, 0x01, 0x00}) // 100000
	b.Write(bytes.Repeat([]byte{'x'}, 100000))
	b.WriteString("q\x01X\x06\x00\x00\x00latin1q\x02")
	for range 5000 { // 500 MB if each call were paid for
		b.WriteString("h\x00h\x01h\x02\x86R0")
	}
	b.WriteString("}.")
	_, err := Read(&b)
	if err == nil || !strings.Contains(err.Error(), "expands to more memory") {
		t.Fatalf("error %v, want the allocation bound", err)
	}
}

// TestReadAliasedArrays: one array stored under two keys is converted once
// and shared, so aliases cannot multiply memory.
func TestReadAliasedArrays(t *testing.T) {
	data := []byte("\x80\x03}(X\x01\x00\x00\x00a" +
		"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87Rq\x00" + // memo 0: the array
		"(K\x01K\x02\x85cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R" +
		"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb" +
		"\x89C\x08\x00\x00\xc0?\x00\x00 @tb" +
		"X\x01\x00\x00\x00bh\x00u.")
	ck, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	a, b := ck.Tensors["a"], ck.Tensors["b"]
	if !slices.Equal(a.Data, []float32{1.5, 2.5}) || &a.Data[0] != &b.Data[0] {
		t.Errorf("a = %v, b = %v, want [1.5 2.5] sharing storage", a.Data, b.Data)
	}
	if !slices.Equal(ck.Keys, []string{"a", "b"}) {
		t.Errorf("keys %v", ck.Keys)
	}
}

func TestNumElements(t *testing.T) {
	for _, c := range []struct {
		shape []int
		want  int
	}{{nil, 1}, {[]int{0, 5}, 0}, {[]int{2, 3, 4}, 24}} {
		if got := (Tensor{Shape: c.shape}).NumElements(); got != c.want {
			t.Errorf("NumElements(%v) = %d, want %d", c.shape, got, c.want)
		}
	}
}

// TestReadTestdata reads the files testdata/gen.py wrote with CPython and
// NumPy 1.24.
func TestReadTestdata(t *testing.T) {
	for _, name := range []string{"python_p2", "python_p3", "python_p4"} {
		t.Run(name, func(t *testing.T) {
			ck, err := ReadFile("testdata/" + name + ".pdparams")
			if err != nil {
				t.Fatal(err)
			}
			wantKeys := []string{"backbone.conv.weight", "backbone.fortran", "backbone.big_endian", "backbone.f64",
				"backbone.i64", "backbone.scalar", "backbone.bool", "backbone.f16"}
			if !slices.Equal(ck.Keys, wantKeys) {
				t.Fatalf("keys %v, want %v", ck.Keys, wantKeys)
			}
			conv := make([]float32, 54)
			for i := range conv {
				conv[i] = (float32(i) - 20) / 8
			}
			fortran := make([]float32, 24)
			for i := range fortran {
				fortran[i] = float32(i)
			}
			f64 := make([]byte, 24)
			putF64(f64, 0.5)
			putF64(f64[8:], -1)
			putF64(f64[16:], 1e300)
			i64 := make([]byte, 16)
			putU64(i64, 1<<40)
			putU64(i64[8:], ^uint64(2)) // -3
			want := map[string]Tensor{
				"backbone.conv.weight": Float32Tensor([]int{2, 3, 3, 3}, conv),
				"backbone.fortran":     Float32Tensor([]int{2, 3, 4}, fortran),
				"backbone.big_endian":  Float32Tensor([]int{3}, []float32{1.5, -2, 3.25}),
				"backbone.f64":         {Shape: []int{3}, DType: "<f8", Raw: f64},
				"backbone.i64":         {Shape: []int{2}, DType: "<i8", Raw: i64},
				"backbone.scalar":      Float32Tensor([]int{}, []float32{7}),
				"backbone.bool":        {Shape: []int{3}, DType: "|b1", Raw: []byte{1, 0, 1}},
				"backbone.f16":         {Shape: []int{2}, DType: "<f2", Raw: []byte{0x00, 0x38, 0x00, 0xc0}},
			}
			for _, k := range wantKeys {
				assertTensor(t, k, ck.Tensors[k], want[k])
			}
			if ck.ParamNames["backbone.f16"] != "param_7" || len(ck.ParamNames) != 8 {
				t.Errorf("ParamNames = %v", ck.ParamNames)
			}
		})
	}
	t.Run("unpack", func(t *testing.T) {
		ck, err := ReadFile("testdata/python_unpack_p2.pdparams")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ck.Keys, []string{"a.weight", "w"}) || len(ck.Tensors) != 2 {
			t.Fatalf("keys %v, %d tensors", ck.Keys, len(ck.Tensors))
		}
		assertTensor(t, "w", ck.Tensors["w"], Float32Tensor([]int{2, 5}, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}))
	})
}
