package engine

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"
)

// ParamCount returns the number of weights of the ONNX model at path: the
// elements of its graph's initializers (a tensor with a negative dimension,
// or more elements than an int64 holds, counts 0). ONNX Runtime does not
// say, so it reads the initializers' dimensions from the file itself:
// ModelProto.graph (7), GraphProto.initializer (5), TensorProto.dims (1);
// everything else is skipped.
func ParamCount(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("count params: %w", err)
	}
	var n int64
	err = eachMessage(b, 7, func(graph []byte) error {
		return eachMessage(graph, 5, func(init []byte) error {
			dims, err := tensorDims(init)
			if err == nil {
				n += elements(dims)
			}
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("count params of model %q: %w", filepath.Base(path), err)
	}
	return n, nil
}

var errMalformed = errors.New("malformed onnx protobuf")

// eachMessage calls fn with the payload of every length-delimited field num
// of the protobuf message b.
func eachMessage(b []byte, num protowire.Number, fn func([]byte) error) error {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return errMalformed
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return errMalformed
			}
			if err := fn(v); err != nil {
				return err
			}
			b = b[l:]
			continue
		}
		if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
			return errMalformed
		}
		b = b[l:]
	}
	return nil
}

// tensorDims returns TensorProto.dims (repeated int64, packed or not).
func tensorDims(b []byte) ([]int64, error) {
	var dims []int64
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, errMalformed
		}
		b = b[l:]
		switch {
		case n == 1 && typ == protowire.VarintType:
			v, l := protowire.ConsumeVarint(b)
			if l < 0 {
				return nil, errMalformed
			}
			dims, b = append(dims, int64(v)), b[l:]
		case n == 1 && typ == protowire.BytesType:
			packed, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil, errMalformed
			}
			for len(packed) > 0 {
				v, pl := protowire.ConsumeVarint(packed)
				if pl < 0 {
					return nil, errMalformed
				}
				dims, packed = append(dims, int64(v)), packed[pl:]
			}
			b = b[l:]
		default:
			if l = protowire.ConsumeFieldValue(n, typ, b); l < 0 {
				return nil, errMalformed
			}
			b = b[l:]
		}
	}
	return dims, nil
}

// elements is the product of dims (1 for a scalar), or 0 for a negative
// dimension or a product past int64.
func elements(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		if d < 0 || (d > 0 && n > math.MaxInt64/d) {
			return 0
		}
		n *= d
	}
	return n
}
