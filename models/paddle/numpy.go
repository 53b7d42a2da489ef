package paddle

import (
	"math"
	"strconv"
	"strings"
)

// The numpy side of unpickling: the allow-listed globals and how calling
// them (REDUCE) and setting their state (BUILD) rebuilds arrays and dtypes.

// globalKind is what an allowed global does when called.
type globalKind int

const (
	globalReconstruct globalKind = iota + 1 // numpy.core.multiarray._reconstruct
	globalNdarray                           // numpy.ndarray
	globalDtype                             // numpy.dtype
	globalEncode                            // _codecs.encode
	globalOrderedDict                       // collections.OrderedDict
	globalBytes                             // bytes (protocol 2's empty bytes)
)

// allowedGlobals is the whole set of callables a .pdparams file may name.
var allowedGlobals = map[string]globalKind{
	"numpy.core.multiarray._reconstruct":  globalReconstruct,
	"numpy._core.multiarray._reconstruct": globalReconstruct,
	"numpy.ndarray":                       globalNdarray,
	"numpy.dtype":                         globalDtype,
	"_codecs.encode":                      globalEncode,
	"collections.OrderedDict":             globalOrderedDict,
	"__builtin__.bytes":                   globalBytes,
	"builtins.bytes":                      globalBytes,
}

type pyGlobal struct {
	name string // module.qualname
	kind globalKind
}

// ndarray is a numpy array being rebuilt: _reconstruct creates it empty and
// BUILD fills it in.
type ndarray struct {
	built   bool
	shape   []int
	dtype   dtype
	fortran bool
	raw     []byte // as stored: in dtype's byte order and Fortran order if fortran
}

// npDtype is a numpy.dtype object; BUILD may change its byte order.
type npDtype struct{ dtype }

// global resolves module.name against the allow-list; it never imports or
// runs anything.
func (u *unpickler) global(module, name string) (pyGlobal, error) {
	full := module + "." + name
	kind, ok := allowedGlobals[full]
	if !ok {
		return pyGlobal{}, u.errorf("%w %s: a .pdparams file only needs numpy array globals", ErrRefusedGlobal, printable(full))
	}
	return pyGlobal{name: full, kind: kind}, nil
}

// printable quotes s when it holds anything but printable ASCII.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.Quote(s)
		}
	}
	return s
}

// call applies an allowed global to its arguments (REDUCE or NEWOBJ).
func (u *unpickler) call(g pyGlobal, args pyTuple) (any, error) {
	switch g.kind {
	case globalReconstruct:
		// _reconstruct(numpy.ndarray, (0,), b'b'): an empty array that BUILD fills.
		if len(args) != 3 {
			return nil, u.errorf("%s takes 3 arguments, got %d", g.name, len(args))
		}
		if cls, ok := args[0].(pyGlobal); !ok || cls.kind != globalNdarray {
			return nil, u.errorf("%s of %s, want numpy.ndarray", g.name, aTypeName(args[0]))
		}
		return &ndarray{}, nil
	case globalDtype:
		// dtype('f4', False, True)
		if len(args) < 1 {
			return nil, u.errorf("numpy.dtype takes a type string")
		}
		s, ok := args[0].(string)
		if !ok {
			return nil, u.errorf("numpy.dtype of %s, want a str", aTypeName(args[0]))
		}
		d, err := parseTypeStr(s)
		if err != nil {
			return nil, u.errorf("%w", err)
		}
		return &npDtype{d}, nil
	case globalEncode:
		// _codecs.encode(str, 'latin1'): how protocol 2 stores bytes.
		if len(args) != 2 {
			return nil, u.errorf("_codecs.encode takes 2 arguments, got %d", len(args))
		}
		s, ok1 := args[0].(string)
		enc, ok2 := args[1].(string)
		if !ok1 || !ok2 {
			return nil, u.errorf("_codecs.encode of %s and %s, want two strings", typeName(args[0]), typeName(args[1]))
		}
		if e := strings.ToLower(enc); e != "latin1" && e != "latin-1" && e != "iso-8859-1" {
			return nil, u.errorf("_codecs.encode with encoding %q, want latin1", enc)
		}
		return u.latin1Encode(s)
	case globalBytes:
		if len(args) == 0 {
			return pyBytes{}, nil
		}
		if b, ok := args[0].(pyBytes); ok && len(args) == 1 {
			return b, nil
		}
		return nil, u.errorf("bytes of %d arguments is not supported", len(args))
	case globalOrderedDict:
		d := newDict()
		switch {
		case len(args) == 0:
		case len(args) == 1:
			l, ok := args[0].(*pyList)
			if !ok {
				return nil, u.errorf("OrderedDict of %s is not supported", aTypeName(args[0]))
			}
			for _, it := range l.items {
				kv, ok := it.(pyTuple)
				if !ok || len(kv) != 2 {
					return nil, u.errorf("OrderedDict item is %s, want a pair", aTypeName(it))
				}
				if err := d.set(kv[0], kv[1]); err != nil {
					return nil, u.errorf("%w", err)
				}
			}
		default:
			return nil, u.errorf("OrderedDict takes at most 1 argument, got %d", len(args))
		}
		return d, nil
	}
	return nil, u.errorf("%s cannot be called", g.name)
}

// build applies BUILD's state to inst.
func (u *unpickler) build(inst, state any) error {
	switch inst := inst.(type) {
	case *ndarray:
		return u.buildArray(inst, state)
	case *npDtype:
		return u.buildDtype(inst, state)
	case *pyDict:
		if state == nil {
			return nil
		}
		if s, ok := state.(*pyDict); ok && len(s.keys) == 0 {
			return nil
		}
	}
	return u.errorf("cannot set the state of %s from %s", aTypeName(inst), aTypeName(state))
}

// buildDtype applies numpy's dtype state (3, '<', None, None, None, -1, -1, 0).
func (u *unpickler) buildDtype(d *npDtype, state any) error {
	t, ok := state.(pyTuple)
	if !ok || len(t) < 2 {
		return u.errorf("numpy.dtype state is %s, want a tuple", aTypeName(state))
	}
	order, ok := t[1].(string)
	if !ok || len(order) != 1 {
		return u.errorf("numpy.dtype byte order is %s, want a one-character str", typeName(t[1]))
	}
	for i := 2; i < min(5, len(t)); i++ {
		if t[i] != nil {
			return u.errorf("structured or sub-array numpy dtypes are not supported")
		}
	}
	if err := d.setOrder(order[0]); err != nil {
		return u.errorf("numpy dtype %s: %w", d.typeStr(), err)
	}
	return nil
}

// buildArray applies numpy's array state (1, shape, dtype, is_fortran, raw);
// the version-less 4-tuple of old numpy is accepted too.
func (u *unpickler) buildArray(a *ndarray, state any) error {
	t, ok := state.(pyTuple)
	if !ok || len(t) != 4 && len(t) != 5 {
		return u.errorf("numpy.ndarray state is %s of %d items, want a 5-tuple", aTypeName(state), tupleLen(state))
	}
	if a.built {
		return u.errorf("numpy.ndarray state set twice")
	}
	if len(t) == 5 {
		if v, ok := t[0].(int64); !ok || v != 1 {
			return u.errorf("numpy.ndarray state version %v, want 1", t[0])
		}
		t = t[1:]
	}
	shape, err := u.shape(t[0])
	if err != nil {
		return err
	}
	d, ok := t[1].(*npDtype)
	if !ok {
		return u.errorf("numpy.ndarray dtype is %s", aTypeName(t[1]))
	}
	var fortran bool
	switch f := t[2].(type) {
	case bool:
		fortran = f
	case int64:
		fortran = f != 0
	default:
		return u.errorf("numpy.ndarray is_fortran is %s, want a bool", aTypeName(t[2]))
	}
	var raw []byte
	switch r := t[3].(type) {
	case pyBytes:
		raw = r
	case string: // a Python 2 str read with encoding="latin1"
		if raw, err = u.latin1Encode(r); err != nil {
			return err
		}
	default:
		return u.errorf("numpy.ndarray data is %s, want bytes (object arrays are not supported)", aTypeName(t[3]))
	}
	n, ok := numElements(shape, len(raw)+1)
	if !ok || n*d.size != len(raw) {
		return u.errorf("numpy array of shape %v and dtype %s needs %s bytes, has %d",
			shape, d.dtype, needBytes(shape, d.size), len(raw))
	}
	*a = ndarray{built: true, shape: shape, dtype: d.dtype, fortran: fortran, raw: raw}
	return nil
}

// needBytes formats the byte count a shape needs, or "more" when it
// overflows.
func needBytes(shape []int, size int) string {
	n, ok := numElements(shape, math.MaxInt/size)
	if !ok {
		return "an impossible number of"
	}
	return strconv.Itoa(n * size)
}

func tupleLen(v any) int {
	if t, ok := v.(pyTuple); ok {
		return len(t)
	}
	return 0
}

// maxDims is NumPy 2's NPY_MAXDIMS (NumPy 1 allows 32).
const maxDims = 64

func (u *unpickler) shape(v any) ([]int, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, u.errorf("numpy.ndarray shape is %s, want a tuple", aTypeName(v))
	}
	if len(t) > maxDims {
		return nil, u.errorf("numpy.ndarray shape has %d dimensions, numpy allows at most %d", len(t), maxDims)
	}
	shape := make([]int, len(t))
	for i, d := range t {
		n, ok := d.(int64)
		if !ok || n < 0 || n > math.MaxInt {
			return nil, u.errorf("numpy.ndarray dimension %d is %v, want a non-negative int", i, d)
		}
		shape[i] = int(n)
	}
	return shape, nil
}

func latin1Decode(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func (u *unpickler) latin1Encode(s string) (pyBytes, error) {
	if err := u.alloc(len(s)); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, u.errorf("character %U cannot be encoded as latin1", r)
		}
		out = append(out, byte(r))
	}
	return out, nil
}
