package plot

import (
	"fmt"
	"testing"
)

// Ticks fall on round numbers across the range, and their labels carry
// no float noise.
func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		n      int
		want   string
	}{
		{0, 5, 5, "[0 1 2 3 4 5]"},
		{0, 1.2, 5, "[0 0.25 0.5 0.75 1]"},
		{0, 0.3, 3, "[0 0.1 0.2 0.3]"},
		{300, 302, 5, "[300 300.5 301 301.5 302]"},
		{0, 8, 4, "[0 2 4 6 8]"},
		{0, 1250, 5, "[0 250 500 750 1000 1250]"},
		{2, 2, 5, "[2]"},
	} {
		var labels []string
		for _, v := range Ticks(tc.lo, tc.hi, tc.n) {
			labels = append(labels, TickLabel(v))
		}
		if got := fmt.Sprint(labels); got != tc.want {
			t.Errorf("Ticks(%v, %v, %d) = %s, want %s", tc.lo, tc.hi, tc.n, got, tc.want)
		}
	}
	for v, want := range map[float64]float64{0: 1, 0.9: 1, 1.1: 1.2, 4.4: 5, 5.5: 6, 48: 50, 7: 8, 9: 10} {
		if got := NiceCeil(v); got != want {
			t.Errorf("NiceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}
