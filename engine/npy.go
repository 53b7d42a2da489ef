package engine

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/actiond/actiond/models/atomicfile"
)

// The .npy format (numpy/lib/format.py): the magic "\x93NUMPY", a major and
// minor version byte, the header length (uint16 in version 1.0, uint32 in
// 2.0, little endian), then the header, a Python dict literal padded with
// spaces and a newline so that the data starts on a 64-byte boundary, then
// the raw array. Only what checking a model needs is supported:
// little-endian float32 in C order.

const (
	npyMagic = "\x93NUMPY"
	// npyAlign is numpy's ARRAY_ALIGN: the data offset is a multiple of it.
	npyAlign = 64
	// npyMaxHeader bounds the header a reader accepts, so that a corrupt
	// length cannot make it allocate gigabytes. numpy itself refuses headers
	// over 10,000 bytes by default.
	npyMaxHeader = 1 << 20
	// npyChunk is how many values are converted at a time.
	npyChunk = 16 << 10
)

// WriteNPY writes data as a little-endian float32 C-order array with the
// given shape (empty for a scalar) in .npy format 1.0, or 2.0 when the header
// does not fit in 64 KiB.
func WriteNPY(w io.Writer, shape []int, data []float32) error {
	n, err := npyCount(shape)
	if err != nil {
		return fmt.Errorf("write npy: %w", err)
	}
	if n != len(data) {
		return fmt.Errorf("write npy: shape %s holds %d values, got %d", npyShape(shape), n, len(data))
	}
	if _, err := w.Write(npyHeader(shape)); err != nil {
		return fmt.Errorf("write npy header: %w", err)
	}
	buf := make([]byte, 0, 4*min(len(data), npyChunk))
	for len(data) > 0 {
		chunk := data[:min(len(data), npyChunk)]
		data = data[len(chunk):]
		buf = buf[:0]
		for _, v := range chunk {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write npy data: %w", err)
		}
	}
	return nil
}

// npyHeader returns everything before the data, formatted like numpy does.
func npyHeader(shape []int) []byte {
	dict := "{'descr': '<f4', 'fortran_order': False, 'shape': " + npyShape(shape) + ", }"
	// magic + version, the length field, the dict and a final newline.
	for _, v := range []struct {
		major  byte
		lenLen int
	}{{1, 2}, {2, 4}} {
		pre := len(npyMagic) + 2 + v.lenLen
		pad := npyAlign - (pre+len(dict)+1)%npyAlign
		hlen := len(dict) + pad + 1
		if v.lenLen == 2 && hlen > math.MaxUint16 {
			continue
		}
		b := make([]byte, 0, pre+hlen)
		b = append(b, npyMagic...)
		b = append(b, v.major, 0)
		if v.lenLen == 2 {
			b = binary.LittleEndian.AppendUint16(b, uint16(hlen))
		} else {
			b = binary.LittleEndian.AppendUint32(b, uint32(hlen))
		}
		b = append(b, dict...)
		b = append(b, strings.Repeat(" ", pad)...)
		return append(b, '\n')
	}
	panic("unreachable: a 2.0 header always fits")
}

// npyShape formats shape as a Python tuple: (), (5,), (2, 3).
func npyShape(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// npyCount returns the number of values in shape, rejecting negative
// dimensions and products whose byte size would overflow an int.
func npyCount(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %s has a negative dimension", npyShape(shape))
		}
		if d != 0 && n > math.MaxInt/4/d {
			return 0, fmt.Errorf("shape %s is too large", npyShape(shape))
		}
		n *= d
	}
	return n, nil
}

// WriteNPYFile writes an .npy file atomically: readers see the old file or
// the complete new one, never a partial array.
func WriteNPYFile(path string, shape []int, data []float32) error {
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return WriteNPY(w, shape, data) })
	if err != nil {
		return fmt.Errorf("write npy %s: %w", path, err)
	}
	return nil
}

// ReadNPY reads one little-endian float32 C-order array in .npy format 1.0
// or 2.0 and returns its shape (empty for a scalar) and values. Any other
// dtype, Fortran order or a malformed header is an error that says so. It
// reads nothing past the array.
func ReadNPY(r io.Reader) (shape []int, data []float32, err error) {
	var pre [len(npyMagic) + 2]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("read npy: %w", noEOF(err))
	}
	if string(pre[:len(npyMagic)]) != npyMagic {
		return nil, nil, errors.New("read npy: not a .npy file (bad magic)")
	}
	major, minor := pre[len(npyMagic)], pre[len(npyMagic)+1]
	var hlen int
	switch {
	case major == 1 && minor == 0:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("read npy: %w", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case major == 2 && minor == 0:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, nil, fmt.Errorf("read npy: %w", noEOF(err))
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, nil, fmt.Errorf("read npy: format version %d.%d is not supported (need 1.0 or 2.0)", major, minor)
	}
	if hlen > npyMaxHeader {
		return nil, nil, fmt.Errorf("read npy: header of %d bytes is longer than the %d allowed", hlen, npyMaxHeader)
	}
	header := make([]byte, hlen)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, nil, fmt.Errorf("read npy header: %w", noEOF(err))
	}
	shape, err = parseNPYHeader(string(header))
	if err != nil {
		return nil, nil, fmt.Errorf("read npy: %w", err)
	}
	n, err := npyCount(shape)
	if err != nil {
		return nil, nil, fmt.Errorf("read npy: %w", err)
	}

	// Grow the slice as data arrives instead of trusting the header with
	// one allocation: a corrupt shape then fails at the end of the input,
	// not in the allocator.
	data = make([]float32, 0, min(n, 1<<20))
	buf := make([]byte, 4*min(n, npyChunk))
	for len(data) < n {
		b := buf[:4*min(n-len(data), npyChunk)]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, nil, fmt.Errorf("read npy: data ends before %d values of shape %s: %w", n, npyShape(shape), noEOF(err))
		}
		for i := 0; i < len(b); i += 4 {
			data = append(data, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
	}
	return shape, data, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: wherever a reader of this
// format hits the end, something was expected.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadNPYFile reads an .npy file with ReadNPY and also requires that
// nothing follows the array.
func ReadNPYFile(path string) (shape []int, data []float32, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read npy: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	shape, data, err = ReadNPY(br)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (in %s)", err, path)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected bytes after the array")
		}
		return nil, nil, fmt.Errorf("read npy %s: %w", path, err)
	}
	return shape, data, nil
}

// parseNPYHeader parses the header dict strictly: exactly the keys descr,
// fortran_order and shape, in any order, with the values this package
// supports; only whitespace may follow it.
func parseNPYHeader(h string) ([]int, error) {
	p := &npyParser{s: h}
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	var (
		shape                           []int
		seenDescr, seenOrder, seenShape bool
	)
	for {
		p.space()
		if p.peek() == '}' { // {} or after a trailing comma
			p.i++
			break
		}
		key, err := p.str()
		if err != nil {
			return nil, fmt.Errorf("header key: %w", err)
		}
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		p.space()
		switch key {
		case "descr":
			if seenDescr {
				return nil, errors.New("header repeats 'descr'")
			}
			seenDescr = true
			if p.peek() == '[' {
				return nil, errors.New("structured dtype is not supported (need float32 '<f4')")
			}
			descr, err := p.str()
			if err != nil {
				return nil, fmt.Errorf("header 'descr': %w", err)
			}
			if descr != "<f4" {
				return nil, fmt.Errorf("dtype %s is not supported (need float32 '<f4')", pyQuote(descr))
			}
		case "fortran_order":
			if seenOrder {
				return nil, errors.New("header repeats 'fortran_order'")
			}
			seenOrder = true
			switch {
			case p.word("False"):
			case p.word("True"):
				return nil, errors.New("fortran_order True is not supported (need C order)")
			default:
				return nil, p.errorf("'fortran_order' must be True or False")
			}
		case "shape":
			if seenShape {
				return nil, errors.New("header repeats 'shape'")
			}
			seenShape = true
			if shape, err = p.tuple(); err != nil {
				return nil, fmt.Errorf("header 'shape': %w", err)
			}
		default:
			return nil, fmt.Errorf("header has unknown key %s", pyQuote(key))
		}
		p.space()
		if p.peek() == '}' {
			p.i++
			break
		}
		if p.peek() != ',' {
			return nil, p.errorf("want ',' or '}'")
		}
		p.i++
	}
	if rest := strings.TrimRight(p.s[p.i:], " \t\r\n"); rest != "" {
		return nil, fmt.Errorf("header has %q after the dict", trimForError(rest))
	}
	for _, k := range []struct {
		name string
		seen bool
	}{{"descr", seenDescr}, {"fortran_order", seenOrder}, {"shape", seenShape}} {
		if !k.seen {
			return nil, fmt.Errorf("header has no %s", pyQuote(k.name))
		}
	}
	return shape, nil
}

// npyParser reads the small subset of Python literal syntax that .npy
// headers use.
type npyParser struct {
	s string
	i int
}

func (p *npyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *npyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *npyParser) errorf(format string, args ...any) error {
	rest := p.s[p.i:]
	if rest == "" {
		return fmt.Errorf("header ends early: "+format, args...)
	}
	return fmt.Errorf("header at %q: %s", trimForError(rest), fmt.Sprintf(format, args...))
}

func (p *npyParser) expect(c byte) error {
	p.space()
	if p.peek() != c {
		return p.errorf("want %q", c)
	}
	p.i++
	return nil
}

// word consumes w if it comes next as a whole identifier.
func (p *npyParser) word(w string) bool {
	if !strings.HasPrefix(p.s[p.i:], w) {
		return false
	}
	if end := p.i + len(w); end < len(p.s) && isIdentByte(p.s[end]) {
		return false
	}
	p.i += len(w)
	return true
}

func isIdentByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// str reads a quoted string without escapes (numpy never writes any in the
// keys or the descr of a plain dtype).
func (p *npyParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", p.errorf("want a quoted string")
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", p.errorf("unterminated string")
	}
	s := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsAny(s, "\\\n") {
		return "", p.errorf("escapes are not supported")
	}
	p.i += end + 2
	return s, nil
}

// tuple reads a tuple of non-negative integers: (), (5,), (2, 3), (2, 3,).
// (5) is an int in Python, not a tuple, and is rejected as numpy does.
func (p *npyParser) tuple() ([]int, error) {
	if err := p.expect('('); err != nil {
		return nil, err
	}
	dims := []int{}
	for {
		p.space()
		if p.peek() == ')' { // () or after a trailing comma
			break
		}
		start := p.i
		for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == start {
			return nil, p.errorf("want a non-negative integer")
		}
		d, err := strconv.Atoi(p.s[start:p.i])
		if err != nil {
			return nil, fmt.Errorf("dimension %s: %w", p.s[start:p.i], err)
		}
		dims = append(dims, d)
		p.space()
		if p.peek() == ')' {
			if len(dims) == 1 {
				return nil, errors.New("(n) is not a tuple, want (n,)")
			}
			break
		}
		if p.peek() != ',' {
			return nil, p.errorf("want ',' or ')'")
		}
		p.i++
	}
	p.i++ // ')'
	return dims, nil
}

// pyQuote quotes s the way Python's repr does for simple strings, so that
// errors show the dtype as numpy users know it: '<f8'.
func pyQuote(s string) string {
	if strings.ContainsAny(s, "'\\") || !isPrintableASCII(s) {
		return strconv.Quote(s)
	}
	return "'" + s + "'"
}

func isPrintableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// trimForError shortens header text quoted in an error.
func trimForError(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
