package models

import (
	"github.com/actiond/actiond/models/onnx"
)

// Info is what `actiond model info` shows about a model file.
type Info struct {
	Manifest Manifest
	Inputs   []onnx.ValueInfo
	Outputs  []onnx.ValueInfo
	// Params is the number of weights (initializer elements).
	Params int64
	// Opset is the default-domain opset the model imports.
	Opset int64
}

// Inspect reads the model at path and its manifest (see LoadManifest). When
// the file is a model but its manifest is missing (the error wraps
// ErrNoManifest) or wrong, Info still holds the graph's inputs, outputs,
// params and opset, so that a caller can show what a manifest must describe.
func Inspect(path string) (Info, error) {
	m, err := onnx.ReadFile(path)
	if err != nil {
		return Info{}, err
	}
	info := Info{
		Inputs:  m.Graph.Inputs,
		Outputs: m.Graph.Outputs,
		Params:  m.Graph.ParamCount(),
		Opset:   m.Opset(""),
	}
	info.Manifest, err = manifestFor(path, m)
	return info, err
}
