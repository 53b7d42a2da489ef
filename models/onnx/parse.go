package onnx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// Parse decodes an ONNX ModelProto. It returns an error, never panics, on
// truncated or malformed input. Fields this package does not model are
// skipped.
func Parse(b []byte) (*Model, error) {
	m, err := parseModel(b)
	if err != nil {
		return nil, fmt.Errorf("parse onnx model: %w", err)
	}
	return m, nil
}

// ReadFile reads and parses the ONNX model at path.
func ReadFile(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read onnx model: %w", err)
	}
	m, err := parseModel(b)
	if err != nil {
		return nil, fmt.Errorf("read onnx model %q: %w", path, err)
	}
	return m, nil
}

// field is one decoded protobuf field: v holds varint and fixed values, b
// the payload of length-delimited ones.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

var errWireType = errors.New("wrong wire type")

func (f field) wireTypeError() error {
	return fmt.Errorf("field %d: %w", f.num, errWireType)
}

// eachField calls fn for every field in msg, in order.
func eachField(msg []byte, fn func(f field) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return protowire.ParseError(n)
		}
		msg = msg[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(msg)
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func (f field) int() (int64, error) {
	if f.typ != protowire.VarintType {
		return 0, f.wireTypeError()
	}
	return int64(f.v), nil
}

func (f field) bytes() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, f.wireTypeError()
	}
	return f.b, nil
}

func (f field) str() (string, error) {
	b, err := f.bytes()
	return string(b), err
}

func (f field) float() (float32, error) {
	if f.typ != protowire.Fixed32Type {
		return 0, f.wireTypeError()
	}
	return math.Float32frombits(uint32(f.v)), nil
}

// appendInts decodes a repeated varint field, packed or not.
func (f field) appendInts(dst []int64) ([]int64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(dst, int64(f.v)), nil
	case protowire.BytesType:
		for b := f.b; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
		return dst, nil
	}
	return nil, f.wireTypeError()
}

// appendFloats decodes a repeated float field, packed or not.
func (f field) appendFloats(dst []float32) ([]float32, error) {
	switch f.typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(f.v))), nil
	case protowire.BytesType:
		if len(f.b)%4 != 0 {
			return nil, fmt.Errorf("packed floats: %d bytes", len(f.b))
		}
		for b := f.b; len(b) > 0; b = b[4:] {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b)))
		}
		return dst, nil
	}
	return nil, f.wireTypeError()
}

func parseModel(b []byte) (*Model, error) {
	m := &Model{}
	err := eachField(b, func(f field) (err error) {
		switch f.num {
		case modelIRVersion:
			m.IRVersion, err = f.int()
		case modelProducerName:
			m.ProducerName, err = f.str()
		case modelProducerVersion:
			m.ProducerVersion, err = f.str()
		case modelDocString:
			m.DocString, err = f.str()
		case modelGraph:
			if err = parseSub(f, m.Graph.parse); err != nil {
				err = fmt.Errorf("graph: %w", err)
			}
		case modelOpsetImport:
			var o OpsetID
			if o, err = parseOpset(f); err == nil {
				m.OpsetImports = append(m.OpsetImports, o)
			}
		case modelMetadataProps:
			var kv KV
			if kv, err = parseKV(f); err == nil {
				m.Metadata = append(m.Metadata, kv)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func parseOpset(f field) (OpsetID, error) {
	var o OpsetID
	b, err := f.bytes()
	if err != nil {
		return o, err
	}
	err = eachField(b, func(f field) (err error) {
		switch f.num {
		case opsetDomain:
			o.Domain, err = f.str()
		case opsetVersion:
			o.Version, err = f.int()
		}
		return err
	})
	return o, err
}

func parseKV(f field) (KV, error) {
	var kv KV
	b, err := f.bytes()
	if err != nil {
		return kv, err
	}
	err = eachField(b, func(f field) (err error) {
		switch f.num {
		case kvKey:
			kv.Key, err = f.str()
		case kvValue:
			kv.Value, err = f.str()
		}
		return err
	})
	return kv, err
}

func (g *Graph) parse(b []byte) error {
	return eachField(b, func(f field) error {
		switch f.num {
		case graphName:
			var err error
			g.Name, err = f.str()
			return err
		case graphNode:
			var n Node
			if err := parseSub(f, n.parse); err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case graphInitializer:
			var t Tensor
			if err := parseSub(f, t.parse); err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
			}
			g.Initializers = append(g.Initializers, t)
		case graphInput, graphOutput:
			var v ValueInfo
			if err := parseSub(f, v.parse); err != nil {
				return fmt.Errorf("value info: %w", err)
			}
			if f.num == graphInput {
				g.Inputs = append(g.Inputs, v)
			} else {
				g.Outputs = append(g.Outputs, v)
			}
		}
		return nil
	})
}

// parseSub decodes the embedded message in f with parse.
func parseSub(f field, parse func([]byte) error) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	return parse(b)
}

func (n *Node) parse(b []byte) error {
	return eachField(b, func(f field) (err error) {
		var s string
		switch f.num {
		case nodeInput:
			if s, err = f.str(); err == nil {
				n.Inputs = append(n.Inputs, s)
			}
		case nodeOutput:
			if s, err = f.str(); err == nil {
				n.Outputs = append(n.Outputs, s)
			}
		case nodeName:
			n.Name, err = f.str()
		case nodeOpType:
			n.OpType, err = f.str()
		case nodeDomain:
			n.Domain, err = f.str()
		case nodeAttribute:
			var a Attr
			if err = parseSub(f, a.parse); err != nil {
				return fmt.Errorf("attribute %d: %w", len(n.Attrs), err)
			}
			n.Attrs = append(n.Attrs, a)
		}
		return err
	})
}

func (a *Attr) parse(b []byte) error {
	return eachField(b, func(f field) (err error) {
		switch f.num {
		case attrName:
			a.Name, err = f.str()
		case attrType:
			var v int64
			v, err = f.int()
			a.Type = AttrType(v)
		case attrF:
			a.F, err = f.float()
		case attrI:
			a.I, err = f.int()
		case attrS:
			a.S, err = f.str()
		case attrT:
			t := new(Tensor)
			if err = parseSub(f, t.parse); err == nil {
				a.T = t
			}
		case attrFloats:
			a.Floats, err = f.appendFloats(a.Floats)
		case attrInts:
			a.Ints, err = f.appendInts(a.Ints)
		case attrStrings:
			var s string
			if s, err = f.str(); err == nil {
				a.Strings = append(a.Strings, s)
			}
		}
		return err
	})
}

func (t *Tensor) parse(b []byte) error {
	var raw []byte
	var external bool
	err := eachField(b, func(f field) (err error) {
		switch f.num {
		case tensorDims:
			t.Dims, err = f.appendInts(t.Dims)
		case tensorDataType:
			var v int64
			v, err = f.int()
			t.DataType = DataType(v)
		case tensorName:
			t.Name, err = f.str()
		case tensorRawData:
			raw, err = f.bytes()
		case tensorFloatData:
			t.Floats, err = f.appendFloats(t.Floats)
		case tensorInt64Data:
			t.Int64s, err = f.appendInts(t.Int64s)
		case tensorDataLocation:
			var v int64
			v, err = f.int()
			external = v == 1
		}
		return err
	})
	if err != nil {
		return err
	}
	n, ok := numElements(t.Dims)
	if !ok {
		return fmt.Errorf("tensor %q: invalid dims %v", t.Name, t.Dims)
	}
	if len(raw) > 0 {
		switch t.DataType {
		case Float:
			if int64(len(raw)) != 4*n {
				return fmt.Errorf("tensor %q: %d bytes of raw data for %d floats", t.Name, len(raw), n)
			}
			t.Floats = make([]float32, n)
			for i := range t.Floats {
				t.Floats[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case Int64:
			if int64(len(raw)) != 8*n {
				return fmt.Errorf("tensor %q: %d bytes of raw data for %d int64s", t.Name, len(raw), n)
			}
			t.Int64s = make([]int64, n)
			for i := range t.Int64s {
				t.Int64s[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
			}
		default:
			t.Raw = bytes.Clone(raw)
		}
		return nil
	}
	if external {
		return nil
	}
	switch {
	case t.DataType == Float && len(t.Floats) > 0 && int64(len(t.Floats)) != n:
		return fmt.Errorf("tensor %q: %d floats for dims %v", t.Name, len(t.Floats), t.Dims)
	case t.DataType == Int64 && len(t.Int64s) > 0 && int64(len(t.Int64s)) != n:
		return fmt.Errorf("tensor %q: %d int64s for dims %v", t.Name, len(t.Int64s), t.Dims)
	}
	return nil
}

func (v *ValueInfo) parse(b []byte) error {
	return eachField(b, func(f field) (err error) {
		switch f.num {
		case valueInfoName:
			v.Name, err = f.str()
		case valueInfoType:
			err = parseSub(f, func(b []byte) error {
				return eachField(b, func(f field) error {
					if f.num != typeTensorType {
						return nil // sequence, map, optional: no element type or shape here
					}
					return parseSub(f, v.parseTensorType)
				})
			})
		}
		return err
	})
}

func (v *ValueInfo) parseTensorType(b []byte) error {
	return eachField(b, func(f field) (err error) {
		switch f.num {
		case tensorElemType:
			var t int64
			t, err = f.int()
			v.ElemType = DataType(t)
		case tensorShape:
			v.Shape = []Dim{}
			err = parseSub(f, func(b []byte) error {
				return eachField(b, func(f field) error {
					if f.num != shapeDim {
						return nil
					}
					var d Dim
					if err := parseSub(f, d.parse); err != nil {
						return err
					}
					v.Shape = append(v.Shape, d)
					return nil
				})
			})
		}
		return err
	})
}

func (d *Dim) parse(b []byte) error {
	return eachField(b, func(f field) (err error) {
		switch f.num {
		case dimValue:
			d.Value, err = f.int()
		case dimParam:
			d.Param, err = f.str()
		}
		return err
	})
}
