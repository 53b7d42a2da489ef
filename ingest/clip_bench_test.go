package ingest

import (
	"os"
	"testing"
	"time"

	"github.com/actiond/actiond/models"
)

// BenchmarkLoadClip is the clip front end of PP-TSMv2 (decode, centre
// sampling of 16 frames, Scale(256)/CenterCrop(224)/normalise) on the shared
// arm_wrestling clip. `make bench` compares it with OpenCV and PyAV.
func BenchmarkLoadClip(b *testing.B) {
	const path = "../testdata/arm_wrestling.mp4"
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

// BenchmarkLoadClipHD is the same on the 1920×1080 25 fps 10 s scene that
// `make bench` generates (skipped until it has).
func BenchmarkLoadClipHD(b *testing.B) {
	const path = "../.cache/bench/scene-1920x1080-25fps-10s.mp4"
	if _, err := os.Stat(path); err != nil {
		b.Skipf("no 1080p clip (make bench writes it): %v", err)
	}
	pre := Preprocessor{ShortSide: 256, CropSize: 224, Mean: models.ImageNetMean, Std: models.ImageNetStd}
	var dec, prep time.Duration
	for b.Loop() {
		clip, err := LoadClip(path, pre, 16)
		if err != nil {
			b.Fatal(err)
		}
		dec += clip.Decode
		prep += clip.Preprocess
	}
	b.ReportMetric(float64(dec.Milliseconds())/float64(b.N), "decode-ms/op")
	b.ReportMetric(float64(prep.Milliseconds())/float64(b.N), "prep-ms/op")
}
