package ingest

import "fmt"

// SampleIndices returns the frame indices that PaddleVideo's inference
// sampler (Sampler with valid_mode=True, seg_len=1) picks from a clip of n
// decoded frames split into segments equal parts: the lower middle frame of
// each part. The parts all have the integer length n/segments and start at
// frame 0, so the last n mod segments frames are never used; a clip shorter
// than segments wraps around and repeats frames. Matching this exactly
// matters because the model was evaluated on these frames.
func SampleIndices(n, segments int) ([]int, error) {
	if n <= 0 {
		return nil, fmt.Errorf("sample indices: clip has %d frames, need at least 1", n)
	}
	if segments <= 0 {
		return nil, fmt.Errorf("sample indices: %d segments, need at least 1", segments)
	}
	avg := n / segments // Python int(n / segments): truncation, n and segments are positive
	idx := make([]int, segments)
	for i := range idx {
		v := i
		if avg >= 1 {
			v = (avg-1)/2 + i*avg
		}
		idx[i] = v % n
	}
	return idx, nil
}
