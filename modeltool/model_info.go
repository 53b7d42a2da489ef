package modeltool

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// TensorInfo is one model input or output; -1 in Shape is a free axis.
type TensorInfo struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int64 `json:"shape"`
}

// ModelInfo is what `actiond model info --json` prints.
type ModelInfo struct {
	Name        string            `json:"name"`
	File        string            `json:"file"`
	Description string            `json:"description,omitempty"`
	Inputs      []TensorInfo      `json:"inputs"`
	Outputs     []TensorInfo      `json:"outputs"`
	Params      int64             `json:"params"`
	MACsPerClip int64             `json:"macs_per_clip"`
	Segments    int               `json:"segments"`
	InputSize   int               `json:"input_size"`
	ShortSide   int               `json:"short_side"`
	Mean        [3]float32        `json:"mean"`
	Std         [3]float32        `json:"std"`
	Output      models.OutputKind `json:"output"`
	Opset       int64             `json:"opset"`
	Labels      []string          `json:"labels"`
	Untrained   bool              `json:"untrained"`
	// FeatureCache names the model's halves, when it ships split.
	FeatureCache *models.FeatureCache `json:"feature_cache,omitempty"`
}

// InspectModel reads a model file's manifest and graph without running it.
func InspectModel(path string) (*ModelInfo, error) {
	info, err := onnx.Inspect(path)
	if err != nil {
		return nil, err
	}
	m := info.Manifest
	return &ModelInfo{
		Name: m.Name, File: path, Description: m.Description,
		Inputs: tensorInfos(info.Inputs), Outputs: tensorInfos(info.Outputs),
		Params: info.Params, MACsPerClip: m.MACsPerClip,
		Segments: m.Segments, InputSize: m.InputSize, ShortSide: m.ShortSide,
		Mean: m.Mean, Std: m.Std, Output: m.Output, Opset: info.Opset,
		Labels: m.Labels, Untrained: m.Untrained, FeatureCache: m.FeatureCache,
	}, nil
}

func tensorInfos(vs []onnx.ValueInfo) []TensorInfo {
	out := make([]TensorInfo, len(vs))
	for i, t := range onnx.Tensors(vs) {
		if t.Shape == nil {
			t.Shape = []int64{}
		}
		out[i] = TensorInfo{Name: t.Name, Type: vs[i].ElemType.String(), Shape: t.Shape}
	}
	return out
}

// WriteModelInfoText prints a ModelInfo for people.
func WriteModelInfoText(w io.Writer, m *ModelInfo) {
	fmt.Fprintf(w, "%s (%s)\n", m.Name, filepath.Base(m.File))
	if m.Description != "" {
		fmt.Fprintf(w, "  %s\n", m.Description)
	}
	if m.Untrained {
		fmt.Fprintf(w, "  %s\n", classify.UntrainedWarning)
	}
	for _, t := range m.Inputs {
		fmt.Fprintf(w, "  input   %s %s %s\n", t.Name, t.Type, shapeString(t.Shape))
	}
	for _, t := range m.Outputs {
		fmt.Fprintf(w, "  output  %s %s %s (%s)\n", t.Name, t.Type, shapeString(t.Shape), m.Output)
	}
	fmt.Fprintf(w, "  params  %s\n", grouped(m.Params))
	if m.MACsPerClip > 0 {
		fmt.Fprintf(w, "  MACs    %s per clip (%.3g G)\n", grouped(m.MACsPerClip), float64(m.MACsPerClip)/1e9)
	}
	fmt.Fprintf(w, "  input   %d segments, short side %d, centre crop %d, mean %v, std %v\n",
		m.Segments, m.ShortSide, m.InputSize, m.Mean, m.Std)
	fmt.Fprintf(w, "  opset   %d\n", m.Opset)
	if fc := m.FeatureCache; fc != nil {
		fmt.Fprintf(w, "  halves  %s (per frame → %v), %s (per clip): the live feature cache\n", fc.Front, fc.FeatureShape, fc.Back)
	}
	shown := m.Labels
	more := ""
	if len(shown) > 8 {
		shown, more = shown[:8], fmt.Sprintf(" … (%d more)", len(m.Labels)-8)
	}
	fmt.Fprintf(w, "  labels  %d: %s%s\n", len(m.Labels), strings.Join(shown, ", "), more)
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
		if d < 0 {
			parts[i] = "N"
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// grouped formats n with thousands separators: 9482039296 → 9,482,039,296.
func grouped(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && c != '-' && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
