package modeltool

import (
	"math"
	"slices"
	"testing"
)

// compareLogits, which `model bench --feature-cache` reports, sees a
// difference in one logit and a change in the top five.
func TestCompareLogits(t *testing.T) {
	a := []float32{0.1, 3, -2, 0.5, 1, 2, 0.2}
	diff, scale, same := compareLogits(a, slices.Clone(a))
	if diff != 0 || scale != 3 || !same {
		t.Errorf("equal logits: diff %v scale %v same %v", diff, scale, same)
	}
	b := slices.Clone(a)
	b[0] = 1.5 // enters the top five, pushing 0.2 out
	if diff, _, same := compareLogits(a, b); math.Abs(diff-1.4) > 1e-6 || same {
		t.Errorf("one logit changed: diff %v same %v, want 1.4, not the same", diff, same)
	}
	if diff, _, same := compareLogits(a, a[:3]); !math.IsInf(diff, 1) || same {
		t.Errorf("different lengths: diff %v same %v", diff, same)
	}
}
