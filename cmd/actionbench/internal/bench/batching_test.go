package bench

import (
	"fmt"
	"strings"
	"testing"
)

// batchFigures makes a batching result whose fastest repeats take ms[j]
// per run at batchSizes[j].
func batchFigures(threads int, ms ...float64) batchResult {
	r := batchResult{Threads: threads, Repeats: 1}
	for j, b := range batchSizes {
		r.Points = append(r.Points, batchPoint{Batch: b, P50: stat{Min: ms[j], Median: ms[j], Max: ms[j], N: 1},
			ClipsPerS: summarise([]float64{float64(b) / ms[j] * 1e3}), PerClipRel: summarise([]float64{ms[j] / float64(b) / ms[0]})})
	}
	return r
}

// With the default max_batch 1 and figures where batching buys nothing,
// the reading weighs batch 1 against the best larger batch and agrees
// with the default.
func TestBatchingReadingDefaultOne(t *testing.T) {
	results := []batchResult{
		batchFigures(2, 500, 1010, 2040, 4100), // batch 2 best of the larger ones
		batchFigures(1, 900, 1800, 3700, 7300),
	}
	var b strings.Builder
	batchingMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, config{iterations: 10}, "m.onnx", results, 1)
	md := b.String()
	for _, want := range []string{
		"`inference.max_batch`, default 1",
		"At 2 thread(s), batch 2 runs 0.99× the clips/s of batch 1",
		"the smallest batch within 5% of the best is **1**",
		"So max_batch 1 is right on this machine",
		"At 1 thread(s) the same reading gives batch 1 (batch 2: 1.00×",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("reading lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "batch 1 runs 1.00× the clips/s of batch 1") {
		t.Errorf("reading weighs batch 1 against itself:\n%s", md)
	}
}
