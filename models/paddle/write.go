package paddle

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/actiond/actiond/models/atomicfile"
)

// WriteOptions configures Write.
type WriteOptions struct {
	// Protocol is the pickle protocol: 2, 3 or 4. 0 means 4, paddle.save's
	// default.
	Protocol int
	// NumpyCore is the module that holds _reconstruct: "numpy.core" (the
	// default, NumPy 1.x) or "numpy._core" (NumPy 2, which NumPy 1.x cannot
	// load).
	NumpyCore string
	// NoParamNames omits the StructuredToParameterName@@ entry.
	NoParamNames bool
	// ParamNames gives the StructuredToParameterName@@ value of some keys,
	// e.g. Checkpoint.ParamNames of a file being rewritten. Keys missing from
	// it get deterministic Paddle-style names ("conv2d_0.w_0").
	ParamNames map[string]string
}

// Write writes tensors as a .pdparams pickle in the order of keys, byte for
// byte as paddle.save (CPython's C pickler with NumPy's array reduction)
// would for the same arrays. Every key must have a tensor and every tensor a
// key. Float32 tensors are taken from Data when it is set, every other
// tensor from Raw (C order, in DType's byte order).
//
// With protocol 2 or 3, paddle.save splits arrays over 1 GiB into
// UnpackBigParamInfor@@ slices; Write refuses such arrays instead.
func Write(w io.Writer, keys []string, tensors map[string]Tensor, opts WriteOptions) error {
	if err := write(w, keys, tensors, opts); err != nil {
		return fmt.Errorf("write pdparams: %w", err)
	}
	return nil
}

// WriteFile writes a .pdparams file (see Write) atomically: to a temporary
// file in the same directory, renamed over path once complete.
func WriteFile(path string, keys []string, tensors map[string]Tensor, opts WriteOptions) error {
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return write(w, keys, tensors, opts) })
	if err != nil {
		return fmt.Errorf("write pdparams %s: %w", path, err)
	}
	return nil
}

// outTensor is a validated tensor about to be written.
type outTensor struct {
	key   string
	shape []int
	dt    dtype
	t     Tensor
}

// raw returns the bytes numpy stores for the array.
func (o outTensor) raw() []byte {
	if o.dt.isFloat32() && o.t.Data != nil {
		return float32sToLE(o.t.Data)
	}
	return o.t.Raw
}

func write(w io.Writer, keys []string, tensors map[string]Tensor, opts WriteOptions) error {
	proto := opts.Protocol
	switch proto {
	case 0:
		proto = 4
	case 2, 3, 4:
	default:
		return fmt.Errorf("protocol %d: want 2, 3 or 4", opts.Protocol)
	}
	core := opts.NumpyCore
	switch core {
	case "":
		core = "numpy.core"
	case "numpy.core", "numpy._core":
	default:
		return fmt.Errorf("NumpyCore %q: want \"numpy.core\" or \"numpy._core\"", opts.NumpyCore)
	}
	if len(keys) != len(tensors) {
		return fmt.Errorf("%d keys for %d tensors: every tensor needs exactly one key", len(keys), len(tensors))
	}
	out := make([]outTensor, len(keys))
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		t, ok := tensors[k]
		if !ok {
			return fmt.Errorf("key %q has no tensor", k)
		}
		if seen[k] {
			return fmt.Errorf("key %q is listed twice", k)
		}
		seen[k] = true
		if k == paramNamesKey || k == unpackInfoKey {
			return fmt.Errorf("key %q is reserved for Paddle's metadata", k)
		}
		o, err := validate(k, t, proto)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", k, err)
		}
		out[i] = o
	}
	var names []string
	if !opts.NoParamNames {
		names = paramNames(out, opts.ParamNames)
	}
	p := &pickler{w: bufio.NewWriterSize(w, 1<<16), proto: proto, core: core, memo: map[string]int{}}
	p.dump(out, names)
	if p.err != nil {
		return p.err
	}
	return p.w.Flush()
}

func validate(key string, t Tensor, proto int) (outTensor, error) {
	typ := t.DType
	if typ == "" && t.Data != nil {
		typ = "<f4"
	}
	dt, err := parseTypeStr(typ)
	if err != nil {
		return outTensor{}, err
	}
	n, ok := numElements(t.Shape, math.MaxInt/dt.size)
	if !ok {
		return outTensor{}, fmt.Errorf("invalid shape %v", t.Shape)
	}
	if dt.isFloat32() && t.Data != nil {
		if len(t.Data) != n {
			return outTensor{}, fmt.Errorf("shape %v needs %d float32 values, Data has %d", t.Shape, n, len(t.Data))
		}
	} else if len(t.Raw) != n*dt.size {
		return outTensor{}, fmt.Errorf("shape %v and dtype %s need %d bytes, Raw has %d", t.Shape, dt, n*dt.size, len(t.Raw))
	}
	// paddle.save's _unpack_saved_dict: MAX_NUMBER_OF_ELEMENT.
	if limit := (1<<30 - 1) / dt.size; proto < 4 && n > limit {
		return outTensor{}, fmt.Errorf("%d elements: paddle.save splits arrays over %d elements for protocol %d, which Write does not do; use protocol 4", n, limit, proto)
	}
	return outTensor{key: key, shape: t.Shape, dt: dt, t: t}, nil
}

// paramNames returns the StructuredToParameterName@@ value of each tensor:
// given ones first, else a Paddle-style name from the layer (the key up to
// its last dot) and the parameter: "conv2d_0.w_0", "conv2d_0.b_0",
// "batch_norm2d_3.w_1" (the running mean), "linear_1.w_0" and so on.
func paramNames(ts []outTensor, given map[string]string) []string {
	type layer struct {
		name    string
		weights int
	}
	byPrefix := map[string]*layer{}
	isBN := map[string]bool{}
	for _, t := range ts {
		prefix, param := splitKey(t.key)
		if param == "_mean" || param == "_variance" {
			isBN[prefix] = true
		}
	}
	counters := map[string]int{}
	names := make([]string, len(ts))
	for i, t := range ts {
		prefix, param := splitKey(t.key)
		l := byPrefix[prefix]
		if l == nil {
			typ := layerType(isBN[prefix], len(t.shape))
			l = &layer{name: typ + "_" + strconv.Itoa(counters[typ])}
			counters[typ]++
			byPrefix[prefix] = l
		}
		var suffix string
		if param == "bias" {
			suffix = "b_0"
		} else {
			suffix = "w_" + strconv.Itoa(l.weights)
			l.weights++
		}
		names[i] = l.name + "." + suffix
		if n, ok := given[t.key]; ok {
			names[i] = n
		}
	}
	return names
}

func splitKey(key string) (prefix, param string) {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i], key[i+1:]
	}
	return "", key
}

// layerType guesses the Paddle layer type from a layer's first parameter.
func layerType(batchNorm bool, rank int) string {
	switch {
	case batchNorm:
		return "batch_norm2d"
	case rank == 5:
		return "conv3d"
	case rank == 4:
		return "conv2d"
	case rank == 3:
		return "conv1d"
	case rank == 2:
		return "linear"
	}
	return "create_parameter"
}

// CPython pickler constants (Modules/_pickle.c).
const (
	frameSizeTarget = 64 << 10 // a frame is committed once it reaches this size
	frameSizeMin    = 4        // shorter frames are written without a FRAME header
	batchSize       = 1000     // items per SETITEMS
)

// pickler mirrors CPython's C pickler for the objects paddle.save writes:
// the same opcodes, memo indices, frame boundaries and SETITEMS batches.
//
// Memo identity follows CPython's object identity. Objects saved twice in
// one paddle.save call get ids: the globals and their name strings, each
// dtype (NumPy's canonical dtype instances), the keys (reused by the name
// table), the one-character strings and zero- or one-byte bytes objects
// that CPython caches (the byte order, _reconstruct's b'b'), and protocol
// 2's "latin1". Everything else is memoised under a fresh index only.
type pickler struct {
	w       *bufio.Writer
	err     error
	proto   int
	core    string
	framing bool
	frame   []byte
	memo    map[string]int
	memoLen int
}

// dump writes the saved dict: the arrays, then the name table if names is
// not nil.
func (p *pickler) dump(ts []outTensor, names []string) {
	p.direct([]byte{opProto, byte(p.proto)})
	p.framing = p.proto >= 4
	n := len(ts)
	if names != nil {
		n++
	}
	p.saveDict(n, func(i int) {
		if i == len(ts) {
			p.saveStr(paramNamesKey, "")
			p.saveDict(len(ts), func(i int) {
				p.saveStr(ts[i].key, "K:"+ts[i].key)
				p.saveStr(names[i], "")
			})
			return
		}
		p.saveStr(ts[i].key, "K:"+ts[i].key)
		p.saveArray(ts[i])
	})
	p.write(opStop)
	if p.framing {
		p.commitFrame(true)
		p.framing = false
	}
}

func (p *pickler) direct(b []byte) {
	if p.err == nil {
		_, p.err = p.w.Write(b)
	}
}

func (p *pickler) write(b ...byte) {
	if p.framing {
		p.frame = append(p.frame, b...)
		return
	}
	p.direct(b)
}

// writeSized writes an opcode, its little-endian length field of width
// bytes and the payload. Payloads of 64 KiB or more bypass the frame, as
// CPython writes them.
func (p *pickler) writeSized(op byte, width int, payload []byte) {
	hdr := make([]byte, 1+width, 1+8)
	hdr[0] = op
	n := uint64(len(payload))
	for i := range width {
		hdr[1+i] = byte(n >> (8 * i))
	}
	if len(payload) >= frameSizeTarget {
		p.commitFrame(true)
		p.direct(hdr)
		p.direct(payload)
		return
	}
	p.write(hdr...)
	p.write(payload...)
}

// commitFrame ends the current frame if it has reached the target size (or
// if force) and writes it out.
func (p *pickler) commitFrame(force bool) {
	if !p.framing || len(p.frame) < frameSizeTarget && !force {
		return
	}
	if len(p.frame) >= frameSizeMin {
		var hdr [9]byte
		hdr[0] = opFrame
		binary.LittleEndian.PutUint64(hdr[1:], uint64(len(p.frame)))
		p.direct(hdr[:])
	}
	p.direct(p.frame)
	p.frame = p.frame[:0]
}

// saveStart is what CPython's save() does first for every object.
func (p *pickler) saveStart() { p.commitFrame(false) }

// fromMemo writes a GET of the object id if it was memoised.
func (p *pickler) fromMemo(id string) bool {
	if id == "" {
		return false
	}
	idx, ok := p.memo[id]
	if !ok {
		return false
	}
	if idx < 256 {
		p.write(opBinGet, byte(idx))
	} else {
		p.write(opLongBinGet, byte(idx), byte(idx>>8), byte(idx>>16), byte(idx>>24))
	}
	return true
}

// memoize stores the object just written under the next memo index.
func (p *pickler) memoize(id string) {
	idx := p.memoLen
	p.memoLen++
	if id != "" {
		p.memo[id] = idx
	}
	switch {
	case p.proto >= 4:
		p.write(opMemoize)
	case idx < 256:
		p.write(opBinPut, byte(idx))
	default:
		p.write(opLongBinPut, byte(idx), byte(idx>>8), byte(idx>>16), byte(idx>>24))
	}
}

func (p *pickler) saveNone() {
	p.saveStart()
	p.write(opNone)
}

func (p *pickler) saveBool(v bool) {
	p.saveStart()
	if v {
		p.write(opNewTrue)
	} else {
		p.write(opNewFalse)
	}
}

func (p *pickler) saveInt(v int64) {
	p.saveStart()
	switch {
	case v >= 0 && v <= 0xff:
		p.write(opBinInt1, byte(v))
	case v >= 0 && v <= 0xffff:
		p.write(opBinInt2, byte(v), byte(v>>8))
	case v >= -1<<31 && v < 1<<31:
		p.write(opBinInt, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	default:
		b := encodeLong(v)
		p.write(opLong1, byte(len(b)))
		p.write(b...)
	}
}

// encodeLong is pickle.encode_long: minimal little-endian two's complement.
func encodeLong(x int64) []byte {
	if x == 0 {
		return nil
	}
	abs := uint64(x)
	if x < 0 {
		abs = uint64(-x)
	}
	n := bits.Len64(abs)>>3 + 1
	b := make([]byte, n)
	for i := range b {
		if i < 8 {
			b[i] = byte(x >> (8 * i))
		} else {
			b[i] = byte(x >> 63) // the sign byte of a 9-byte encoding
		}
	}
	if x < 0 && n > 1 && b[n-1] == 0xff && b[n-2]&0x80 != 0 {
		b = b[:n-1]
	}
	return b
}

func (p *pickler) saveStr(s, id string) {
	p.saveStart()
	if p.fromMemo(id) {
		return
	}
	n := len(s)
	switch {
	case n <= 0xff && p.proto >= 4:
		p.writeSized(opShortBinUnicode, 1, []byte(s))
	case uint64(n) > 0xffffffff && p.proto >= 4:
		p.writeSized(opBinUnicode8, 8, []byte(s))
	case uint64(n) > 0xffffffff:
		p.fail(fmt.Errorf("a string of %d bytes needs protocol 4", n))
	default:
		p.writeSized(opBinUnicode, 4, []byte(s))
	}
	p.memoize(id)
}

func (p *pickler) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// bytesID is the memo id of a bytes object: CPython caches the empty and
// the one-byte ones.
func bytesID(b []byte) string {
	if len(b) <= 1 {
		return "B:" + string(b)
	}
	return ""
}

func (p *pickler) saveBytes(b []byte) {
	id := bytesID(b)
	p.saveStart()
	if p.fromMemo(id) {
		return
	}
	if p.proto < 3 {
		// No bytes opcodes: Python 2 compatible bytes(), or
		// _codecs.encode(str, 'latin1').
		if len(b) == 0 {
			p.saveGlobal("__builtin__", "bytes")
			p.saveStart()
			p.write(opEmptyTuple)
		} else {
			p.saveGlobal("_codecs", "encode")
			p.saveStart()
			strID := ""
			if len(b) == 1 {
				strID = "C:" + string(b)
			}
			p.saveStr(latin1Decode(b), strID)
			p.saveStr("latin1", "latin1")
			p.write(opTuple2)
			p.memoize("")
		}
		p.write(opReduce)
		p.memoize(id)
		return
	}
	switch n := uint64(len(b)); {
	case n <= 0xff:
		p.writeSized(opShortBinBytes, 1, b)
	case n > 0xffffffff && p.proto >= 4:
		p.writeSized(opBinBytes8, 8, b)
	case n > 0xffffffff:
		p.fail(errors.New("an array over 4 GiB needs protocol 4"))
	default:
		p.writeSized(opBinBytes, 4, b)
	}
	p.memoize(id)
}

func (p *pickler) saveGlobal(module, name string) {
	p.saveStart()
	id := "G:" + module + "." + name
	if p.fromMemo(id) {
		return
	}
	if p.proto >= 4 {
		p.saveStr(module, "S:"+module)
		p.saveStr(name, "S:"+name)
		p.write(opStackGlobal)
	} else {
		p.write(opGlobal)
		p.write([]byte(module + "\n" + name + "\n")...)
	}
	p.memoize(id)
}

// saveDict writes a dict of n items as CPython's batch_dict_exact does: one
// item with SETITEM, else MARK … SETITEMS batches of 1000, with an empty
// batch after a full one.
func (p *pickler) saveDict(n int, item func(i int)) {
	p.saveStart()
	p.write(opEmptyDict)
	p.memoize("")
	switch n {
	case 0:
		return
	case 1:
		item(0)
		p.write(opSetItem)
		return
	}
	for i := 0; ; {
		p.write(opMark)
		c := 0
		for ; i < n && c < batchSize; i, c = i+1, c+1 {
			item(i)
		}
		p.write(opSetItems)
		if c < batchSize {
			return
		}
	}
}

// saveShape writes a shape tuple as save_tuple does.
func (p *pickler) saveShape(shape []int) {
	p.saveStart()
	switch n := len(shape); {
	case n == 0:
		p.write(opEmptyTuple)
		return
	case n <= 3:
		for _, d := range shape {
			p.saveInt(int64(d))
		}
		p.write(opTuple1 + byte(n-1))
	default:
		p.write(opMark)
		for _, d := range shape {
			p.saveInt(int64(d))
		}
		p.write(opTuple)
	}
	p.memoize("")
}

// saveDtype writes numpy.dtype(typestr, False, True) with its BUILD state
// (3, order, None, None, None, -1, -1, 0), or a GET of the same dtype.
func (p *pickler) saveDtype(d dtype) {
	p.saveStart()
	id := "D:" + d.String()
	if p.fromMemo(id) {
		return
	}
	p.saveGlobal("numpy", "dtype")
	p.saveStart()
	p.saveStr(d.typeStr(), "")
	p.saveBool(false)
	p.saveBool(true)
	p.write(opTuple3)
	p.memoize("")
	p.write(opReduce)
	p.memoize(id)

	p.saveStart()
	p.write(opMark)
	p.saveInt(3)
	p.saveStr(string(d.order), "C:"+string(d.order))
	p.saveNone()
	p.saveNone()
	p.saveNone()
	p.saveInt(-1)
	p.saveInt(-1)
	p.saveInt(0)
	p.write(opTuple)
	p.memoize("")
	p.write(opBuild)
}

// saveArray writes NumPy's reduction of an ndarray for protocols below 5:
// _reconstruct(numpy.ndarray, (0,), b'b') and the BUILD state
// (1, shape, dtype, False, raw).
func (p *pickler) saveArray(t outTensor) {
	p.saveStart()
	p.saveGlobal(p.core+".multiarray", "_reconstruct")
	p.saveStart()
	p.saveGlobal("numpy", "ndarray")
	p.saveShape([]int{0})
	p.saveBytes([]byte("b"))
	p.write(opTuple3)
	p.memoize("")
	p.write(opReduce)
	p.memoize("")

	p.saveStart()
	p.write(opMark)
	p.saveInt(1)
	p.saveShape(t.shape)
	p.saveDtype(t.dt)
	p.saveBool(false)
	p.saveBytes(t.raw())
	p.write(opTuple)
	p.memoize("")
	p.write(opBuild)
}
