package paddle

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzRead: Read never panics, and whatever it accepts is self-consistent
// and survives a Write/Read round trip unchanged.
func FuzzRead(f *testing.F) {
	for _, proto := range []int{2, 3, 4} {
		f.Add(written(f, proto))
	}
	paths, err := filepath.Glob("testdata/*.pdparams")
	if err != nil || len(paths) == 0 {
		f.Fatalf("no testdata seeds (%v)", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03."))

	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(ck.Keys) != len(ck.Tensors) {
			t.Fatalf("%d keys for %d tensors", len(ck.Keys), len(ck.Tensors))
		}
		for _, k := range ck.Keys {
			tt, ok := ck.Tensors[k]
			if !ok {
				t.Fatalf("key %q has no tensor", k)
			}
			d, err := parseTypeStr(tt.DType)
			if err != nil || d.order == '>' {
				t.Fatalf("%q: dtype %q (%v)", k, tt.DType, err)
			}
			n := tt.NumElements()
			if d.isFloat32() && (len(tt.Data) != n || tt.Raw != nil) || !d.isFloat32() && (len(tt.Raw) != n*d.size || tt.Data != nil) {
				t.Fatalf("%q: shape %v %s with %d values and %d bytes", k, tt.Shape, tt.DType, len(tt.Data), len(tt.Raw))
			}
		}
		var buf bytes.Buffer
		if err := Write(&buf, ck.Keys, ck.Tensors, WriteOptions{ParamNames: ck.ParamNames}); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := Read(&buf)
		if err != nil {
			t.Fatalf("read rewritten: %v", err)
		}
		if !slices.Equal(again.Keys, ck.Keys) {
			t.Fatalf("keys %q became %q", ck.Keys, again.Keys)
		}
		for _, k := range ck.Keys {
			a, b := ck.Tensors[k], again.Tensors[k]
			if !slices.Equal(a.Shape, b.Shape) || a.DType != b.DType || !bytes.Equal(leBytes(a), leBytes(b)) {
				t.Fatalf("%q changed in a round trip: %v %s → %v %s", k, a.Shape, a.DType, b.Shape, b.DType)
			}
		}
	})
}
