// Package stats is the one percentile rule that the benchmarks (model
// bench, actionbench) and the soak report use, so that their figures
// compare. It must stay free of anything but the standard library.
package stats

import (
	"cmp"
	"math"
)

// Percentile returns the q-quantile (0 to 1) of sorted by nearest rank:
// the smallest value with at least q of the values at or below it (the
// value at rank ⌈q·n⌉). It returns the zero value when sorted is empty.
func Percentile[T cmp.Ordered](sorted []T, q float64) T {
	if len(sorted) == 0 {
		var zero T
		return zero
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
