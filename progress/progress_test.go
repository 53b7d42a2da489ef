package progress

import (
	"bytes"
	"strings"
	"testing"
)

// On a terminal, steps redraw one line in place and Done clears it; the
// terminal check itself is isTerminal (a pipe or buffer gets nothing, as
// TestRunDemoLabelsEveryScene shows).
func TestProgressRedrawsOneLine(t *testing.T) {
	var b bytes.Buffer
	p := &Progress{w: &b, on: true, total: 3}
	p.Step(1, "classify a.mp4")
	p.Step(2, "b.mp4")
	p.Done()
	out := b.String()
	if strings.Contains(out, "\n") {
		t.Errorf("progress printed a newline: %q", out)
	}
	parts := strings.Split(out, "\r")
	if len(parts) < 4 || !strings.HasPrefix(parts[1], "[1/3 ") || !strings.HasSuffix(parts[1], "] classify a.mp4") {
		t.Fatalf("progress output %q", out)
	}
	// The shorter second line pads over the first one's tail.
	if !strings.HasPrefix(parts[2], "[2/3 ") || len(parts[2]) != len(parts[1]) {
		t.Errorf("second step %q does not cover the first %q", parts[2], parts[1])
	}
	if strings.TrimSpace(parts[3]) != "" {
		t.Errorf("Done left %q", parts[3])
	}
	var quiet bytes.Buffer
	q := NewProgress(&quiet, 2)
	q.Step(1, "x")
	q.Done()
	if quiet.Len() != 0 {
		t.Errorf("progress on a buffer (not a terminal) printed %q", quiet.String())
	}
}
