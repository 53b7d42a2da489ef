package paddle

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// debianPython is the interpreter that has python3-numpy (make setup); the
// python3 on PATH may be another one without NumPy.
const debianPython = "/usr/bin/python3"

// runPython runs script with NumPy imported and returns its stdout.
func runPython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	if _, err := os.Stat(debianPython); err != nil {
		t.Fatalf("%s is missing (%v): run make setup", debianPython, err)
	}
	cmd := exec.Command(debianPython, append([]string{"-c", "import numpy as np\n" + script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "No module named 'numpy'") {
			t.Fatalf("%s has no NumPy: run make setup", debianPython)
		}
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

// leBytes returns a tensor's values as little-endian C-order bytes.
func leBytes(t Tensor) []byte {
	if t.Data != nil {
		return float32sToLE(t.Data)
	}
	return t.Raw
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sampleTensors is a small checkpoint with the dtypes and ranks the tests
// care about: 4-D and 1-D float32 (conv + batch norm), 2-D linear, a
// scalar, float64 and int64 via Raw, a one-byte type and an empty array.
func sampleTensors() ([]string, map[string]Tensor) {
	seq := func(n int, scale float32) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = scale * float32(i-n/2)
		}
		return v
	}
	f64 := make([]byte, 8*3)
	for i, v := range []float64{1.5, -2.25, math.Pi} {
		putF64(f64[8*i:], v)
	}
	i64 := make([]byte, 8*2)
	putU64(i64, 1<<40)
	putU64(i64[8:], ^uint64(0)) // -1
	keys := []string{
		"backbone.stem.0.conv.weight",
		"backbone.stem.0.bn.weight",
		"backbone.stem.0.bn.bias",
		"backbone.stem.0.bn._mean",
		"backbone.stem.0.bn._variance",
		"backbone.fc.weight",
		"backbone.fc.bias",
		"backbone.scalar",
		"backbone.f64",
		"backbone.i64",
		"backbone.mask",
		"backbone.empty",
	}
	ts := map[string]Tensor{
		keys[0]:  Float32Tensor([]int{4, 3, 2, 2}, seq(48, 0.25)),
		keys[1]:  Float32Tensor([]int{4}, []float32{1, 2, 3, 4}),
		keys[2]:  Float32Tensor([]int{4}, []float32{0, -1, 0.5, 1e-7}),
		keys[3]:  Float32Tensor([]int{4}, []float32{0.1, 0.2, 0.3, 0.4}),
		keys[4]:  Float32Tensor([]int{4}, []float32{1, 1, 1, float32(math.Inf(1))}),
		keys[5]:  Float32Tensor([]int{3, 2}, seq(6, -1.5)),
		keys[6]:  Float32Tensor([]int{2}, []float32{0.5, -0.5}),
		keys[7]:  Float32Tensor(nil, []float32{42}),
		keys[8]:  {Shape: []int{3}, DType: "<f8", Raw: f64},
		keys[9]:  {Shape: []int{2, 1}, DType: "<i8", Raw: i64},
		keys[10]: {Shape: []int{3}, DType: "|u1", Raw: []byte{0, 7, 255}},
		keys[11]: Float32Tensor([]int{0, 5}, []float32{}),
	}
	return keys, ts
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func putF64(b []byte, v float64) { putU64(b, math.Float64bits(v)) }

type writeCase struct {
	name string
	opts WriteOptions
}

func writeCases() []writeCase {
	var cs []writeCase
	for _, proto := range []int{2, 3, 4} {
		for _, core := range []string{"numpy.core", "numpy._core"} {
			for _, noNames := range []bool{false, true} {
				cs = append(cs, writeCase{
					name: fmt.Sprintf("p%d-%s-names=%v", proto, core, !noNames),
					opts: WriteOptions{Protocol: proto, NumpyCore: core, NoParamNames: noNames},
				})
			}
		}
	}
	return cs
}

// TestPythonLoadsGoFiles: files Write produces load with pickle.load(f,
// encoding='latin1') under real NumPy, giving ndarrays of the same shape,
// dtype and bytes, and the name table.
func TestPythonLoadsGoFiles(t *testing.T) {
	keys, ts := sampleTensors()
	dir := t.TempDir()
	var paths []string
	for _, c := range writeCases() {
		path := filepath.Join(dir, c.name+".pdparams")
		if err := WriteFile(path, keys, ts, c.opts); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	// NumPy 1.x has no numpy._core; alias it the way NumPy 2 provides it.
	out := runPython(t, `
import sys, json, pickle, hashlib
import numpy.core, numpy.core.multiarray
sys.modules.setdefault('numpy._core', numpy.core)
sys.modules.setdefault('numpy._core.multiarray', numpy.core.multiarray)
res = {}
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        d = pickle.load(f, encoding='latin1')
    arrays = {}
    for k, v in d.items():
        if k == 'StructuredToParameterName@@':
            continue
        assert type(v) is np.ndarray, (k, type(v))
        assert v.flags.c_contiguous
        arrays[k] = [list(v.shape), v.dtype.str, hashlib.sha256(v.tobytes()).hexdigest()]
    res[path] = {'keys': [k for k in d if k != 'StructuredToParameterName@@'],
                 'arrays': arrays, 'names': d.get('StructuredToParameterName@@'),
                 'type': type(d).__name__}
print(json.dumps(res))
`, paths...)
	var got map[string]struct {
		Keys   []string
		Arrays map[string][]any
		Names  map[string]string
		Type   string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	wantNames := map[string]string{
		"backbone.stem.0.conv.weight":  "conv2d_0.w_0",
		"backbone.stem.0.bn.weight":    "batch_norm2d_0.w_0",
		"backbone.stem.0.bn.bias":      "batch_norm2d_0.b_0",
		"backbone.stem.0.bn._mean":     "batch_norm2d_0.w_1",
		"backbone.stem.0.bn._variance": "batch_norm2d_0.w_2",
		"backbone.fc.weight":           "linear_0.w_0",
		"backbone.fc.bias":             "linear_0.b_0",
	}
	for i, c := range writeCases() {
		t.Run(c.name, func(t *testing.T) {
			r, ok := got[paths[i]]
			if !ok {
				t.Fatal("python did not report the file")
			}
			if r.Type != "dict" || !slices.Equal(r.Keys, keys) {
				t.Fatalf("python saw a %s with keys %v, want a dict with %v", r.Type, r.Keys, keys)
			}
			for _, k := range keys {
				want := fmt.Sprint([]any{shapeAny(ts[k].Shape), ts[k].DType, sha(leBytes(ts[k]))})
				if g := fmt.Sprint(r.Arrays[k]); g != want {
					t.Errorf("%s: python sees %s, want %s", k, g, want)
				}
			}
			if c.opts.NoParamNames {
				if r.Names != nil {
					t.Errorf("name table written despite NoParamNames: %v", r.Names)
				}
				return
			}
			if len(r.Names) != len(keys) {
				t.Errorf("name table has %d entries, want %d", len(r.Names), len(keys))
			}
			for k, n := range wantNames {
				if r.Names[k] != n {
					t.Errorf("name of %s = %q, want %q", k, r.Names[k], n)
				}
			}
		})
	}
}

func shapeAny(s []int) []any {
	out := make([]any, len(s))
	for i, d := range s {
		out[i] = float64(d) // as encoding/json decodes numbers
	}
	return out
}

// pythonWriter builds checkpoints the way paddle.save does (a dict of
// ndarrays plus the name table) with a few twists Paddle never produces but
// a reader must survive: a Fortran-order array, a big-endian one, and an
// OrderedDict at the top.
const pythonWriter = `
import sys, json, pickle, hashlib, collections
out = sys.argv[1]
def arrays():
    d = {}
    d['backbone.conv.weight'] = (np.arange(2*3*3*3, dtype=np.float32).reshape(2, 3, 3, 3) - 20) / 8
    d['backbone.fortran'] = np.asfortranarray(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    d['backbone.big_endian'] = np.array([1.5, -2.0, 3.25], dtype='>f4')
    d['backbone.big_endian_f8'] = np.array([[1e300, -2.5]], dtype='>f8')
    d['backbone.f64'] = np.array([np.pi, -1.0, 0.0], dtype=np.float64)
    d['backbone.i64'] = np.array([1 << 40, -3], dtype=np.int64)
    d['backbone.scalar'] = np.array(7.0, dtype=np.float32)
    d['backbone.bool'] = np.array([True, False, True])
    d['backbone.f16'] = np.array([0.5, 65504.0], dtype=np.float16)
    d['backbone.big'] = np.linspace(-1, 1, 20000, dtype=np.float32)  # > 64 KiB: outside frames
    return d
def expect(d):
    e = {}
    for k, v in d.items():
        c = np.ascontiguousarray(v).astype(v.dtype.newbyteorder('<'))
        e[k] = [list(v.shape), c.dtype.str, hashlib.sha256(c.tobytes()).hexdigest()]
    return e
res = {}
for proto in (2, 3, 4):
    for kind in ('dict', 'ordered'):
        d = arrays()
        e = expect(d)
        if kind == 'ordered':
            d = collections.OrderedDict(d)
        d['StructuredToParameterName@@'] = {k: 'param_%d' % i for i, k in enumerate(e)}
        name = '%s/p%d-%s.pdparams' % (out, proto, kind)
        with open(name, 'wb') as f:
            pickle.dump(d, f, protocol=proto)
        res[name] = {'keys': list(e), 'arrays': e}
# paddle.save's layout for arrays over 1 GiB with protocol 2/3, in miniature.
w = np.arange(10, dtype=np.float32).reshape(2, 5)
flat = w.flatten()
d = {'a.weight': np.ones(2, np.float32)}
d['w@@.0'], d['w@@.1'] = flat[:6], flat[6:]
d['StructuredToParameterName@@'] = {'a.weight': 'linear_0.w_0', 'w': 'linear_1.w_0'}
d['UnpackBigParamInfor@@'] = {'w': {'OriginShape': w.shape, 'slices': ['w@@.0', 'w@@.1']}}
name = out + '/unpack.pdparams'
with open(name, 'wb') as f:
    pickle.dump(d, f, protocol=2)
res[name] = {'keys': ['a.weight', 'w'], 'arrays': expect({'a.weight': d['a.weight'], 'w': w})}
print(json.dumps(res))
`

// TestGoReadsPythonFiles: pickles written by CPython and NumPy with
// protocols 2, 3 and 4 read back with identical values.
func TestGoReadsPythonFiles(t *testing.T) {
	dir := t.TempDir()
	out := runPython(t, pythonWriter, dir)
	var want map[string]struct {
		Keys   []string
		Arrays map[string][]any
	}
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	if len(want) != 7 {
		t.Fatalf("python wrote %d files, want 7", len(want))
	}
	for path, w := range want {
		t.Run(filepath.Base(path), func(t *testing.T) {
			ck, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ck.Keys, w.Keys) {
				t.Fatalf("keys %v, want %v", ck.Keys, w.Keys)
			}
			for _, k := range w.Keys {
				tt := ck.Tensors[k]
				got := fmt.Sprint([]any{shapeAny(tt.Shape), tt.DType, sha(leBytes(tt))})
				if exp := fmt.Sprint(w.Arrays[k]); got != exp {
					t.Errorf("%s: got %s, want %s", k, got, exp)
				}
			}
			if strings.HasSuffix(path, "unpack.pdparams") {
				if n := ck.ParamNames["w"]; n != "linear_1.w_0" {
					t.Errorf("ParamNames[w] = %q", n)
				}
				if d := ck.Tensors["w"].Data; !slices.Equal(d, []float32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
					t.Errorf("reassembled w = %v", d)
				}
				return
			}
			if len(ck.ParamNames) != len(w.Keys) || ck.ParamNames["backbone.fortran"] != "param_1" {
				t.Errorf("ParamNames = %v", ck.ParamNames)
			}
			// Spot-check values, beyond the hashes.
			f := ck.Tensors["backbone.fortran"]
			for i, v := range f.Data {
				if v != float32(i) {
					t.Fatalf("fortran array in C order: item %d = %v, want %d", i, v, i)
				}
			}
			if be := ck.Tensors["backbone.big_endian"]; be.DType != "<f4" || !slices.Equal(be.Data, []float32{1.5, -2, 3.25}) {
				t.Errorf("big-endian array read as %s %v", be.DType, be.Data)
			}
			if s := ck.Tensors["backbone.scalar"]; len(s.Shape) != 0 || !slices.Equal(s.Data, []float32{7}) {
				t.Errorf("scalar read as %v %v", s.Shape, s.Data)
			}
		})
	}
}

// exactScript pickles, with CPython's C pickler, the dict paddle.save would
// build from the arrays in the JSON spec, for each protocol.
const exactScript = `
import sys, json, pickle, base64
spec = json.load(open(sys.argv[1]))
dtypes = {}
d = {}
for e in spec['tensors']:
    dt = dtypes.setdefault(e['dtype'], np.dtype(e['dtype']))  # one dtype object per type, as in Paddle
    d[e['key']] = np.frombuffer(base64.b64decode(e['data']), dtype=dt).reshape(e['shape']).copy()
if spec['names']:
    d['StructuredToParameterName@@'] = {k: e['name'] for k, e in zip(list(d), spec['tensors'])}
for proto in (2, 3, 4):
    with open('%s.p%d' % (sys.argv[1], proto), 'wb') as f:
        f.write(pickle.dumps(d, protocol=proto))
`

// TestWriteMatchesPythonBytes: Write's output equals, byte for byte, what
// CPython 3.11's pickle.dumps writes for the same dict of NumPy arrays:
// the tiny case from the spec, and a mixed one that crosses frame
// boundaries, reuses dtypes, hits CPython's cached one-byte objects and
// needs BININT2/BININT shapes.
func TestWriteMatchesPythonBytes(t *testing.T) {
	keysMixed, tsMixed := sampleTensors()
	big := func(n int) Tensor {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i%97) / 7
		}
		return Float32Tensor([]int{n}, v)
	}
	more := map[string]Tensor{
		"backbone.big1":   big(16000), // fills most of a frame
		"backbone.big2":   big(16383), // 65532 bytes: still inside a frame
		"backbone.huge":   big(16384), // 65536 bytes: written outside frames
		"backbone.wide":   {Shape: []int{1, 70000}, DType: "|u1", Raw: bytes.Repeat([]byte{'|'}, 70000)},
		"backbone.pipe":   {Shape: []int{1}, DType: "|u1", Raw: []byte{'|'}}, // same str as the byte order in protocol 2
		"backbone.one":    {Shape: []int{1}, DType: "|u1", Raw: []byte{7}},
		"backbone.one2":   {Shape: []int{1}, DType: "|u1", Raw: []byte{7}}, // same cached bytes object
		"backbone.empty2": Float32Tensor([]int{0}, nil),
		"backbone.be":     {Shape: []int{2}, DType: ">f4", Raw: []byte{0x3f, 0x80, 0, 0, 0x40, 0, 0, 0}},
		"backbone.rank5":  Float32Tensor([]int{1, 1, 1, 1, 2}, []float32{1, 2}),
		"backbone.tail":   big(300),
	}
	for _, k := range slices.Sorted(maps.Keys(more)) {
		keysMixed = append(keysMixed, k)
		tsMixed[k] = more[k]
	}
	cases := []struct {
		name  string
		keys  []string
		ts    map[string]Tensor
		names bool
	}{
		{"tiny", []string{"backbone.w"}, map[string]Tensor{"backbone.w": Float32Tensor([]int{2}, []float32{1.5, 2.5})}, false},
		{"tiny-names", []string{"backbone.w"}, map[string]Tensor{"backbone.w": Float32Tensor([]int{2}, []float32{1.5, 2.5})}, true},
		{"mixed", keysMixed, tsMixed, true},
		{"batch-1000", manyKeys(999), manyTensors(999), true}, // 1000 items: a full batch, then an empty one
		{"batch-1001", manyKeys(1001), manyTensors(1001), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var names []string
			if c.names {
				var o []outTensor
				for _, k := range c.keys {
					v, err := validate(k, c.ts[k], 4)
					if err != nil {
						t.Fatal(err)
					}
					o = append(o, v)
				}
				names = paramNames(o, nil)
			}
			type entry struct {
				Key   string `json:"key"`
				DType string `json:"dtype"`
				Shape []int  `json:"shape"`
				Data  string `json:"data"`
				Name  string `json:"name"`
			}
			spec := struct {
				Tensors []entry `json:"tensors"`
				Names   bool    `json:"names"`
			}{Names: c.names}
			for i, k := range c.keys {
				e := entry{Key: k, DType: c.ts[k].DType, Shape: c.ts[k].Shape, Data: base64.StdEncoding.EncodeToString(leOrRaw(c.ts[k]))}
				if e.Shape == nil {
					e.Shape = []int{}
				}
				if c.names {
					e.Name = names[i]
				}
				spec.Tensors = append(spec.Tensors, e)
			}
			js, err := json.Marshal(spec)
			if err != nil {
				t.Fatal(err)
			}
			specPath := filepath.Join(t.TempDir(), "spec.json")
			if err := os.WriteFile(specPath, js, 0o644); err != nil {
				t.Fatal(err)
			}
			runPython(t, exactScript, specPath)
			for _, proto := range []int{2, 3, 4} {
				want, err := os.ReadFile(fmt.Sprintf("%s.p%d", specPath, proto))
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if err := Write(&got, c.keys, c.ts, WriteOptions{Protocol: proto, NoParamNames: !c.names}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					i := 0
					for i < min(got.Len(), len(want)) && got.Bytes()[i] == want[i] {
						i++
					}
					t.Errorf("protocol %d: Go wrote %d bytes, Python %d; first difference at byte %d:\ngo     % x\npython % x",
						proto, got.Len(), len(want), i, window(got.Bytes(), i), window(want, i))
				}
			}
		})
	}
}

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("backbone.blocks.%d.weight", i)
	}
	return keys
}

func manyTensors(n int) map[string]Tensor {
	ts := make(map[string]Tensor, n)
	for i, k := range manyKeys(n) {
		ts[k] = Float32Tensor([]int{1}, []float32{float32(i)})
	}
	return ts
}

// leOrRaw returns the bytes numpy holds for a tensor, in its own byte order.
func leOrRaw(t Tensor) []byte {
	if t.Data != nil {
		return float32sToLE(t.Data)
	}
	return t.Raw
}

func window(b []byte, i int) []byte {
	return b[max(0, i-16):min(len(b), i+16)]
}
