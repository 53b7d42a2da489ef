package onnx

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// sampleModel uses every part of the format that this package writes.
func sampleModel() *Model {
	return &Model{
		IRVersion:       8,
		OpsetImports:    []OpsetID{{Version: 17}, {Domain: "com.microsoft", Version: 1}},
		ProducerName:    "actiond",
		ProducerVersion: "test",
		DocString:       "a model for tests",
		Graph: Graph{
			Name: "g",
			Nodes: []Node{
				{Name: "c", OpType: "Constant", Outputs: []string{"k"},
					Attrs: []Attr{AttrTensor("value", FloatTensor("", []int64{2}, []float32{0.5, -1}))}},
				{Name: "m", OpType: "Mul", Inputs: []string{"x", "k"}, Outputs: []string{"y"}},
				{Name: "r", OpType: "ReduceSum", Inputs: []string{"y", "axes"}, Outputs: []string{"z"},
					Attrs: []Attr{AttrInt("keepdims", 0)}},
				{Name: "a", OpType: "Custom", Domain: "com.microsoft", Inputs: []string{"z", ""}, Outputs: []string{"out"},
					Attrs: []Attr{
						AttrInt("neg", -3),
						AttrInts("perm", 0, -1, 1<<40),
						AttrFloat("alpha", 0.25),
						AttrFloats("scales", 1, 2.5, float32(math.Inf(-1))),
						AttrString("mode", "nearest"),
						{Name: "names", Type: AttrTypeStrings, Strings: []string{"a", ""}},
					}},
			},
			Initializers: []Tensor{
				FloatTensor("w", []int64{2, 3}, []float32{1, 2, 3, 4, 5, -6}),
				Int64Tensor("axes", []int64{1}, []int64{-1}),
				{Name: "mask", Dims: []int64{3}, DataType: 9, Raw: []byte{1, 0, 1}},
				FloatTensor("scalar", nil, []float32{3}),
			},
			Inputs: []ValueInfo{{Name: "x", ElemType: Float,
				Shape: []Dim{{Param: "N"}, {Value: 2}}}},
			Outputs: []ValueInfo{
				{Name: "out", ElemType: Float, Shape: []Dim{{Param: "N"}}},
				{Name: "any", ElemType: Int64},
			},
		},
		Metadata: []KV{{"actiond.name", "sample"}, {"empty", ""}},
	}
}

func TestRoundTrip(t *testing.T) {
	want := sampleModel()
	b, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip differs\n got %+v\nwant %+v", got, want)
	}
	if got.Graph.ParamCount() != 6+1+3+1 {
		t.Errorf("ParamCount = %d, want 11", got.Graph.ParamCount())
	}
	if v := got.Opset(""); v != 17 {
		t.Errorf("Opset(\"\") = %d, want 17", v)
	}
}

func TestDefaultIRVersion(t *testing.T) {
	m := sampleModel()
	m.IRVersion = 0
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.IRVersion != DefaultIRVersion {
		t.Errorf("IRVersion = %d, want %d", got.IRVersion, DefaultIRVersion)
	}
}

func TestMetadata(t *testing.T) {
	m := sampleModel()
	if v, ok := m.MetadataValue("actiond.name"); !ok || v != "sample" {
		t.Errorf("MetadataValue = %q, %v", v, ok)
	}
	if _, ok := m.MetadataValue("missing"); ok {
		t.Error("MetadataValue found a missing key")
	}
	m.SetMetadata("actiond.name", "renamed")
	m.SetMetadata("new", "v")
	want := []KV{{"actiond.name", "renamed"}, {"empty", ""}, {"new", "v"}}
	if !reflect.DeepEqual(m.Metadata, want) {
		t.Errorf("Metadata = %v, want %v", m.Metadata, want)
	}
}

// TestTypedTensorData reads tensors that keep their values in float_data and
// int64_data (packed, as onnx.proto declares them, and unpacked) instead of
// raw_data, as other writers do.
func TestTypedTensorData(t *testing.T) {
	tensor := func(dt DataType, data func(b []byte) []byte) []byte {
		var b []byte
		b = appendVarintAlways(b, tensorDims, 2)
		b = appendVarintAlways(b, tensorDataType, int64(dt))
		b = appendString(b, tensorName, "t")
		return data(b)
	}
	packedFloats := tensor(Float, func(b []byte) []byte {
		var p []byte
		p = protowire.AppendFixed32(p, math.Float32bits(1.5))
		p = protowire.AppendFixed32(p, math.Float32bits(-2))
		return appendMessage(b, tensorFloatData, p)
	})
	unpackedFloats := tensor(Float, func(b []byte) []byte {
		for _, f := range []float32{1.5, -2} {
			b = protowire.AppendTag(b, tensorFloatData, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
		return b
	})
	packedInts := tensor(Int64, func(b []byte) []byte {
		var p []byte
		p = protowire.AppendVarint(p, 7)
		p = protowire.AppendVarint(p, uint64(1<<63)) // math.MinInt64
		return appendMessage(b, tensorInt64Data, p)
	})
	unpackedInts := tensor(Int64, func(b []byte) []byte {
		b = appendVarintAlways(b, tensorInt64Data, 7)
		return appendVarintAlways(b, tensorInt64Data, math.MinInt64)
	})
	wantF := FloatTensor("t", []int64{2}, []float32{1.5, -2})
	wantI := Int64Tensor("t", []int64{2}, []int64{7, math.MinInt64})
	tests := []struct {
		name   string
		tensor []byte
		want   Tensor
	}{
		{"packed float_data", packedFloats, wantF},
		{"unpacked float_data", unpackedFloats, wantF},
		{"packed int64_data", packedInts, wantI},
		{"unpacked int64_data", unpackedInts, wantI},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := appendMessage(nil, graphInitializer, tt.tensor)
			b := appendMessage(nil, modelGraph, g)
			m, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Graph.Initializers) != 1 {
				t.Fatalf("got %d initializers, want 1", len(m.Graph.Initializers))
			}
			if got := m.Graph.Initializers[0]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *Model)
		want   string
	}{
		{"no opset", func(m *Model) { m.OpsetImports = nil }, "no opset import"},
		{"short tensor", func(m *Model) { m.Graph.Initializers[0].Floats = []float32{1} }, `initializer "w": 1 floats for dims [2 3]`},
		{"no op type", func(m *Model) { m.Graph.Nodes[1].OpType = "" }, "node 1"},
		{"bad attr type", func(m *Model) { m.Graph.Nodes[2].Attrs[0].Type = 99 }, "unsupported attribute type 99"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleModel()
			tt.modify(m)
			_, err := m.Marshal()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	good, err := sampleModel().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	badRaw := appendMessage(nil, modelGraph, appendMessage(nil, graphInitializer,
		appendMessage(appendVarintAlways(appendVarintAlways(nil, tensorDims, 3), tensorDataType, int64(Float)),
			tensorRawData, []byte{1, 2, 3, 4})))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", good[:len(good)/2], "parse onnx model: "},
		{"garbage", []byte{0xff, 0xff, 0xff}, "parse onnx model: "},
		{"wrong wire type", appendVarintAlways(nil, modelGraph, 1), "field 7: wrong wire type"},
		{"raw data size", badRaw, `graph: initializer 0: tensor "": 4 bytes of raw data for 3 floats`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil || !strings.HasPrefix(err.Error(), "parse onnx model: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestWriteReadFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	want := sampleModel()
	if err := want.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("ReadFile(WriteFile(m)) differs from m")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the model (no temp files)", len(entries))
	}
	if _, err := ReadFile(filepath.Join(dir, "missing.onnx")); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
}

func FuzzParse(f *testing.F) {
	b, err := sampleModel().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Parse(in)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "parse onnx model: ") {
				t.Errorf("error without context: %v", err)
			}
			return
		}
		// What parses must survive marshalling when it is well formed.
		if len(m.OpsetImports) > 0 {
			if _, err := m.Marshal(); err != nil && !strings.Contains(err.Error(), "marshal onnx model: ") {
				t.Errorf("marshal error without context: %v", err)
			}
		}
		_ = m.Graph.ParamCount()
	})
}
