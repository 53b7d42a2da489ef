package ingest

import (
	"os"
	"testing"

	"github.com/actiond/actiond/models"
)

// BenchmarkLoadClip is the clip front end of PP-TSMv2 (decode, centre
// sampling of 16 frames, Scale(256)/CenterCrop(224)/normalise) on the shared
// arm_wrestling clip. `make bench` compares it with OpenCV and PyAV.
func BenchmarkLoadClip(b *testing.B) {
	const path = "../../shared/testdata/arm_wrestling.mp4"
	if _, err := os.Stat(path); err != nil {
		b.Skipf("no test clip: %v", err)
	}
	pre := Preprocessor{ShortSide: 256, CropSize: 224, Mean: models.ImageNetMean, Std: models.ImageNetStd}
	for b.Loop() {
		if _, err := LoadClip(path, pre, 16); err != nil {
			b.Fatal(err)
		}
	}
}
