// Package onnx reads and writes ONNX model files (the ModelProto protobuf)
// with nothing but protowire: enough of the format to build graphs in Go, to
// store and read metadata_props, and to inspect a model's inputs, outputs and
// weights.
//
// It also puts the actiond manifest (models.Manifest) into a model and reads
// it back with the graph it describes (EmbedManifest, LoadManifest,
// Inspect), for the model builders and tools (`actiond model`).
//
// It never runs a model (that is engine) and never checks that a graph is
// valid ONNX beyond what decoding needs: ONNX Runtime is the judge of that.
// The server must not import it: it reads manifests through ONNX Runtime
// (engine.Session.Manifest).
// Parse skips what this package does not model (sparse initializers,
// value_info, training info, functions, sub-graph attribute values), so
// writing back a parsed model that uses them loses them (or, for sub-graph
// attributes, fails).
package onnx

import (
	"fmt"
	"math"
)

// DefaultIRVersion is written when Model.IRVersion is zero. IR 8 is the
// version that goes with opset 17 (ONNX 1.12).
const DefaultIRVersion = 8

// DataType is TensorProto.DataType: the element type of a tensor.
type DataType int32

// The element types this package decodes into Go slices. Others are kept as
// raw little-endian bytes in Tensor.Raw.
const (
	Undefined DataType = 0
	Float     DataType = 1
	Int64     DataType = 7
)

// Element types of quantised models, kept in Tensor.Raw: activations in
// Uint8, weights in Int8, biases in Int32.
const (
	Uint8 DataType = 2
	Int8  DataType = 3
	Int32 DataType = 6
)

// Model is an ONNX ModelProto.
type Model struct {
	// IRVersion is the ONNX IR version. It defaults to DefaultIRVersion.
	IRVersion       int64
	OpsetImports    []OpsetID
	ProducerName    string
	ProducerVersion string
	DocString       string
	Graph           Graph
	// Metadata is metadata_props, in file order.
	Metadata []KV
}

// OpsetID is an OperatorSetIdProto. Domain "" is the default ONNX domain.
type OpsetID struct {
	Domain  string
	Version int64
}

// KV is a StringStringEntryProto.
type KV struct {
	Key, Value string
}

// Graph is a GraphProto.
type Graph struct {
	Name         string
	Nodes        []Node
	Initializers []Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node is a NodeProto: one operator application.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// AttrType is AttributeProto.AttributeType.
type AttrType int32

// The attribute types this package reads and writes.
const (
	AttrTypeFloat   AttrType = 1
	AttrTypeInt     AttrType = 2
	AttrTypeString  AttrType = 3
	AttrTypeTensor  AttrType = 4
	AttrTypeFloats  AttrType = 6
	AttrTypeInts    AttrType = 7
	AttrTypeStrings AttrType = 8
)

// Attr is an AttributeProto. Type says which value field is in use.
type Attr struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       string
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings []string
}

// AttrInt returns an INT attribute.
func AttrInt(name string, v int64) Attr { return Attr{Name: name, Type: AttrTypeInt, I: v} }

// AttrInts returns an INTS attribute.
func AttrInts(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrTypeInts, Ints: v} }

// AttrFloat returns a FLOAT attribute.
func AttrFloat(name string, v float32) Attr { return Attr{Name: name, Type: AttrTypeFloat, F: v} }

// AttrFloats returns a FLOATS attribute.
func AttrFloats(name string, v ...float32) Attr {
	return Attr{Name: name, Type: AttrTypeFloats, Floats: v}
}

// AttrString returns a STRING attribute.
func AttrString(name, v string) Attr { return Attr{Name: name, Type: AttrTypeString, S: v} }

// AttrTensor returns a TENSOR attribute (as used by Constant).
func AttrTensor(name string, t Tensor) Attr { return Attr{Name: name, Type: AttrTypeTensor, T: &t} }

// Tensor is a TensorProto. Float tensors hold their values in Floats, Int64
// tensors in Int64s, any other type in Raw (little-endian, as raw_data).
type Tensor struct {
	Name     string
	Dims     []int64
	DataType DataType
	Floats   []float32
	Int64s   []int64
	Raw      []byte
}

// FloatTensor returns a float32 tensor.
func FloatTensor(name string, dims []int64, v []float32) Tensor {
	return Tensor{Name: name, Dims: dims, DataType: Float, Floats: v}
}

// Int64Tensor returns an int64 tensor.
func Int64Tensor(name string, dims []int64, v []int64) Tensor {
	return Tensor{Name: name, Dims: dims, DataType: Int64, Int64s: v}
}

// NumElements is the product of Dims (1 for a scalar).
func (t *Tensor) NumElements() int64 {
	n, _ := numElements(t.Dims)
	return n
}

// numElements reports false for negative dims or a product past int64.
func numElements(dims []int64) (int64, bool) {
	n := int64(1)
	for _, d := range dims {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// ValueInfo is a ValueInfoProto for a tensor: a graph input or output.
type ValueInfo struct {
	Name     string
	ElemType DataType
	// Shape is nil when the rank is unknown.
	Shape []Dim
}

// Dim is one dimension of a shape: a fixed Value, or a symbolic Param
// (e.g. "N") when Param is non-empty.
type Dim struct {
	Value int64
	Param string
}

// String writes the dimension as it reads in a shape: "N", "224" or "?".
func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value > 0:
		return fmt.Sprint(d.Value)
	default:
		return "?"
	}
}

// MetadataValue returns the value of the first metadata_props entry with key.
func (m *Model) MetadataValue(key string) (string, bool) {
	for _, kv := range m.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// SetMetadata sets key to value, replacing the first entry with that key or
// appending one.
func (m *Model) SetMetadata(key, value string) {
	for i := range m.Metadata {
		if m.Metadata[i].Key == key {
			m.Metadata[i].Value = value
			return
		}
	}
	m.Metadata = append(m.Metadata, KV{Key: key, Value: value})
}

// Opset returns the version imported for domain ("" or "ai.onnx" for the
// default domain), or 0 if there is none.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.OpsetImports {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// ParamCount is the number of weights: the sum of the initializers' elements.
func (g *Graph) ParamCount() int64 {
	var n int64
	for i := range g.Initializers {
		n += g.Initializers[i].NumElements()
	}
	return n
}

// String names the element type as Go does: "float32", "int64", or
// "type N" for the others.
func (d DataType) String() string {
	switch d {
	case Float:
		return "float32"
	case Int64:
		return "int64"
	case Undefined:
		return "undefined"
	}
	return fmt.Sprintf("type %d", int32(d))
}
