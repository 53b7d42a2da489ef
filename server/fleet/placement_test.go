package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

func streamsN(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("cam-%03d", i)
	}
	return s
}

// assignAll runs every node's plan on one view, as the fleet does in a
// round, and returns who claims what.
func assignAll(t *testing.T, streams []string, live []nodeView, owners map[string]string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for _, n := range live {
		for _, s := range place(n.name, streams, live, owners).claim {
			if prev, ok := out[s]; ok {
				t.Fatalf("%s claimed by %s and %s", s, prev, n.name)
			}
			out[s] = n.name
		}
	}
	return out
}

func counts(assigned map[string]string) map[string]int {
	c := map[string]int{}
	for _, n := range assigned {
		c[n]++
	}
	return c
}

func TestPlace(t *testing.T) {
	streams := streamsN(300)
	three := []nodeView{{name: "a"}, {name: "b"}, {name: "c"}}

	t.Run("every stream to one node, near even", func(t *testing.T) {
		got := assignAll(t, streams, three, nil)
		if len(got) != 300 {
			t.Fatalf("placed %d of 300", len(got))
		}
		for n, c := range counts(got) {
			if c < 70 || c > 130 {
				t.Errorf("node %s has %d of 300 streams", n, c)
			}
		}
	})

	t.Run("a node leaving moves only its streams", func(t *testing.T) {
		before := assignAll(t, streams, three, nil)
		owners := map[string]string{}
		for s, n := range before {
			if n != "b" {
				owners[s] = n // b died: its leases expired
			}
		}
		after := assignAll(t, streams, []nodeView{{name: "a"}, {name: "c"}}, owners)
		for s, n := range before {
			switch {
			case n == "b" && after[s] != "a" && after[s] != "c":
				t.Errorf("%s of dead b went to %q", s, after[s])
			case n != "b" && after[s] != "":
				t.Errorf("%s, owned by live %s, claimed again by %s", s, n, after[s])
			}
		}
	})

	t.Run("a new node takes nothing that has a live owner", func(t *testing.T) {
		owners := assignAll(t, streams, three, nil)
		four := append(slices.Clone(three), nodeView{name: "d"})
		if got := assignAll(t, streams, four, owners); len(got) != 0 {
			t.Errorf("moved to the new node: %v", got)
		}
		more := append(slices.Clone(streams), "new-1", "new-2", "new-3", "new-4", "new-5", "new-6", "new-7", "new-8")
		got := assignAll(t, more, four, owners)
		if len(got) != 8 || counts(got)["d"] == 0 {
			t.Errorf("new streams: %v, want 8 with some on d", got)
		}
	})

	t.Run("cap", func(t *testing.T) {
		capped := []nodeView{{name: "a", cap: 100}, {name: "b", cap: 100}, {name: "c", cap: 100}}
		got := assignAll(t, streams, capped, nil)
		if c := counts(got); !maps.Equal(c, map[string]int{"a": 100, "b": 100, "c": 100}) {
			t.Fatalf("counts %v, want 100 each", c)
		}
		if extra := assignAll(t, append(slices.Clone(streams), "extra"), capped, got); len(extra) != 0 {
			t.Errorf("a full fleet placed %v", extra)
		}
	})

	t.Run("over cap sheds the worst-fitting excess", func(t *testing.T) {
		owners := map[string]string{}
		for _, s := range streams[:10] {
			owners[s] = "a"
		}
		p := place("a", streams[:20], []nodeView{{name: "a", cap: 7}, {name: "b"}}, owners)
		if len(p.shed) != 3 {
			t.Fatalf("shed %v, want 3", p.shed)
		}
		for _, kept := range streams[:10] {
			if slices.Contains(p.shed, kept) {
				continue
			}
			for _, s := range p.shed {
				if score(s, "a") > score(kept, "a") {
					t.Errorf("shed %s but kept %s, which fits worse", s, kept)
				}
			}
		}
	})

	t.Run("nodes that start one after another share the streams", func(t *testing.T) {
		owners := assignAll(t, streams[:9], []nodeView{{name: "a"}}, nil)
		if len(owners) != 9 {
			t.Fatalf("a alone placed %v", owners)
		}
		live := []nodeView{{name: "a"}, {name: "b"}, {name: "c"}}
		p := place("a", streams[:9], live, owners)
		if len(p.shed) != 5 { // ceil(9/3)+1 = 4 stay
			t.Fatalf("a sheds %v, want 5", p.shed)
		}
		for _, s := range p.shed {
			delete(owners, s)
		}
		for s, n := range assignAll(t, streams[:9], live, owners) {
			owners[s] = n
		}
		for n, c := range counts(owners) {
			if c > 4 {
				t.Errorf("%s has %d of 9 streams, want at most 4", n, c)
			}
		}
		if len(owners) != 9 {
			t.Errorf("placed %d of 9", len(owners))
		}
	})

	t.Run("draining sheds all and claims none", func(t *testing.T) {
		owners := map[string]string{"cam-000": "a", "cam-001": "a"}
		live := []nodeView{{name: "a", draining: true}, {name: "b"}}
		p := place("a", streams[:5], live, owners)
		if !slices.Equal(sorted(p.shed), []string{"cam-000", "cam-001"}) || len(p.claim) != 0 {
			t.Errorf("draining a: %+v", p)
		}
		if got := place("b", streams[:5], live, owners).claim; !slices.Equal(got, []string{"cam-002", "cam-003", "cam-004"}) {
			t.Errorf("b claims %v", got)
		}
	})

	t.Run("a removed stream is dropped, not shed", func(t *testing.T) {
		p := place("a", []string{"x"}, []nodeView{{name: "a"}}, map[string]string{"gone": "a"})
		if !slices.Equal(p.drop, []string{"gone"}) || len(p.shed) != 0 || !slices.Equal(p.claim, []string{"x"}) {
			t.Errorf("plan %+v", p)
		}
	})
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

func TestStreamKey(t *testing.T) {
	for _, s := range []string{"dock-3", ".a", "a.", "a..b", "x_y.z"} {
		k := streamKey(s)
		if keyStream(k) != s || strings.Contains(k, ".") {
			t.Errorf("stream %q: key %q, back %q", s, k, keyStream(k))
		}
	}
}
