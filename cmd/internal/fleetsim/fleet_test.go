package fleetsim

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A small fleet through the whole simulation: everything placed, the dead
// node's streams placed again, never two owners.
func TestRunSmallFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Config{Nodes: 3, Streams: 30, Lease: 2 * time.Second, Steady: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Doubles != 0 {
		t.Errorf("%d double owners", r.Doubles)
	}
	if r.Moved == 0 || r.MaxPerNode > 11 || r.OpsPerNode <= 0 {
		t.Errorf("result %+v: want the dead node to have owned streams, at most ceil(30/3)+1 per node, some KV ops", r)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# B\n\n## Live\n\nx\n\n## Reproduce\n\nmake bench\n"
	once := ReplaceSection(doc, "## Fleet\n\nfirst")
	if !strings.Contains(once, SectionBegin+"\n\n## Fleet\n\nfirst\n\n"+SectionEnd+"\n\n## Reproduce") {
		t.Fatalf("added:\n%s", once)
	}
	twice := ReplaceSection(once, "## Fleet\n\nsecond")
	if strings.Contains(twice, "first") || strings.Count(twice, SectionBegin) != 1 || !strings.HasSuffix(twice, "## Reproduce\n\nmake bench\n") {
		t.Fatalf("replaced:\n%s", twice)
	}
}
