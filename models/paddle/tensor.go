package paddle

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Tensor is one array from a checkpoint.
type Tensor struct {
	Shape []int
	DType string    // numpy dtype str as in the file: "<f4", "<f8", "<f2", "<i8", "|u1", ...
	Data  []float32 // the values when DType is "<f4" (float32), else nil
	Raw   []byte    // the raw C-order bytes for other dtypes (may be nil for float32)
}

// Float32Tensor returns a float32 tensor of the given shape holding data in
// C order. It does not copy data.
func Float32Tensor(shape []int, data []float32) Tensor {
	return Tensor{Shape: slices.Clone(shape), DType: "<f4", Data: data}
}

// NumElements is the product of the shape: 1 for a scalar.
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Checkpoint is the content of a .pdparams file.
type Checkpoint struct {
	Keys       []string          // tensor keys in file order (meta entries excluded)
	Tensors    map[string]Tensor // by key
	ParamNames map[string]string // the StructuredToParameterName@@ table, if present
}

// Meta entries of the saved dict (Paddle's python/paddle/framework/io.py).
const (
	paramNamesKey = "StructuredToParameterName@@"
	unpackInfoKey = "UnpackBigParamInfor@@"
)

// dtype is a numpy scalar dtype: byte order ('<', '>' or '|'), kind and item
// size, e.g. {'<', 'f', 4} for "<f4".
type dtype struct {
	order byte
	kind  byte
	size  int
}

func (d dtype) String() string {
	return string([]byte{d.order, d.kind}) + strconv.Itoa(d.size)
}

// typeStr is the first argument numpy.dtype is called with when unpickling:
// kind and size without the byte order ("f4").
func (d dtype) typeStr() string { return string(d.kind) + strconv.Itoa(d.size) }

// dtypeSizes lists the numeric kinds this package handles and their sizes.
var dtypeSizes = map[byte][]int{
	'b': {1},          // bool
	'i': {1, 2, 4, 8}, // signed integers
	'u': {1, 2, 4, 8}, // unsigned integers
	'f': {2, 4, 8},    // floats
	'c': {8, 16},      // complex
}

// parseTypeStr parses a numpy type string such as "f4", "<f4", ">i8" or "|u1".
// Without a byte order it defaults to little-endian (the native order of the
// machines Paddle runs on). One-byte types always get '|'.
func parseTypeStr(s string) (dtype, error) {
	var d dtype
	rest := s
	if len(rest) > 0 && (rest[0] == '<' || rest[0] == '>' || rest[0] == '|' || rest[0] == '=') {
		d.order, rest = rest[0], rest[1:]
	}
	if len(rest) < 2 {
		return dtype{}, fmt.Errorf("unsupported numpy dtype %q", s)
	}
	d.kind = rest[0]
	size, err := strconv.Atoi(rest[1:])
	if err != nil || !slices.Contains(dtypeSizes[d.kind], size) {
		return dtype{}, fmt.Errorf("unsupported numpy dtype %q (want bool, int, uint, float or complex)", s)
	}
	d.size = size
	if err := d.setOrder(d.order); err != nil {
		return dtype{}, fmt.Errorf("numpy dtype %q: %w", s, err)
	}
	return d, nil
}

// setOrder sets the byte order, normalising it the way numpy's dtype.str
// does: '|' for one-byte types, '<' for the native order '='.
func (d *dtype) setOrder(order byte) error {
	switch {
	case d.size == 1:
		d.order = '|'
	case order == 0 || order == '=' || order == '<':
		d.order = '<'
	case order == '>':
		d.order = '>'
	default:
		return fmt.Errorf("byte order %q is not valid for a %d-byte type", order, d.size)
	}
	return nil
}

// swapUnit is the width of the units a byte swap reverses: the item size,
// or half of it for complex numbers.
func (d dtype) swapUnit() int {
	if d.kind == 'c' {
		return d.size / 2
	}
	return d.size
}

// isFloat32 reports whether d is little-endian float32, the type kept in
// Tensor.Data.
func (d dtype) isFloat32() bool { return d == dtype{'<', 'f', 4} }

// numElements multiplies the dimensions of shape, reporting false when a
// dimension is negative or the product overflows limit.
func numElements(shape []int, limit int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > limit/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// float32sFromLE decodes little-endian float32 values.
func float32sFromLE(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// float32sToLE encodes float32 values little-endian.
func float32sToLE(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(f))
	}
	return out
}

// byteSwapped returns a copy of raw with every unit of width bytes reversed.
func byteSwapped(raw []byte, width int) []byte {
	out := make([]byte, len(raw))
	for i := 0; i+width <= len(raw); i += width {
		for j := range width {
			out[i+j] = raw[i+width-1-j]
		}
	}
	return out
}

// fortranToC reorders the items of a Fortran-order (column-major) buffer
// into C order (row-major).
func fortranToC(raw []byte, shape []int, itemSize int) []byte {
	out := make([]byte, len(raw))
	n := len(raw) / itemSize
	if n == 0 {
		return out
	}
	// Strides, in items, of each axis in the Fortran-order source.
	fStride := make([]int, len(shape))
	s := 1
	for i, d := range shape {
		fStride[i] = s
		s *= d
	}
	idx := make([]int, len(shape)) // C-order multi-index of item c
	src := 0
	for c := range n {
		copy(out[c*itemSize:(c+1)*itemSize], raw[src*itemSize:(src+1)*itemSize])
		// Advance the multi-index, last axis fastest.
		for ax := len(shape) - 1; ax >= 0; ax-- {
			idx[ax]++
			src += fStride[ax]
			if idx[ax] < shape[ax] {
				break
			}
			src -= idx[ax] * fStride[ax]
			idx[ax] = 0
		}
	}
	return out
}
