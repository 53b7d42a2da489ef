package bench

import (
	"fmt"
	"strings"
	"testing"
)

// The Sessions section has a row per model file and split, and says, per
// file, what the default split measured against the fastest one.
func TestSessionsSection(t *testing.T) {
	st := func(m float64) stat { return stat{Min: m - 1, Median: m, Max: m + 1} }
	r := &sessionsResult{Cores: 2, Repeats: 3, Points: []sessionsPoint{
		{Model: "m.onnx", Sessions: 1, Threads: 2, Iterations: 10, ClipsPerS: st(8), P50: st(100)},
		{Model: "m.onnx", Sessions: 2, Threads: 1, Iterations: 5, ClipsPerS: st(10), P50: st(180)},
		{Model: "m.back.onnx", Sessions: 1, Threads: 2, Iterations: 10, ClipsPerS: st(14), P50: st(60)},
		{Model: "m.back.onnx", Sessions: 2, Threads: 1, Iterations: 5, ClipsPerS: st(12), P50: st(150)},
	}}
	var b strings.Builder
	sessionsMarkdown(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }, "m.onnx", r)
	out := b.String()
	for _, want := range []string{
		"| m.onnx | 1 × 2 |", "| m.onnx | 2 × 1 |", "| m.back.onnx | 1 × 2 |", "| m.back.onnx | 2 × 1 |",
		"`m.onnx`: the default here, 1 × 2, 8.00 clips/s (p50 100 ms a run); the most measured, 2 × 1, 10.00 clips/s (1.25×, p50 180 ms a run).",
		"`m.back.onnx`: the default here, 1 × 2, 14.00 clips/s (p50 60 ms a run), the most measured.",
		"2 cores → 1 × 2", "64 cores → 16 × 4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}
