// Package slowmodel builds, for tests, a model that answers as the motion
// model does but takes as long as asked: after the motion graph, a chain of
// matrix products over the clip whose result is added to the logits times
// zero. Tests of what happens while the model is busy (overload, shutdown
// interrupting a run) need a run that lasts, on any machine, and a chain of
// many nodes, because ONNX Runtime checks its terminate flag between nodes.
//
// It only writes the graph; it must not run it (that is engine).
package slowmodel

import (
	"fmt"

	"github.com/actiond/actiond/models/motion"
	"github.com/actiond/actiond/models/onnx"
)

// width is the side of the square matrix each step multiplies by: the clip
// [N,16,3,224,224] is seen as [N,4704,512], so a step is 2.5 GFLOP per
// clip, a few tens of milliseconds on one core.
const width = 512

// Build returns the motion model made slow by steps matrix products per
// clip.
func Build(steps int) (*onnx.Model, error) {
	if steps < 1 {
		return nil, fmt.Errorf("slow model: steps must be at least 1, got %d", steps)
	}
	m, err := motion.Build()
	if err != nil {
		return nil, err
	}
	g := &m.Graph
	// The motion graph's last node writes "logits": rename it, and add
	// the chain's zero to it.
	last := &g.Nodes[len(g.Nodes)-1]
	if last.Outputs[0] != "logits" {
		return nil, fmt.Errorf("slow model: the motion graph's last node writes %q, want logits", last.Outputs[0])
	}
	last.Name, last.Outputs[0] = "motion_logits", "motion_logits"
	node := func(op string, inputs []string, output string, attrs ...onnx.Attr) onnx.Node {
		return onnx.Node{Name: output, OpType: op, Inputs: inputs, Outputs: []string{output}, Attrs: attrs}
	}
	eye := make([]float32, width*width)
	for i := range width {
		eye[i*width+i] = 1
	}
	g.Nodes = append(g.Nodes, node("Reshape", []string{"clip", "slow_shape"}, "slow_0"))
	for i := range steps {
		g.Nodes = append(g.Nodes, node("MatMul", []string{fmt.Sprintf("slow_%d", i), "slow_eye"}, fmt.Sprintf("slow_%d", i+1)))
	}
	g.Nodes = append(g.Nodes,
		node("ReduceMean", []string{fmt.Sprintf("slow_%d", steps)}, "slow_mean", onnx.AttrInts("axes", 1, 2), onnx.AttrInt("keepdims", 0)),
		node("Mul", []string{"slow_mean", "slow_zero"}, "slow_nothing"),
		node("Unsqueeze", []string{"slow_nothing", "slow_axis"}, "slow_column"),
		node("Add", []string{"motion_logits", "slow_column"}, "logits"),
	)
	g.Initializers = append(g.Initializers,
		onnx.Int64Tensor("slow_shape", []int64{3}, []int64{0, -1, width}),
		onnx.FloatTensor("slow_eye", []int64{width, width}, eye),
		onnx.FloatTensor("slow_zero", nil, []float32{0}),
		onnx.Int64Tensor("slow_axis", []int64{1}, []int64{1}),
	)
	man := motion.Manifest()
	man.Name = "slow"
	man.Description = fmt.Sprintf("The motion model, slowed down by %d matrix products per clip (for tests).", steps)
	m.Metadata = nil
	if err := onnx.EmbedManifest(m, man); err != nil {
		return nil, err
	}
	return m, nil
}

// WriteFile builds the model and writes it to path.
func WriteFile(path string, steps int) error {
	m, err := Build(steps)
	if err != nil {
		return err
	}
	return m.WriteFile(path)
}
