package models

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"github.com/actiond/actiond/models/onnx"
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
// metadata_props nor, for LoadManifest, in a sidecar file.
var ErrNoManifest = errors.New("no actiond manifest")

// EmbedManifest validates man against the model's graph and stores it in the
// model's metadata_props: as JSON under ManifestKey, plus NameKey and
// UntrainedKey. Existing entries with those keys are replaced.
func EmbedManifest(m *onnx.Model, man Manifest) error {
	if err := man.Validate(); err != nil {
		return fmt.Errorf("embed manifest: %w", err)
	}
	if err := man.CheckIO(m.Graph.Inputs, m.Graph.Outputs); err != nil {
		return fmt.Errorf("embed manifest: %w", err)
	}
	b, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("embed manifest: %w", err)
	}
	m.SetMetadata(ManifestKey, string(b))
	m.SetMetadata(NameKey, man.Name)
	m.SetMetadata(UntrainedKey, strconv.FormatBool(man.Untrained))
	return nil
}

// ManifestFromModel reads the manifest from the model's metadata_props and
// checks it against the graph. Without one it returns an error that wraps
// ErrNoManifest.
func ManifestFromModel(m *onnx.Model) (Manifest, error) {
	v, ok := m.MetadataValue(ManifestKey)
	if !ok {
		return Manifest{}, fmt.Errorf("metadata_props has no %q: %w", ManifestKey, ErrNoManifest)
	}
	man, err := decodeManifest([]byte(v))
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest in metadata_props %q: %w", ManifestKey, err)
	}
	if err := man.CheckIO(m.Graph.Inputs, m.Graph.Outputs); err != nil {
		return Manifest{}, err
	}
	return man, nil
}

// LoadManifest returns the manifest of the ONNX model at onnxPath: from its
// metadata_props, or else from the sidecar file onnxPath+".json" (the same
// JSON). Without either it returns an error that wraps ErrNoManifest and says
// how to fix it.
func LoadManifest(onnxPath string) (Manifest, error) {
	m, err := onnx.ReadFile(onnxPath)
	if err != nil {
		return Manifest{}, err
	}
	return manifestFor(onnxPath, m)
}

func manifestFor(onnxPath string, m *onnx.Model) (Manifest, error) {
	man, err := ManifestFromModel(m)
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
		err = man.CheckIO(m.Graph.Inputs, m.Graph.Outputs)
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
// input_size] and a first output [N, len(labels)]. Symbolic or unknown
// dimensions match anything.
func (m Manifest) CheckIO(inputs, outputs []onnx.ValueInfo) error {
	if len(inputs) != 1 {
		return fmt.Errorf("model has %d inputs, want 1 (the clip)", len(inputs))
	}
	in := inputs[0]
	if in.ElemType != onnx.Float {
		return fmt.Errorf("model input %q has element type %d, want float (1)", in.Name, in.ElemType)
	}
	if in.Shape != nil {
		want := []int64{0, int64(m.Segments), 3, int64(m.InputSize), int64(m.InputSize)}
		if !shapeMatches(in.Shape, want) {
			return fmt.Errorf("model input %q has shape %v, but the manifest says [N %d 3 %d %d] ('segments', 'input_size')",
				in.Name, in.Shape, m.Segments, m.InputSize, m.InputSize)
		}
	}
	if len(outputs) == 0 {
		return errors.New("model has no outputs")
	}
	out := outputs[0]
	if out.Shape != nil && !shapeMatches(out.Shape, []int64{0, int64(len(m.Labels))}) {
		return fmt.Errorf("model output %q has shape %v, but the manifest has %d labels",
			out.Name, out.Shape, len(m.Labels))
	}
	return nil
}

// shapeMatches reports whether shape has len(want) dims and each fixed dim
// equals want (0 in want matches anything).
func shapeMatches(shape []onnx.Dim, want []int64) bool {
	if len(shape) != len(want) {
		return false
	}
	for i, d := range shape {
		if d.Param == "" && d.Value > 0 && want[i] > 0 && d.Value != want[i] {
			return false
		}
	}
	return true
}
