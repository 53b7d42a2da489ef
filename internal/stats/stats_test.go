package stats

import "testing"

func TestPercentileNearestRank(t *testing.T) {
	v := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tt := range []struct {
		q    float64
		want int
	}{{0, 1}, {0.1, 1}, {0.11, 2}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}} {
		if got := Percentile(v, tt.q); got != tt.want {
			t.Errorf("Percentile(1..10, %v) = %d, want %d", tt.q, got, tt.want)
		}
	}
	if got := Percentile([]float64(nil), 0.5); got != 0 {
		t.Errorf("no values: %v, want 0", got)
	}
}
