package models

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
)

// OutputKind says what a model's output tensor holds.
type OutputKind string

const (
	// OutputLogits means the output is raw scores: consumers apply softmax.
	OutputLogits OutputKind = "logits"
	// OutputProbabilities means the output already sums to one per clip.
	OutputProbabilities OutputKind = "probabilities"
)

// ManifestKey is the metadata_props key that holds the JSON manifest.
const ManifestKey = "actiond.manifest"

// Manifest describes a model so that the server needs nothing beside the
// ONNX file. It is stored as JSON under ManifestKey in metadata_props.
type Manifest struct {
	// Name is a short identifier, e.g. "pptsmv2" or "motion".
	Name string `json:"name"`
	// Description is one human sentence about the model.
	Description string `json:"description,omitempty"`
	// Labels are the class names, in output order.
	Labels []string `json:"labels"`
	// Segments is the number of frames per clip (T). PP-TSMv2: 16.
	Segments int `json:"segments"`
	// InputSize is the square crop fed to the model. PP-TSMv2: 224.
	InputSize int `json:"input_size"`
	// ShortSide is the Scale() target before the crop. PP-TSMv2: 256.
	ShortSide int `json:"short_side"`
	// Mean and Std normalise RGB values after dividing by 255.
	Mean [3]float32 `json:"mean"`
	Std  [3]float32 `json:"std"`
	// Output says whether the output is logits or probabilities.
	Output OutputKind `json:"output"`
	// Untrained marks models with random weights: their labels mean nothing.
	Untrained bool `json:"untrained"`
	// MACsPerClip is the multiply-accumulate count of one clip (0 = unknown).
	MACsPerClip int64 `json:"macs_per_clip,omitempty"`
	// WindowSeconds is the default live window length (0 = server default, 10 s).
	WindowSeconds float64 `json:"window_seconds,omitempty"`
	// FeatureCache, when set, names the model's two halves, split where
	// the frames of a clip first meet: a live stream runs the front once
	// per kept frame and keeps its output, and only the back per window.
	FeatureCache *FeatureCache `json:"feature_cache,omitempty"`
}

// FeatureCache describes a model split into a per-frame front and a
// per-window back, two ONNX files beside the model. Running the front on
// each of the segments frames of a clip, then the back on the stacked
// outputs, gives the whole model's output.
type FeatureCache struct {
	// Front is the front's file name, in the model's directory: input
	// [F, 3, input_size, input_size] (F frames), output [F, feature_shape…].
	Front string `json:"front"`
	// Back is the back's file name, in the model's directory: input
	// [N, segments, feature_shape…], output [N, len(labels)].
	Back string `json:"back"`
	// FeatureShape is the front's output per frame, e.g. [256, 28, 28].
	FeatureShape []int `json:"feature_shape"`
	// Build identifies the weights the three files were built from; each
	// half carries it under BuildKey, so that halves of another build
	// beside the model are caught rather than giving wrong scores.
	Build string `json:"build"`
}

// FeatureSize is the number of float32 values per frame of the front's
// output.
func (f *FeatureCache) FeatureSize() int {
	n := 1
	for _, d := range f.FeatureShape {
		n *= d
	}
	return n
}

// ImageNetMean and ImageNetStd are the normalisation PP-TSMv2 was trained with.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Validate checks the manifest on its own; CheckIO checks it against a
// model's graph. Every problem is reported, each naming its JSON key.
func (m Manifest) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("manifest: "+format, args...))
	}
	if m.Name == "" {
		bad("'name' must not be empty")
	}
	if len(m.Labels) == 0 {
		bad("'labels' must not be empty")
	}
	seen := make(map[string]int, len(m.Labels))
	for i, l := range m.Labels {
		if l == "" {
			bad("'labels'[%d] is empty", i)
		} else if j, dup := seen[l]; dup {
			bad("'labels'[%d] %q repeats 'labels'[%d]", i, l, j)
		}
		seen[l] = i
	}
	if m.Segments < 1 {
		bad("'segments' must be ≥ 1, got %d", m.Segments)
	}
	if m.InputSize < 1 {
		bad("'input_size' must be ≥ 1, got %d", m.InputSize)
	}
	if m.ShortSide < m.InputSize {
		bad("'short_side' (%d) must be ≥ 'input_size' (%d)", m.ShortSide, m.InputSize)
	}
	for c := range 3 {
		if !finite(m.Mean[c]) {
			bad("'mean'[%d] must be finite, got %v", c, m.Mean[c])
		}
		if m.Std[c] == 0 || !finite(m.Std[c]) {
			bad("'std'[%d] must be non-zero and finite, got %v", c, m.Std[c])
		}
	}
	if m.Output != OutputLogits && m.Output != OutputProbabilities {
		bad("'output' must be %q or %q, got %q", OutputLogits, OutputProbabilities, m.Output)
	}
	if m.MACsPerClip < 0 {
		bad("'macs_per_clip' must be ≥ 0, got %d", m.MACsPerClip)
	}
	if m.WindowSeconds < 0 || math.IsNaN(m.WindowSeconds) || math.IsInf(m.WindowSeconds, 0) {
		bad("'window_seconds' must be ≥ 0 (0 = server default), got %v", m.WindowSeconds)
	}
	if f := m.FeatureCache; f != nil {
		for _, p := range [...]struct{ key, name string }{{"front", f.Front}, {"back", f.Back}} {
			// A bare file name: the halves live beside the model, and a
			// manifest must not point elsewhere on the disk.
			if p.name == "" || p.name != filepath.Base(p.name) || p.name == "." || p.name == ".." {
				bad("'feature_cache'.'%s' must be a file name in the model's directory, got %q", p.key, p.name)
			}
		}
		if f.Front != "" && f.Front == f.Back {
			bad("'feature_cache'.'front' and 'back' must differ, both are %q", f.Front)
		}
		size := int64(1)
		for i, d := range f.FeatureShape {
			if d < 1 {
				bad("'feature_cache'.'feature_shape'[%d] must be ≥ 1, got %d", i, d)
			} else if size *= int64(d); size > 1<<30 {
				bad("'feature_cache'.'feature_shape' %v is too large", f.FeatureShape)
				break
			}
		}
		if len(f.FeatureShape) == 0 {
			bad("'feature_cache'.'feature_shape' must not be empty")
		}
		if f.Build == "" {
			bad("'feature_cache'.'build' must not be empty")
		}
	}
	return errors.Join(errs...)
}

func finite(f float32) bool {
	return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0)
}
