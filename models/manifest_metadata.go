package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Readable metadata_props keys written beside the JSON manifest, so that
// tools that list metadata (netron, onnx.load) show what the model is.
const (
	NameKey      = "actiond.name"
	UntrainedKey = "actiond.untrained"
	// PartKey marks a half of a split model ("front" or "back"; see
	// FeatureCache); the whole model has none.
	PartKey = "actiond.part"
	// BuildKey, in a half, is its model's FeatureCache.Build.
	BuildKey = "actiond.build"
)

// ErrNoManifest means a model carries no manifest: neither in its
// metadata_props nor, for ResolveManifest, in a sidecar file.
var ErrNoManifest = errors.New("no actiond manifest")

// FloatType is the ONNX element type (TensorProto.DataType) of float32.
const FloatType = 1

// Tensor is a model's input or output as a manifest is checked against it
// (CheckIO), whoever read the model: the ONNX graph (models/onnx) or ONNX
// Runtime (engine).
type Tensor struct {
	Name string
	// ElemType is the ONNX element type; FloatType is float32.
	ElemType int32
	// Shape is nil when the rank is unknown; -1 is a free (symbolic or
	// unknown) dimension.
	Shape []int64
}

// ManifestFromMetadata decodes the manifest stored under ManifestKey in a
// model's metadata_props. Without one it returns an error that wraps
// ErrNoManifest. It does not check the manifest against the model's graph
// (CheckIO does).
func ManifestFromMetadata(props map[string]string) (Manifest, error) {
	v, ok := props[ManifestKey]
	if !ok {
		return Manifest{}, fmt.Errorf("metadata_props has no %q: %w", ManifestKey, ErrNoManifest)
	}
	man, err := decodeManifest([]byte(v))
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest in metadata_props %q: %w", ManifestKey, err)
	}
	return man, nil
}

// ResolveManifest returns the manifest of the ONNX model at onnxPath, given
// its metadata_props and its inputs and outputs: the one in props, or else
// the one in the sidecar file onnxPath+".json" (the same JSON), checked
// against the inputs and outputs. Without either it returns an error that
// wraps ErrNoManifest and says how to fix it.
func ResolveManifest(onnxPath string, props map[string]string, inputs, outputs []Tensor) (Manifest, error) {
	man, err := ManifestFromMetadata(props)
	if err == nil {
		if err = man.CheckIO(inputs, outputs); err != nil {
			man = Manifest{}
		}
	}
	if !errors.Is(err, ErrNoManifest) {
		if err != nil {
			err = fmt.Errorf("model %q: %w", onnxPath, err)
		}
		return man, err
	}
	sidecar := onnxPath + ".json"
	b, err := os.ReadFile(sidecar)
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, &noManifestError{model: onnxPath, sidecar: sidecar}
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest sidecar: %w", err)
	}
	if man, err = decodeManifest(b); err == nil {
		err = man.CheckIO(inputs, outputs)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest sidecar %q: %w", sidecar, err)
	}
	return man, nil
}

type noManifestError struct{ model, sidecar string }

func (e *noManifestError) Error() string {
	return fmt.Sprintf("model %q has no actiond manifest in its metadata_props and no sidecar %q; "+
		"write one (see README \"Models\")", e.model, e.sidecar)
}

func (e *noManifestError) Unwrap() error { return ErrNoManifest }

// decodeManifest decodes one JSON manifest, strictly: unknown keys and
// trailing data are errors, and the result is validated.
func decodeManifest(b []byte) (Manifest, error) {
	var man Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return Manifest{}, fmt.Errorf("decode manifest: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Manifest{}, errors.New("decode manifest: data after the JSON object")
	}
	if err := man.Validate(); err != nil {
		return Manifest{}, err
	}
	return man, nil
}

// CheckIO checks that a graph with these inputs and outputs is a model the
// manifest can describe: one float clip input [N, segments, 3, input_size,
// input_size] and a first output [N, len(labels)]. Free dimensions and
// shapes of unknown rank match anything.
func (m Manifest) CheckIO(inputs, outputs []Tensor) error {
	if len(inputs) != 1 {
		return fmt.Errorf("model has %d inputs, want 1 (the clip)", len(inputs))
	}
	in := inputs[0]
	if in.ElemType != FloatType {
		return fmt.Errorf("model input %q has element type %d, want float (%d)", in.Name, in.ElemType, FloatType)
	}
	if in.Shape != nil {
		want := []int64{-1, int64(m.Segments), 3, int64(m.InputSize), int64(m.InputSize)}
		if !shapeMatches(in.Shape, want) {
			return fmt.Errorf("model input %q has shape %s, but the manifest says [N %d 3 %d %d] ('segments', 'input_size')",
				in.Name, formatShape(in.Shape), m.Segments, m.InputSize, m.InputSize)
		}
	}
	if len(outputs) == 0 {
		return errors.New("model has no outputs")
	}
	out := outputs[0]
	if out.Shape != nil && !shapeMatches(out.Shape, []int64{-1, int64(len(m.Labels))}) {
		return fmt.Errorf("model output %q has shape %s, but the manifest has %d labels",
			out.Name, formatShape(out.Shape), len(m.Labels))
	}
	return nil
}

// shapeMatches reports whether shape has len(want) dims and each fixed dim
// equals want (-1 in either matches anything).
func shapeMatches(shape, want []int64) bool {
	if len(shape) != len(want) {
		return false
	}
	for i, d := range shape {
		if d > 0 && want[i] > 0 && d != want[i] {
			return false
		}
	}
	return true
}

// formatShape writes a shape as the manifest's messages do: [N 16 3 224
// 224], the leading free dimension N (the batch) and any other "?".
func formatShape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		switch {
		case d > 0:
			parts[i] = fmt.Sprint(d)
		case i == 0:
			parts[i] = "N"
		default:
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}
