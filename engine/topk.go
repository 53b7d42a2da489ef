package engine

import (
	"math"
	"sort"
)

// Scored is one class and its score.
type Scored struct {
	Index int
	Score float32
}

// Softmax returns exp(x - max) / sum over one row of logits, computed in
// float64 and rounded to float32.
func Softmax(logits []float32) []float32 {
	out := make([]float32, len(logits))
	if len(logits) == 0 {
		return out
	}
	maxV := math.Inf(-1)
	for _, v := range logits {
		maxV = math.Max(maxV, float64(v))
	}
	var sum float64
	exps := make([]float64, len(logits))
	for i, v := range logits {
		exps[i] = math.Exp(float64(v) - maxV)
		sum += exps[i]
	}
	for i := range exps {
		out[i] = float32(exps[i] / sum)
	}
	return out
}

// TopK returns the k highest scores, highest first; ties go to the lower
// index so results are stable. k is clamped to len(scores).
func TopK(scores []float32, k int) []Scored {
	if k > len(scores) {
		k = len(scores)
	}
	if k <= 0 {
		return nil
	}
	all := make([]Scored, len(scores))
	for i, s := range scores {
		all[i] = Scored{Index: i, Score: s}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].Score > all[b].Score })
	return all[:k]
}
