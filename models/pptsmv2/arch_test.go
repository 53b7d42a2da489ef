package pptsmv2

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// specDir holds the spec's machine-readable key lists (docs/PPTSMV2.md).
var specDir = filepath.Join("..", "..", "testdata", "spec")

// readKeyList reads one of the spec's TSV key lists: index, key, shape
// ("[32, 3, 3, 3]"), numel.
func readKeyList(t *testing.T, name string) []key {
	t.Helper()
	f, err := os.Open(filepath.Join(specDir, name))
	if err != nil {
		t.Fatalf("spec key list: %v", err)
	}
	defer f.Close()
	var ks []key
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 4 {
			t.Fatalf("%s:%d: %d columns, want 4", name, line, len(cols))
		}
		if idx, err := strconv.Atoi(cols[0]); err != nil || idx != len(ks) {
			t.Fatalf("%s:%d: index %q, want %d", name, line, cols[0], len(ks))
		}
		var shape []int
		for _, d := range strings.Split(strings.Trim(cols[2], "[]"), ",") {
			n, err := strconv.Atoi(strings.TrimSpace(d))
			if err != nil {
				t.Fatalf("%s:%d: shape %q: %v", name, line, cols[2], err)
			}
			shape = append(shape, n)
		}
		if n, err := strconv.Atoi(cols[3]); err != nil || n != numel(shape) {
			t.Fatalf("%s:%d: numel %q does not match shape %v", name, line, cols[3], shape)
		}
		ks = append(ks, key{name: cols[1], shape: shape})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ks
}

func prefixed(prefix string, ks []key) []key {
	out := make([]key, len(ks))
	for i, k := range ks {
		out[i] = key{name: prefix + k.name, shape: k.shape}
	}
	return out
}

func sameKeys(t *testing.T, got, want []key) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d keys, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i].name != want[i].name || !slices.Equal(got[i].shape, want[i].shape) {
			t.Fatalf("key %d: %s %v, want %s %v", i, got[i].name, got[i].shape, want[i].name, want[i].shape)
		}
	}
}

// The keys generated from the architecture table are the spec's lists,
// exactly and in order.
func TestCheckpointKeysMatchSpec(t *testing.T) {
	dml := readKeyList(t, "keys_dml.tsv")
	teacher := readKeyList(t, "keys_teacher.tsv")
	for _, tc := range []struct {
		name string
		got  []key
		want []key
	}{
		{"plain", prefixed("backbone.", checkpointKeys(false)), readKeyList(t, "keys_plain.tsv")},
		{"student", prefixed("0.", checkpointKeys(true)), readKeyList(t, "keys_student.tsv")},
		{"dml student part", prefixed("Student.0.", checkpointKeys(true)), dml[len(teacher):]},
		{"dml teacher part", teacherKeys(), dml[:len(teacher)]},
		{"teacher", teacherKeys(), teacher},
	} {
		t.Run(tc.name, func(t *testing.T) { sameKeys(t, tc.got, tc.want) })
	}
}

// The §1.3 layer table, row by row, for the convs that carry a block's
// geometry: rep branches, SE widths and the shortcut.
func TestBlocks(t *testing.T) {
	bs := blocks()
	if len(bs) != 13 {
		t.Fatalf("%d blocks, want 13 (stem.1 + 2+2+6+2)", len(bs))
	}
	var shortcuts []string
	for _, b := range bs {
		if b.hasShortcut() {
			shortcuts = append(shortcuts, b.path)
		}
	}
	if len(shortcuts) != 1 || shortcuts[0] != "stages.3.1" {
		t.Errorf("shortcuts on %v, want only stages.3.1", shortcuts)
	}
	for _, tc := range []struct {
		path     string
		branches []int
	}{
		{"stages.2.0", []int{5, 3}},
		{"stages.2.1", []int{5, 3, 1}},
		{"stages.3.0", []int{5, 3}},
		{"stages.3.1", []int{5, 3, 1}},
	} {
		for _, b := range bs {
			if b.path != tc.path {
				continue
			}
			var ks []int
			for _, br := range b.repBranches() {
				ks = append(ks, br.k)
			}
			if !slices.Equal(ks, tc.branches) {
				t.Errorf("%s: branch kernels %v, want %v", tc.path, ks, tc.branches)
			}
		}
	}
	// The 46 convs of §1.3 with weight and bias, but last_conv has no
	// bias; fc.
	if got, want := len(inferenceParams(false)), 2*46-1+2; got != want {
		t.Errorf("%d inference tensors, want %d", got, want)
	}
}
