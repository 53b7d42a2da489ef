// Package motion builds the motion demo model: a small hand-written ONNX
// graph that says whether the bright parts of a clip drift left, right, up or
// down, or stay still. It needs no training, runs in milliseconds, and its
// answer is known for a synthetic scene, so tests and the first-run demo can
// assert real labels through the whole server.
//
// It only writes the graph; it must not run it (that is engine).
package motion

import (
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// Labels are the model's classes, in output order.
var Labels = []string{"moving_left", "moving_right", "moving_up", "moving_down", "still"}

// Graph constants. The clip layout is PP-TSMv2's, so the same ingest path
// feeds both models.
const (
	segments  = 16
	inputSize = 224
	shortSide = 256

	// brightness is the grey level (0..1) above which a pixel counts.
	brightness = 0.75
	// epsilon keeps the centroid of an all-dark frame at 0 instead of NaN.
	epsilon = 1e-3
	// stillBelow is the drift, as a fraction of the frame over the clip,
	// under which a shape is still.
	stillBelow = 0.04
	// gain scales the logits so that softmax is confident.
	gain = 200

	opset = 17
)

// Manifest returns the model's manifest.
func Manifest() models.Manifest {
	return models.Manifest{
		Name: "motion",
		Description: "Reads the horizontal and vertical drift of the bright parts of the picture " +
			"across the clip; needs no training.",
		Labels:      append([]string(nil), Labels...),
		Segments:    segments,
		InputSize:   inputSize,
		ShortSide:   shortSide,
		Mean:        models.ImageNetMean,
		Std:         models.ImageNetStd,
		Output:      models.OutputLogits,
		Untrained:   false, // not learned, but exact for synthetic scenes
		MACsPerClip: macsPerClip(),
	}
}

// macsPerClip counts the multiplies of one clip: the channel weighting, the
// two moment MatMuls, the centroid division, and the two small MatMuls.
func macsPerClip() int64 {
	const s, t = inputSize, segments
	return int64(t*3*s*s + 2*t*s + 2*t + 2*t*2 + 2*len(Labels))
}

// Build returns the motion model with its manifest embedded.
//
// For a clip normalised the ImageNet way, x = (p - mean) / std with p in
// 0..1, the graph computes:
//
//	grey     = mean over RGB of p            (folded: Σ x·std/3 + mean(mean))
//	weight   = Relu(grey - 0.75)             only bright parts count
//	centroid = Σ weight·pos / (Σ weight + ε) per frame, x and y in 0..1 of the frame
//	drift    = least-squares slope of the 16 centroids × 15 (dx, dy)
//	logits   = 200 · [-dx, dx, -dy, dy, 0.04]
//
// y grows downwards, so moving_down is +dy. An all-dark clip has centroids
// of 0, no drift, and so is still.
func Build() (*onnx.Model, error) {
	m := &onnx.Model{
		IRVersion:       onnx.DefaultIRVersion,
		OpsetImports:    []onnx.OpsetID{{Version: opset}},
		ProducerName:    "actiond",
		ProducerVersion: "motion",
		DocString:       "motion demo model: drift of the bright parts of the picture",
		Graph:           graph(),
	}
	if err := onnx.EmbedManifest(m, Manifest()); err != nil {
		return nil, err
	}
	return m, nil
}

// WriteFile builds the model and writes it to path.
func WriteFile(path string) error {
	m, err := Build()
	if err != nil {
		return err
	}
	return m.WriteFile(path)
}

func graph() onnx.Graph {
	mean, std := models.ImageNetMean, models.ImageNetStd
	node := func(op string, inputs []string, output string, attrs ...onnx.Attr) onnx.Node {
		return onnx.Node{Name: output, OpType: op, Inputs: inputs, Outputs: []string{output}, Attrs: attrs}
	}
	in := func(names ...string) []string { return names }
	keep := func(v int64) onnx.Attr { return onnx.AttrInt("keepdims", v) }

	// Pixel centres as a fraction of the frame, as [size, 1] columns.
	pos := make([]float32, inputSize)
	for i := range pos {
		pos[i] = (float32(i) + 0.5) / inputSize
	}
	// slope[t*2+a][a] = 15·(t - 7.5) / Σ(t - 7.5)²: contracting the flattened
	// [16, 2] centroids with it gives the least-squares slope of x and y,
	// times 15 frame steps.
	const tMean = (segments - 1) / 2.0
	var ss float64
	for t := range segments {
		ss += (float64(t) - tMean) * (float64(t) - tMean)
	}
	slope := make([]float32, segments*2*2)
	for t := range segments {
		k := float32((segments - 1) * (float64(t) - tMean) / ss)
		slope[(t*2+0)*2+0] = k
		slope[(t*2+1)*2+1] = k
	}
	// toLogits maps [dx, dy] to gain·[-dx, dx, -dy, dy, 0]; stillBias adds
	// gain·τ to the last.
	toLogits := []float32{
		-gain, gain, 0, 0, 0,
		0, 0, -gain, gain, 0,
	}
	stillBias := []float32{0, 0, 0, 0, gain * stillBelow}

	return onnx.Graph{
		Name: "motion",
		Nodes: []onnx.Node{
			node("Mul", in("clip", "grey_weights"), "weighted"),
			node("ReduceSum", in("weighted", "axis2"), "grey_offset", keep(0)),
			node("Add", in("grey_offset", "grey_bias"), "excess"),
			node("Relu", in("excess"), "weight"),
			node("ReduceSum", in("weight", "axis2"), "col_mass", keep(0)),
			node("ReduceSum", in("weight", "axis3"), "row_mass", keep(0)),
			node("ReduceSum", in("col_mass", "axis2"), "mass", keep(1)),
			node("MatMul", in("col_mass", "positions"), "x_moment"),
			node("MatMul", in("row_mass", "positions"), "y_moment"),
			node("Concat", in("x_moment", "y_moment"), "moments", onnx.AttrInt("axis", 2)),
			node("Add", in("mass", "epsilon"), "mass_eps"),
			node("Div", in("moments", "mass_eps"), "centroids"),
			node("Reshape", in("centroids", "flat_shape"), "centroids_flat"),
			node("MatMul", in("centroids_flat", "slope"), "drift"),
			node("MatMul", in("drift", "to_logits"), "drift_logits"),
			node("Add", in("drift_logits", "still_bias"), "logits"),
		},
		Initializers: []onnx.Tensor{
			onnx.FloatTensor("grey_weights", []int64{1, 1, 3, 1, 1}, []float32{std[0] / 3, std[1] / 3, std[2] / 3}),
			onnx.FloatTensor("grey_bias", nil, []float32{(mean[0]+mean[1]+mean[2])/3 - brightness}),
			onnx.Int64Tensor("axis2", []int64{1}, []int64{2}),
			onnx.Int64Tensor("axis3", []int64{1}, []int64{3}),
			onnx.FloatTensor("positions", []int64{inputSize, 1}, pos),
			onnx.FloatTensor("epsilon", nil, []float32{epsilon}),
			onnx.Int64Tensor("flat_shape", []int64{2}, []int64{-1, segments * 2}),
			onnx.FloatTensor("slope", []int64{segments * 2, 2}, slope),
			onnx.FloatTensor("to_logits", []int64{2, int64(len(Labels))}, toLogits),
			onnx.FloatTensor("still_bias", []int64{int64(len(Labels))}, stillBias),
		},
		Inputs: []onnx.ValueInfo{{Name: "clip", ElemType: onnx.Float, Shape: []onnx.Dim{
			{Param: "N"}, {Value: segments}, {Value: 3}, {Value: inputSize}, {Value: inputSize},
		}}},
		Outputs: []onnx.ValueInfo{{Name: "logits", ElemType: onnx.Float, Shape: []onnx.Dim{
			{Param: "N"}, {Value: int64(len(Labels))},
		}}},
	}
}

// LabelFor returns the label the model gives a scene moving in direction
// ("left", "right", "up", "down" or "still"), or "" for anything else.
func LabelFor(direction string) string {
	switch direction {
	case "left", "right", "up", "down":
		return "moving_" + direction
	case "still":
		return "still"
	}
	return ""
}
