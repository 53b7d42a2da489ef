package ingest

import (
	"fmt"
	"slices"
	"time"
)

// Clip is a video file made into model input the way the reference does it:
// centre-sampled frames, scaled, cropped and normalised.
type Clip struct {
	// FramesTotal is the number of frames in the file (video packets, as
	// the reference's decoder counts them).
	FramesTotal int
	// Indices are the sampled frame indices, one per segment.
	Indices []int
	// Tensor is [segments,3,crop,crop] float32, the model input without the
	// batch axis.
	Tensor []float32
	// FramesDecoded is how many frames (packets) went through the decoder:
	// fewer than FramesTotal when frames that no sampled frame depends on
	// were skipped, or decoding stopped after the last sampled frame.
	FramesDecoded int
	// Decode is the time spent demuxing, decoding and converting to RGB;
	// Preprocess the time spent scaling, cropping and normalising.
	Decode, Preprocess time.Duration
}

// LoadClip decodes the file at path and builds the model input for a model
// with the given number of segments. Decoding stops after the last sampled
// frame and only sampled frames are converted and preprocessed.
func LoadClip(path string, pre Preprocessor, segments int) (*Clip, error) {
	return LoadClipWith(path, pre, segments, FileOptions{})
}

// LoadClipWith is LoadClip with limits: the largest frame, and a context
// that stops reading and decoding when it ends.
func LoadClipWith(path string, pre Preprocessor, segments int, opts FileOptions) (*Clip, error) {
	start := time.Now()
	f, err := OpenVideoFileWith(path, opts)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.CountFrames()
	if err != nil {
		return nil, err
	}
	indices, err := SampleIndices(n, segments)
	if err != nil {
		return nil, fmt.Errorf("sample %q: %w", path, err)
	}
	want := slices.Clone(indices)
	slices.Sort(want)
	want = slices.Compact(want)

	frameSize := pre.FrameSize()
	clip := &Clip{FramesTotal: n, Indices: indices, Tensor: make([]float32, segments*frameSize)}
	var prep time.Duration
	err = f.Decode(want, func(index int, _ time.Duration, img *Image) error {
		t := time.Now()
		defer func() { prep += time.Since(t) }()
		first := -1
		for slot, idx := range indices {
			if idx != index {
				continue
			}
			dst := clip.Tensor[slot*frameSize : (slot+1)*frameSize]
			if first >= 0 {
				copy(dst, clip.Tensor[first*frameSize:(first+1)*frameSize])
				continue
			}
			if err := pre.Frame(img, dst); err != nil {
				return fmt.Errorf("preprocess frame %d of %q: %w", index, path, err)
			}
			first = slot
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	clip.Preprocess = prep
	clip.Decode = time.Since(start) - prep
	clip.FramesDecoded = f.PacketsRead() - f.PacketsSkipped()
	return clip, nil
}
