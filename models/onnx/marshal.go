package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/actiond/actiond/models/atomicfile"
)

// Field numbers from onnx.proto.
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	opsetDomain  = 1
	opsetVersion = 2

	kvKey   = 1
	kvValue = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName    = 1
	attrF       = 2
	attrI       = 3
	attrS       = 4
	attrT       = 5
	attrFloats  = 7
	attrInts    = 8
	attrStrings = 9
	attrType    = 20

	tensorDims         = 1
	tensorDataType     = 2
	tensorFloatData    = 4
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDataLocation = 14

	valueInfoName = 1
	valueInfoType = 2

	typeTensorType = 1
	tensorElemType = 1
	tensorShape    = 2
	shapeDim       = 1
	dimValue       = 1
	dimParam       = 2
)

// Marshal encodes the model as an ONNX ModelProto.
func (m *Model) Marshal() ([]byte, error) {
	if len(m.OpsetImports) == 0 {
		return nil, errors.New("marshal onnx model: no opset import")
	}
	ir := m.IRVersion
	if ir == 0 {
		ir = DefaultIRVersion
	}
	b := appendVarintField(nil, modelIRVersion, ir)
	b = appendString(b, modelProducerName, m.ProducerName)
	b = appendString(b, modelProducerVersion, m.ProducerVersion)
	b = appendString(b, modelDocString, m.DocString)
	g, err := m.Graph.marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal onnx model: %w", err)
	}
	b = appendMessage(b, modelGraph, g)
	for _, o := range m.OpsetImports {
		var ob []byte
		ob = appendString(ob, opsetDomain, o.Domain)
		ob = appendVarintField(ob, opsetVersion, o.Version)
		b = appendMessage(b, modelOpsetImport, ob)
	}
	for _, kv := range m.Metadata {
		var kb []byte
		kb = appendString(kb, kvKey, kv.Key)
		kb = appendString(kb, kvValue, kv.Value)
		b = appendMessage(b, modelMetadataProps, kb)
	}
	return b, nil
}

// WriteFile writes the model to path atomically: to a temporary file in the
// same directory, then renamed over path, so readers never see half a model.
func (m *Model) WriteFile(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	err = atomicfile.Write(path, 0o644, func(w io.Writer) error { _, err := w.Write(b); return err })
	if err != nil {
		return fmt.Errorf("write onnx model %q: %w", path, err)
	}
	return nil
}

func (g *Graph) marshal() ([]byte, error) {
	var b []byte
	for i := range g.Nodes {
		nb, err := g.Nodes[i].marshal()
		if err != nil {
			return nil, fmt.Errorf("node %d (%s %q): %w", i, g.Nodes[i].OpType, g.Nodes[i].Name, err)
		}
		b = appendMessage(b, graphNode, nb)
	}
	b = appendString(b, graphName, g.Name)
	for i := range g.Initializers {
		tb, err := g.Initializers[i].marshal()
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", g.Initializers[i].Name, err)
		}
		b = appendMessage(b, graphInitializer, tb)
	}
	for _, v := range g.Inputs {
		b = appendMessage(b, graphInput, v.marshal())
	}
	for _, v := range g.Outputs {
		b = appendMessage(b, graphOutput, v.marshal())
	}
	return b, nil
}

func (n *Node) marshal() ([]byte, error) {
	if n.OpType == "" {
		return nil, errors.New("no op type")
	}
	var b []byte
	for _, s := range n.Inputs {
		b = appendStringAlways(b, nodeInput, s) // "" is an omitted optional input
	}
	for _, s := range n.Outputs {
		b = appendStringAlways(b, nodeOutput, s)
	}
	b = appendString(b, nodeName, n.Name)
	b = appendString(b, nodeOpType, n.OpType)
	for i := range n.Attrs {
		ab, err := n.Attrs[i].marshal()
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %w", n.Attrs[i].Name, err)
		}
		b = appendMessage(b, nodeAttribute, ab)
	}
	b = appendString(b, nodeDomain, n.Domain)
	return b, nil
}

func (a *Attr) marshal() ([]byte, error) {
	if a.Name == "" {
		return nil, errors.New("no name")
	}
	b := appendString(nil, attrName, a.Name)
	// proto2 repeated scalars in AttributeProto are not packed.
	switch a.Type {
	case AttrTypeFloat:
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrTypeInt:
		b = protowire.AppendTag(b, attrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrTypeString:
		b = appendStringAlways(b, attrS, a.S)
	case AttrTypeTensor:
		if a.T == nil {
			return nil, errors.New("tensor attribute without a tensor")
		}
		tb, err := a.T.marshal()
		if err != nil {
			return nil, err
		}
		b = appendMessage(b, attrT, tb)
	case AttrTypeFloats:
		for _, f := range a.Floats {
			b = protowire.AppendTag(b, attrFloats, protowire.Fixed32Type)
			b = protowire.AppendFixed32(b, math.Float32bits(f))
		}
	case AttrTypeInts:
		for _, v := range a.Ints {
			b = appendVarintAlways(b, attrInts, v)
		}
	case AttrTypeStrings:
		for _, s := range a.Strings {
			b = appendStringAlways(b, attrStrings, s)
		}
	default:
		return nil, fmt.Errorf("unsupported attribute type %d", a.Type)
	}
	return appendVarintAlways(b, attrType, int64(a.Type)), nil
}

func (t *Tensor) marshal() ([]byte, error) {
	n, ok := numElements(t.Dims)
	if !ok {
		return nil, fmt.Errorf("invalid dims %v", t.Dims)
	}
	var b []byte
	for _, d := range t.Dims {
		b = appendVarintAlways(b, tensorDims, d)
	}
	b = appendVarintAlways(b, tensorDataType, int64(t.DataType))
	b = appendString(b, tensorName, t.Name)
	var raw []byte
	switch t.DataType {
	case Float:
		if int64(len(t.Floats)) != n {
			return nil, fmt.Errorf("%d floats for dims %v", len(t.Floats), t.Dims)
		}
		raw = make([]byte, 0, 4*len(t.Floats))
		for _, f := range t.Floats {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
	case Int64:
		if int64(len(t.Int64s)) != n {
			return nil, fmt.Errorf("%d int64s for dims %v", len(t.Int64s), t.Dims)
		}
		raw = make([]byte, 0, 8*len(t.Int64s))
		for _, v := range t.Int64s {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
		}
	default:
		raw = t.Raw
	}
	if len(raw) > 0 {
		b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, raw)
	}
	return b, nil
}

func (v *ValueInfo) marshal() []byte {
	b := appendString(nil, valueInfoName, v.Name)
	tb := appendVarintAlways(nil, tensorElemType, int64(v.ElemType))
	if v.Shape != nil {
		var sb []byte
		for _, d := range v.Shape {
			var db []byte
			if d.Param != "" {
				db = appendStringAlways(db, dimParam, d.Param)
			} else {
				db = appendVarintAlways(db, dimValue, d.Value)
			}
			sb = appendMessage(sb, shapeDim, db)
		}
		tb = appendMessage(tb, tensorShape, sb)
	}
	var typ []byte
	typ = appendMessage(typ, typeTensorType, tb)
	return appendMessage(b, valueInfoType, typ)
}

func appendMessage(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// appendString omits empty strings (the proto default).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return appendStringAlways(b, num, s)
}

func appendStringAlways(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendVarintField omits zero (the proto default).
func appendVarintField(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	return appendVarintAlways(b, num, v)
}

func appendVarintAlways(b []byte, num protowire.Number, v int64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}
