package paddle

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
)

// Read decodes a .pdparams stream. Big-endian and Fortran-order arrays are
// converted to little-endian C order; float32 arrays come back in
// Tensor.Data, every other dtype in Tensor.Raw. Arrays that the pickle stores
// once and references under several keys share their backing storage.
func Read(r io.Reader) (*Checkpoint, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read pdparams: %w", err)
	}
	ck, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("read pdparams: %w", err)
	}
	return ck, nil
}

// ReadFile reads the .pdparams file at path (see Read).
func ReadFile(path string) (*Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pdparams: %w", err)
	}
	ck, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("read pdparams %s: %w", path, err)
	}
	return ck, nil
}

func parse(data []byte) (*Checkpoint, error) {
	if err := checkHeader(data); err != nil {
		return nil, err
	}
	u := newUnpickler(data)
	obj, err := u.run()
	if err != nil {
		return nil, err
	}
	top, ok := obj.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("top-level object is %s, want a dict of numpy arrays", aTypeName(obj))
	}
	b := checkpointBuilder{u: u, arrays: map[*ndarray]Tensor{}}
	return b.build(top)
}

// checkHeader rejects anything that does not start like paddle.save output,
// naming what it looks like instead.
func checkHeader(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: the input is empty", ErrNotPickle)
	}
	if data[0] != opProto {
		return fmt.Errorf("%w: starts with % x, not 0x80 (PROTO)%s", ErrNotPickle, data[:min(4, len(data))], looksLike(data))
	}
	if len(data) < 2 {
		return fmt.Errorf("%w at byte 1 (opcode PROTO at byte 0 wants 1 bytes, 0 left)", ErrTruncated)
	}
	if p := data[1]; p < 2 || p > 4 {
		return fmt.Errorf("%w: protocol %d (paddle.save writes 2-4)", ErrNotPickle, p)
	}
	return nil
}

// looksLike guesses what a non-pickle input is, for the error message.
func looksLike(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return "; it is a zip archive (a PyTorch checkpoint?), but .pdparams files are plain pickles"
	case bytes.HasPrefix(data, []byte("\x93NUMPY")):
		return "; it is a .npy file"
	case bytes.HasPrefix(data, []byte("\x89HDF")):
		return "; it is an HDF5 file"
	case data[0] == 0x08:
		return "; it looks like a protobuf such as an ONNX model"
	case isText(data[:min(512, len(data))]):
		return "; it looks like text"
	}
	return ""
}

func isText(b []byte) bool {
	for _, c := range b {
		if (c < 0x20 || c == 0x7f) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// checkpointBuilder turns the unpickled dict into a Checkpoint.
type checkpointBuilder struct {
	u      *unpickler
	arrays map[*ndarray]Tensor // converted arrays, so aliases cost nothing
}

func (b *checkpointBuilder) build(top *pyDict) (*Checkpoint, error) {
	ck := &Checkpoint{Tensors: map[string]Tensor{}}
	var unpackInfo any
	for i, k := range top.keys {
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("top-level key %v is %s, want a str", k, aTypeName(k))
		}
		v := top.vals[i]
		switch key {
		case paramNamesKey:
			names, err := stringTable(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", paramNamesKey, err)
			}
			ck.ParamNames = names
			continue
		case unpackInfoKey:
			unpackInfo = v
			continue
		}
		// Paddle 2.1 stored some tensors as (name, ndarray) pairs.
		if t, ok := v.(pyTuple); ok && len(t) == 2 {
			if _, ok := t[0].(string); ok {
				v = t[1]
			}
		}
		a, ok := v.(*ndarray)
		if !ok {
			return nil, fmt.Errorf("key %q: value is %s, want a numpy array", key, aTypeName(v))
		}
		t, err := b.tensor(a)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		ck.Keys = append(ck.Keys, key)
		ck.Tensors[key] = t
	}
	if unpackInfo != nil {
		if err := b.packBig(ck, unpackInfo); err != nil {
			return nil, fmt.Errorf("%s: %w", unpackInfoKey, err)
		}
	}
	return ck, nil
}

// tensor converts an unpickled array to a little-endian C-order Tensor.
func (b *checkpointBuilder) tensor(a *ndarray) (Tensor, error) {
	if t, ok := b.arrays[a]; ok {
		return t, nil
	}
	if !a.built {
		return Tensor{}, fmt.Errorf("numpy array has no data (no BUILD)")
	}
	raw, d := a.raw, a.dtype
	if d.order == '>' {
		if err := b.u.alloc(len(raw)); err != nil {
			return Tensor{}, err
		}
		raw, d.order = byteSwapped(raw, d.swapUnit()), '<'
	}
	if a.fortran && len(a.shape) > 1 {
		if err := b.u.alloc(len(raw)); err != nil {
			return Tensor{}, err
		}
		raw = fortranToC(raw, a.shape, d.size)
	}
	t := Tensor{Shape: a.shape, DType: d.String()}
	if d.isFloat32() {
		if err := b.u.alloc(len(raw)); err != nil {
			return Tensor{}, err
		}
		t.Data = float32sFromLE(raw)
	} else {
		t.Raw = raw
	}
	b.arrays[a] = t
	return t, nil
}

// stringTable converts a dict of str to str.
func stringTable(v any) (map[string]string, error) {
	d, ok := v.(*pyDict)
	if !ok {
		return nil, fmt.Errorf("value is %s, want a dict", aTypeName(v))
	}
	out := make(map[string]string, len(d.keys))
	for i, k := range d.keys {
		ks, ok1 := k.(string)
		vs, ok2 := d.vals[i].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("entry %v: %s → %s, want str → str", k, typeName(k), typeName(d.vals[i]))
		}
		out[ks] = vs
	}
	return out, nil
}

// packBig reassembles arrays that paddle.save split into "<key>@@.<i>"
// slices (protocol 2 and 3 with arrays over 1 GiB), as paddle.load's
// _pack_loaded_dict does: concatenate the slices and reshape to OriginShape.
// The whole array takes the place of its first slice in Keys.
func (b *checkpointBuilder) packBig(ck *Checkpoint, info any) error {
	d, ok := info.(*pyDict)
	if !ok {
		return fmt.Errorf("value is %s, want a dict", aTypeName(info))
	}
	used := map[string]bool{}
	pos := make(map[string]int, len(ck.Keys))
	for i, k := range ck.Keys {
		pos[k] = i
	}
	for i, k := range d.keys {
		key, ok := k.(string)
		if !ok {
			return fmt.Errorf("key %v is %s, want a str", k, aTypeName(k))
		}
		if _, dup := ck.Tensors[key]; dup {
			return fmt.Errorf("key %q: also stored whole", key)
		}
		entry, ok := d.vals[i].(*pyDict)
		if !ok {
			return fmt.Errorf("key %q: value is %s, want a dict", key, aTypeName(d.vals[i]))
		}
		shapeV, slicesV := dictGet(entry, "OriginShape"), dictGet(entry, "slices")
		shape, err := b.u.shape(shapeV)
		if err != nil {
			return fmt.Errorf("key %q: OriginShape: %w", key, err)
		}
		parts, ok := slicesV.(*pyList)
		if !ok || len(parts.items) == 0 {
			return fmt.Errorf("key %q: slices is %s, want a non-empty list", key, aTypeName(slicesV))
		}
		var (
			whole Tensor
			raw   []byte
			first = -1
		)
		for j, p := range parts.items {
			name, ok := p.(string)
			if !ok {
				return fmt.Errorf("key %q: slice %d is %s, want a str", key, j, aTypeName(p))
			}
			t, ok := ck.Tensors[name]
			if !ok || used[name] {
				return fmt.Errorf("key %q: slice %q is missing or used twice", key, name)
			}
			used[name] = true
			if j == 0 {
				whole.DType = t.DType
				first = pos[name]
			} else if t.DType != whole.DType {
				return fmt.Errorf("key %q: slice %q is %s, the first is %s", key, name, t.DType, whole.DType)
			}
			if len(t.Shape) != 1 {
				return fmt.Errorf("key %q: slice %q has shape %v, want 1-D", key, name, t.Shape)
			}
			part := t.Raw
			if t.Data != nil {
				part = float32sToLE(t.Data)
			}
			if err := b.u.alloc(len(part)); err != nil {
				return err
			}
			raw = append(raw, part...)
		}
		dt, err := parseTypeStr(whole.DType)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
		if n, ok := numElements(shape, len(raw)+1); !ok || n*dt.size != len(raw) {
			return fmt.Errorf("key %q: OriginShape %v does not match the %d bytes of its slices", key, shape, len(raw))
		}
		whole.Shape = shape
		if dt.isFloat32() {
			whole.Data = float32sFromLE(raw)
		} else {
			whole.Raw = raw
		}
		ck.Tensors[key] = whole
		ck.Keys[first] = key
	}
	// Drop the slices.
	ck.Keys = slices.DeleteFunc(ck.Keys, func(k string) bool { return used[k] })
	for k := range used {
		delete(ck.Tensors, k)
	}
	return nil
}

func dictGet(d *pyDict, key string) any {
	if i, ok := d.index[key]; ok {
		return d.vals[i]
	}
	return nil
}
