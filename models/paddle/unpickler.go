package paddle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Sentinel errors that callers can test with errors.Is.
var (
	// ErrTruncated: the stream ends before the pickle does.
	ErrTruncated = errors.New("truncated")
	// ErrNotPickle: the input is not a protocol 2–4 pickle at all.
	ErrNotPickle = errors.New("not a protocol 2-4 pickle")
	// ErrRefusedGlobal: the pickle names a global outside the allow-list,
	// which a .pdparams file never needs (it would run code in Python).
	ErrRefusedGlobal = errors.New("refused global")
)

// Pickle opcodes (CPython Lib/pickle.py).
const (
	opMark           = '('
	opStop           = '.'
	opPop            = '0'
	opPopMark        = '1'
	opDup            = '2'
	opFloat          = 'F'
	opInt            = 'I'
	opBinInt         = 'J'
	opBinInt1        = 'K'
	opLong           = 'L'
	opBinInt2        = 'M'
	opNone           = 'N'
	opPersID         = 'P'
	opBinPersID      = 'Q'
	opReduce         = 'R'
	opString         = 'S'
	opBinString      = 'T'
	opShortBinString = 'U'
	opUnicode        = 'V'
	opBinUnicode     = 'X'
	opAppend         = 'a'
	opBuild          = 'b'
	opGlobal         = 'c'
	opDict           = 'd'
	opEmptyDict      = '}'
	opAppends        = 'e'
	opGet            = 'g'
	opBinGet         = 'h'
	opInst           = 'i'
	opLongBinGet     = 'j'
	opList           = 'l'
	opEmptyList      = ']'
	opObj            = 'o'
	opPut            = 'p'
	opBinPut         = 'q'
	opLongBinPut     = 'r'
	opSetItem        = 's'
	opTuple          = 't'
	opEmptyTuple     = ')'
	opSetItems       = 'u'
	opBinFloat       = 'G'

	opProto    = 0x80
	opNewObj   = 0x81
	opExt1     = 0x82
	opExt2     = 0x83
	opExt4     = 0x84
	opTuple1   = 0x85
	opTuple2   = 0x86
	opTuple3   = 0x87
	opNewTrue  = 0x88
	opNewFalse = 0x89
	opLong1    = 0x8a
	opLong4    = 0x8b

	opBinBytes      = 'B'
	opShortBinBytes = 'C'

	opShortBinUnicode = 0x8c
	opBinUnicode8     = 0x8d
	opBinBytes8       = 0x8e
	opEmptySet        = 0x8f
	opAddItems        = 0x90
	opFrozenSet       = 0x91
	opNewObjEx        = 0x92
	opStackGlobal     = 0x93
	opMemoize         = 0x94
	opFrame           = 0x95

	opByteArray8     = 0x96
	opNextBuffer     = 0x97
	opReadonlyBuffer = 0x98
)

var opNames = map[byte]string{
	opMark: "MARK", opStop: "STOP", opPop: "POP", opPopMark: "POP_MARK", opDup: "DUP",
	opFloat: "FLOAT", opInt: "INT", opBinInt: "BININT", opBinInt1: "BININT1", opLong: "LONG",
	opBinInt2: "BININT2", opNone: "NONE", opPersID: "PERSID", opBinPersID: "BINPERSID",
	opReduce: "REDUCE", opString: "STRING", opBinString: "BINSTRING",
	opShortBinString: "SHORT_BINSTRING", opUnicode: "UNICODE", opBinUnicode: "BINUNICODE",
	opAppend: "APPEND", opBuild: "BUILD", opGlobal: "GLOBAL", opDict: "DICT",
	opEmptyDict: "EMPTY_DICT", opAppends: "APPENDS", opGet: "GET", opBinGet: "BINGET",
	opInst: "INST", opLongBinGet: "LONG_BINGET", opList: "LIST", opEmptyList: "EMPTY_LIST",
	opObj: "OBJ", opPut: "PUT", opBinPut: "BINPUT", opLongBinPut: "LONG_BINPUT",
	opSetItem: "SETITEM", opTuple: "TUPLE", opEmptyTuple: "EMPTY_TUPLE", opSetItems: "SETITEMS",
	opBinFloat: "BINFLOAT", opProto: "PROTO", opNewObj: "NEWOBJ", opExt1: "EXT1", opExt2: "EXT2",
	opExt4: "EXT4", opTuple1: "TUPLE1", opTuple2: "TUPLE2", opTuple3: "TUPLE3",
	opNewTrue: "NEWTRUE", opNewFalse: "NEWFALSE", opLong1: "LONG1", opLong4: "LONG4",
	opBinBytes: "BINBYTES", opShortBinBytes: "SHORT_BINBYTES",
	opShortBinUnicode: "SHORT_BINUNICODE", opBinUnicode8: "BINUNICODE8",
	opBinBytes8: "BINBYTES8", opEmptySet: "EMPTY_SET", opAddItems: "ADDITEMS",
	opFrozenSet: "FROZENSET", opNewObjEx: "NEWOBJ_EX", opStackGlobal: "STACK_GLOBAL",
	opMemoize: "MEMOIZE", opFrame: "FRAME", opByteArray8: "BYTEARRAY8",
	opNextBuffer: "NEXT_BUFFER", opReadonlyBuffer: "READONLY_BUFFER",
}

func opName(op byte) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", op)
}

// Python values are held as: nil (None), bool, int64, float64, string (str),
// pyBytes, pyTuple, *pyList, *pyDict, pyGlobal, *ndarray and *npDtype.
type (
	pyBytes []byte
	pyTuple []any
	pyList  struct{ items []any }
)

// pyDict is an insertion-ordered dict with hashable scalar keys.
type pyDict struct {
	keys  []any
	vals  []any
	index map[any]int
}

func newDict() *pyDict { return &pyDict{index: map[any]int{}} }

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case nil, bool, int64, float64, string:
	default:
		return fmt.Errorf("dict key of type %s is not supported", typeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// aTypeName is typeName with an article, for messages.
func aTypeName(v any) string {
	n := typeName(v)
	switch {
	case v == nil:
		return n
	case strings.ContainsRune("aeiou", rune(n[0])):
		return "an " + n
	}
	return "a " + n
}

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyBytes:
		return "bytes"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return v.name
	case *ndarray:
		return "numpy.ndarray"
	case *npDtype:
		return "numpy.dtype"
	}
	return fmt.Sprintf("%T", v)
}

// unpickler runs a pickle stream held in memory. Because the whole input is
// in memory, every declared length is checked against what remains before it
// is used, and budget caps what the stream can make the reader allocate.
type unpickler struct {
	data   []byte
	pos    int
	opPos  int // offset of the opcode being run
	op     byte
	stack  []any
	marks  []int // stack heights at each MARK
	memo   map[int]any
	budget int // bytes the reader may still allocate for values
}

func newUnpickler(data []byte) *unpickler {
	return &unpickler{
		data:   data,
		memo:   map[int]any{},
		budget: 8*len(data) + 1<<20,
	}
}

// errorf reports a problem with the current opcode.
func (u *unpickler) errorf(format string, args ...any) error {
	return fmt.Errorf("byte %d (opcode %s): %w", u.opPos, opName(u.op), fmt.Errorf(format, args...))
}

func (u *unpickler) truncated(need uint64) error {
	return fmt.Errorf("%w at byte %d (opcode %s at byte %d wants %d bytes, %d left)",
		ErrTruncated, len(u.data), opName(u.op), u.opPos, need, len(u.data)-u.pos)
}

// alloc charges n bytes to the allocation budget.
func (u *unpickler) alloc(n int) error {
	if n < 0 || n > u.budget {
		return u.errorf("the stream expands to more memory than its size can justify (aliased data?)")
	}
	u.budget -= n
	return nil
}

func (u *unpickler) take(n uint64) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, u.truncated(n)
	}
	b := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) uint(width int) (uint64, error) {
	b, err := u.take(uint64(width))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := width - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// line reads up to and including '\n' and returns the text before it.
func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.data[u.pos:min(len(u.data), u.pos+1<<16)], '\n')
	if i < 0 {
		if len(u.data)-u.pos >= 1<<16 {
			return "", u.errorf("text argument longer than 64 KiB")
		}
		return "", u.truncated(uint64(len(u.data)-u.pos) + 1)
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

// sized reads a length field of width bytes, then that many bytes.
func (u *unpickler) sized(width int) ([]byte, error) {
	n, err := u.uint(width)
	if err != nil {
		return nil, err
	}
	return u.take(n)
}

// lengthWidth is the size of the length field of a sized opcode.
func lengthWidth(op byte) int {
	switch op {
	case opShortBinUnicode, opShortBinString, opShortBinBytes, opLong1:
		return 1
	case opBinUnicode8, opBinBytes8:
		return 8
	}
	return 4
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) floor() int {
	if len(u.marks) == 0 {
		return 0
	}
	return u.marks[len(u.marks)-1]
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) <= u.floor() {
		return nil, u.errorf("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) <= u.floor() {
		return nil, u.errorf("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark removes and returns the items pushed since the last MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, u.errorf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) popN(n int) ([]any, error) {
	if len(u.stack)-u.floor() < n {
		return nil, u.errorf("stack underflow")
	}
	items := append([]any(nil), u.stack[len(u.stack)-n:]...)
	u.stack = u.stack[:len(u.stack)-n]
	return items, nil
}

// run executes the stream and returns the object STOP leaves.
func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= len(u.data) {
			return nil, fmt.Errorf("%w at byte %d (no STOP opcode)", ErrTruncated, len(u.data))
		}
		u.opPos, u.op = u.pos, u.data[u.pos]
		u.pos++
		if u.op == opStop {
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			if len(u.stack) != 0 || len(u.marks) != 0 {
				return nil, u.errorf("%d values and %d marks left on the stack", len(u.stack), len(u.marks))
			}
			return v, nil
		}
		if err := u.step(); err != nil {
			return nil, err
		}
	}
}

func (u *unpickler) step() error {
	switch u.op {
	case opProto:
		p, err := u.uint(1)
		if err != nil {
			return err
		}
		if p > 4 {
			return u.errorf("unsupported pickle protocol %d (paddle.save writes 2-4)", p)
		}
	case opFrame:
		n, err := u.uint(8)
		if err != nil {
			return err
		}
		if n > uint64(len(u.data)-u.pos) {
			return u.truncated(n)
		}
	case opMark:
		u.marks = append(u.marks, len(u.stack))
	case opPop:
		if len(u.stack) > u.floor() {
			u.stack = u.stack[:len(u.stack)-1]
		} else if _, err := u.popMark(); err != nil {
			return err
		}
	case opPopMark:
		_, err := u.popMark()
		return err
	case opDup:
		v, err := u.top()
		if err != nil {
			return err
		}
		u.push(v)

	case opNone:
		u.push(nil)
	case opNewTrue:
		u.push(true)
	case opNewFalse:
		u.push(false)
	case opBinInt:
		v, err := u.uint(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(uint32(v))))
	case opBinInt1:
		v, err := u.uint(1)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case opBinInt2:
		v, err := u.uint(2)
		if err != nil {
			return err
		}
		u.push(int64(v))
	case opLong1, opLong4:
		b, err := u.sized(lengthWidth(u.op))
		if err != nil {
			return err
		}
		v, err := u.decodeLong(b)
		if err != nil {
			return err
		}
		u.push(v)
	case opInt, opLong:
		s, err := u.line()
		if err != nil {
			return err
		}
		switch s {
		case "00":
			u.push(false)
			return nil
		case "01":
			u.push(true)
			return nil
		}
		v, err := strconv.ParseInt(strings.TrimSuffix(s, "L"), 10, 64)
		if err != nil {
			return u.errorf("bad integer %q", s)
		}
		u.push(v)
	case opBinFloat:
		b, err := u.take(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case opFloat:
		s, err := u.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return u.errorf("bad float %q", s)
		}
		u.push(v)

	case opShortBinUnicode, opBinUnicode, opBinUnicode8:
		b, err := u.sized(lengthWidth(u.op))
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return u.errorf("string is not valid UTF-8")
		}
		if err := u.alloc(len(b)); err != nil {
			return err
		}
		u.push(string(b))
	case opShortBinString, opBinString:
		b, err := u.sized(lengthWidth(u.op))
		if err != nil {
			return err
		}
		// encoding="latin1", as paddle.load and numpy expect.
		if err := u.alloc(2 * len(b)); err != nil {
			return err
		}
		u.push(latin1Decode(b))
	case opShortBinBytes, opBinBytes, opBinBytes8:
		b, err := u.sized(lengthWidth(u.op))
		if err != nil {
			return err
		}
		u.push(pyBytes(b)) // aliases the input, which is never modified

	case opEmptyTuple:
		u.push(pyTuple{})
	case opTuple1, opTuple2, opTuple3:
		items, err := u.popN(int(u.op-opTuple1) + 1)
		if err != nil {
			return err
		}
		u.push(pyTuple(items))
	case opTuple:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(pyTuple(items))
	case opEmptyList:
		u.push(&pyList{})
	case opList:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		u.push(&pyList{items: items})
	case opAppend:
		v, err := u.pop()
		if err != nil {
			return err
		}
		return u.appendTo([]any{v})
	case opAppends:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.appendTo(items)
	case opEmptyDict:
		u.push(newDict())
	case opDict:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		d := newDict()
		u.push(d)
		return u.setItems(d, items)
	case opSetItem:
		kv, err := u.popN(2)
		if err != nil {
			return err
		}
		return u.setItemsOnTop(kv)
	case opSetItems:
		items, err := u.popMark()
		if err != nil {
			return err
		}
		return u.setItemsOnTop(items)

	case opMemoize:
		v, err := u.top()
		if err != nil {
			return err
		}
		u.memo[len(u.memo)] = v
	case opPut, opBinPut, opLongBinPut:
		idx, err := u.memoIndex()
		if err != nil {
			return err
		}
		v, err := u.top()
		if err != nil {
			return err
		}
		u.memo[idx] = v
	case opGet, opBinGet, opLongBinGet:
		idx, err := u.memoIndex()
		if err != nil {
			return err
		}
		v, ok := u.memo[idx]
		if !ok {
			return u.errorf("memo key %d was never stored", idx)
		}
		u.push(v)

	case opGlobal:
		module, err := u.line()
		if err != nil {
			return err
		}
		name, err := u.line()
		if err != nil {
			return err
		}
		g, err := u.global(module, name)
		if err != nil {
			return err
		}
		u.push(g)
	case opStackGlobal:
		mn, err := u.popN(2)
		if err != nil {
			return err
		}
		module, ok1 := mn[0].(string)
		name, ok2 := mn[1].(string)
		if !ok1 || !ok2 {
			return u.errorf("STACK_GLOBAL needs two strings, got %s and %s", typeName(mn[0]), typeName(mn[1]))
		}
		g, err := u.global(module, name)
		if err != nil {
			return err
		}
		u.push(g)
	case opReduce, opNewObj:
		fa, err := u.popN(2)
		if err != nil {
			return err
		}
		args, ok := fa[1].(pyTuple)
		if !ok {
			return u.errorf("arguments are %s, want a tuple", aTypeName(fa[1]))
		}
		g, ok := fa[0].(pyGlobal)
		if !ok {
			return u.errorf("cannot call %s", aTypeName(fa[0]))
		}
		v, err := u.call(g, args)
		if err != nil {
			return err
		}
		u.push(v)
	case opBuild:
		state, err := u.pop()
		if err != nil {
			return err
		}
		inst, err := u.top()
		if err != nil {
			return err
		}
		return u.build(inst, state)

	case opPersID, opBinPersID:
		return u.errorf("persistent IDs are not used by .pdparams files")
	case opInst, opObj, opNewObjEx, opExt1, opExt2, opExt4, opString, opUnicode,
		opEmptySet, opAddItems, opFrozenSet, opByteArray8, opNextBuffer, opReadonlyBuffer:
		return u.errorf("unsupported opcode")
	default:
		return u.errorf("unknown opcode")
	}
	return nil
}

func (u *unpickler) memoIndex() (int, error) {
	switch u.op {
	case opBinPut, opBinGet:
		v, err := u.uint(1)
		return int(v), err
	case opLongBinPut, opLongBinGet:
		v, err := u.uint(4)
		return int(v), err
	}
	s, err := u.line()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, u.errorf("bad memo key %q", s)
	}
	return int(v), nil
}

// decodeLong decodes a little-endian two's-complement integer (LONG1/LONG4).
func (u *unpickler) decodeLong(b []byte) (int64, error) {
	if len(b) > 8 {
		return 0, u.errorf("integer of %d bytes is too large", len(b))
	}
	if len(b) == 0 {
		return 0, nil
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if shift := 64 - 8*len(b); shift > 0 {
		return int64(v<<shift) >> shift, nil // sign-extend
	}
	return int64(v), nil
}

func (u *unpickler) appendTo(items []any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	l, ok := t.(*pyList)
	if !ok {
		return u.errorf("cannot append to %s", aTypeName(t))
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) setItemsOnTop(items []any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	d, ok := t.(*pyDict)
	if !ok {
		return u.errorf("cannot set items on %s", aTypeName(t))
	}
	return u.setItems(d, items)
}

func (u *unpickler) setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return u.errorf("odd number of items (%d) for a dict", len(items))
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return u.errorf("%w", err)
		}
	}
	return nil
}
