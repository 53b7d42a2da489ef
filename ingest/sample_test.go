package ingest

import (
	"fmt"
	"slices"
	"testing"
)

// The expected lists are the worked examples of PPTSMV2.md §3.2, written out.
func TestSampleIndices(t *testing.T) {
	ones := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	tests := []struct {
		n    int
		want []int
	}{
		{250, []int{7, 22, 37, 52, 67, 82, 97, 112, 127, 142, 157, 172, 187, 202, 217, 232}},
		{280, []int{8, 25, 42, 59, 76, 93, 110, 127, 144, 161, 178, 195, 212, 229, 246, 263}},
		{131, []int{3, 11, 19, 27, 35, 43, 51, 59, 67, 75, 83, 91, 99, 107, 115, 123}},
		{300, []int{8, 26, 44, 62, 80, 98, 116, 134, 152, 170, 188, 206, 224, 242, 260, 278}},
		{32, []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}},
		{16, ones},
		{17, ones},
		{31, ones},
		{15, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0}},
		{10, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5}},
		{5, []int{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0}},
		{1, []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.n), func(t *testing.T) {
			got, err := SampleIndices(tt.n, 16)
			if err != nil {
				t.Fatalf("SampleIndices(%d, 16): %v", tt.n, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("SampleIndices(%d, 16) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}

func TestSampleIndicesOtherSegments(t *testing.T) {
	// 8 segments of 100 frames: avg 12, first index (12-1)/2 = 5.
	got, err := SampleIndices(100, 8)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{5, 17, 29, 41, 53, 65, 77, 89}; !slices.Equal(got, want) {
		t.Errorf("SampleIndices(100, 8) = %v, want %v", got, want)
	}
}

func TestSampleIndicesInvalid(t *testing.T) {
	tests := []struct {
		name        string
		n, segments int
	}{
		{"no frames", 0, 16},
		{"negative frames", -3, 16},
		{"no segments", 100, 0},
		{"negative segments", 100, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SampleIndices(tt.n, tt.segments)
			if err == nil {
				t.Fatalf("SampleIndices(%d, %d) = %v, want an error", tt.n, tt.segments, got)
			}
		})
	}
}
