package engine

import (
	"math"
	"testing"
)

func TestSoftmax(t *testing.T) {
	got := Softmax([]float32{1, 2, 3})
	// e^-2, e^-1, 1 over their sum.
	sum := math.Exp(-2) + math.Exp(-1) + 1
	want := []float64{math.Exp(-2) / sum, math.Exp(-1) / sum, 1 / sum}
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > 1e-7 {
			t.Errorf("softmax[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	// Large logits must not overflow.
	big := Softmax([]float32{1000, 1000})
	if big[0] != 0.5 || big[1] != 0.5 {
		t.Errorf("softmax of equal large logits = %v, want [0.5 0.5]", big)
	}
}

func TestTopK(t *testing.T) {
	scores := []float32{0.1, 0.4, 0.05, 0.4, 0.05}
	tests := []struct {
		k    int
		want []Scored
	}{
		{1, []Scored{{1, 0.4}}},
		{3, []Scored{{1, 0.4}, {3, 0.4}, {0, 0.1}}},
		{9, []Scored{{1, 0.4}, {3, 0.4}, {0, 0.1}, {2, 0.05}, {4, 0.05}}},
		{0, nil},
	}
	for _, tt := range tests {
		got := TopK(scores, tt.k)
		if len(got) != len(tt.want) {
			t.Fatalf("k=%d: got %v, want %v", tt.k, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("k=%d: got %v, want %v", tt.k, got, tt.want)
			}
		}
	}
}
