package onnx

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/actiond/actiond/models"
)

// The actiond manifest (models.Manifest) in a parsed model: what the model
// builders and tools (`actiond model`) use. The server reads it through ONNX
// Runtime instead (engine), without parsing the file.

// EmbedManifest validates man against the model's graph and stores it in the
// model's metadata_props: as JSON under models.ManifestKey, plus
// models.NameKey and models.UntrainedKey. Existing entries with those keys
// are replaced.
func EmbedManifest(m *Model, man models.Manifest) error {
	if err := man.Validate(); err != nil {
		return fmt.Errorf("embed manifest: %w", err)
	}
	if err := man.CheckIO(Tensors(m.Graph.Inputs), Tensors(m.Graph.Outputs)); err != nil {
		return fmt.Errorf("embed manifest: %w", err)
	}
	b, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("embed manifest: %w", err)
	}
	m.SetMetadata(models.ManifestKey, string(b))
	m.SetMetadata(models.NameKey, man.Name)
	m.SetMetadata(models.UntrainedKey, strconv.FormatBool(man.Untrained))
	return nil
}

// ManifestFromModel reads the manifest from the model's metadata_props and
// checks it against the graph. Without one it returns an error that wraps
// models.ErrNoManifest.
func ManifestFromModel(m *Model) (models.Manifest, error) {
	man, err := models.ManifestFromMetadata(m.MetadataMap())
	if err != nil {
		return models.Manifest{}, err
	}
	if err := man.CheckIO(Tensors(m.Graph.Inputs), Tensors(m.Graph.Outputs)); err != nil {
		return models.Manifest{}, err
	}
	return man, nil
}

// LoadManifest returns the manifest of the ONNX model at path, as
// models.ResolveManifest does: from its metadata_props, or else from the
// sidecar file path+".json".
func LoadManifest(path string) (models.Manifest, error) {
	m, err := ReadFile(path)
	if err != nil {
		return models.Manifest{}, err
	}
	return m.resolveManifest(path)
}

func (m *Model) resolveManifest(path string) (models.Manifest, error) {
	return models.ResolveManifest(path, m.MetadataMap(), Tensors(m.Graph.Inputs), Tensors(m.Graph.Outputs))
}

// Info is what `actiond model info` shows about a model file.
type Info struct {
	Manifest models.Manifest
	Inputs   []ValueInfo
	Outputs  []ValueInfo
	// Params is the number of weights (initializer elements).
	Params int64
	// Opset is the default-domain opset the model imports.
	Opset int64
}

// Inspect reads the model at path and its manifest (see LoadManifest). When
// the file is a model but its manifest is missing (the error wraps
// models.ErrNoManifest) or wrong, Info still holds the graph's inputs,
// outputs, params and opset, so that a caller can show what a manifest must
// describe.
func Inspect(path string) (Info, error) {
	m, err := ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	info := Info{
		Inputs:  m.Graph.Inputs,
		Outputs: m.Graph.Outputs,
		Params:  m.Graph.ParamCount(),
		Opset:   m.Opset(""),
	}
	info.Manifest, err = m.resolveManifest(path)
	return info, err
}

// Tensors describes graph inputs or outputs as models.Manifest.CheckIO
// takes them.
func Tensors(vs []ValueInfo) []models.Tensor {
	out := make([]models.Tensor, len(vs))
	for i, v := range vs {
		out[i] = models.Tensor{Name: v.Name, ElemType: int32(v.ElemType)}
		if v.Shape != nil {
			out[i].Shape = make([]int64, len(v.Shape))
			for j, d := range v.Shape {
				out[i].Shape[j] = d.Value
				if d.Param != "" || d.Value <= 0 {
					out[i].Shape[j] = -1
				}
			}
		}
	}
	return out
}

// MetadataMap returns metadata_props as a map; where a key repeats, the
// first entry wins, as in MetadataValue.
func (m *Model) MetadataMap() map[string]string {
	props := make(map[string]string, len(m.Metadata))
	for i := len(m.Metadata) - 1; i >= 0; i-- {
		props[m.Metadata[i].Key] = m.Metadata[i].Value
	}
	return props
}
