package pptsmv2

import (
	"math"
	"strings"
	"testing"

	"github.com/actiond/actiond/models/onnx"
)

// QuantizeQDQ puts every spatial conv's weights in int8 per output channel
// (each within half a step of the float weight), its bias in int32, and
// its input behind a DequantizeLinear; the SE convs and last_conv stay
// float; a tensor without a calibration range is an error naming it.
func TestQuantizeQDQ(t *testing.T) {
	w := RandomWeights(5, true)
	m, err := Build(w, BuildOptions{InputSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	names := CalibrationTensors(m)
	if names[0] != framesName || len(names) < 20 {
		t.Fatalf("calibration tensors %v", names)
	}
	ranges := map[string]Range{}
	for _, n := range names {
		ranges[n] = Range{Min: -1, Max: 3}
	}
	q, err := QuantizeQDQ(m, ranges)
	if err != nil {
		t.Fatal(err)
	}
	init := map[string]*onnx.Tensor{}
	for i := range q.Graph.Initializers {
		init[q.Graph.Initializers[i].Name] = &q.Graph.Initializers[i]
	}
	producer := map[string]*onnx.Node{}
	for i := range q.Graph.Nodes {
		producer[q.Graph.Nodes[i].Outputs[0]] = &q.Graph.Nodes[i]
	}
	var intConvs, floatConvs int
	for _, n := range q.Graph.Nodes {
		if n.OpType != "Conv" {
			continue
		}
		if strings.Contains(n.Name, ".se.") || n.Name == "last_conv" {
			floatConvs++
			if init[n.Inputs[1]] == nil || init[n.Inputs[1]].DataType != onnx.Float {
				t.Errorf("%s: weight %q is not float", n.Name, n.Inputs[1])
			}
			continue
		}
		intConvs++
		for i, in := range n.Inputs {
			if p := producer[in]; p == nil || p.OpType != "DequantizeLinear" {
				t.Fatalf("%s: input %d %q does not come from a DequantizeLinear", n.Name, i, in)
			}
		}
		wdq := producer[n.Inputs[1]]
		wq, scale, orig := init[wdq.Inputs[0]], init[wdq.Inputs[1]], param(w, n.Name+".weight")
		if wq.DataType != onnx.Int8 || int64(len(scale.Floats)) != wq.Dims[0] || orig == nil {
			t.Fatalf("%s: weights %v %v, scales %d", n.Name, wq.DataType, wq.Dims, len(scale.Floats))
		}
		per := len(orig.Data) / len(scale.Floats)
		for i, v := range orig.Data {
			s := scale.Floats[i/per]
			if d := math.Abs(float64(int8(wq.Raw[i]))*float64(s) - float64(v)); d > float64(s)/2+1e-7 {
				t.Fatalf("%s: weight %d is %v, int8 gives %v", n.Name, i, v, float64(int8(wq.Raw[i]))*float64(s))
			}
		}
		if b := init[producer[n.Inputs[2]].Inputs[0]]; b.DataType != onnx.Int32 {
			t.Errorf("%s: bias %v, want int32", n.Name, b.DataType)
		}
	}
	if intConvs < 20 || floatConvs == 0 {
		t.Errorf("%d integer convs, %d float ones", intConvs, floatConvs)
	}
	delete(ranges, names[3])
	if _, err := QuantizeQDQ(m, ranges); err == nil || !strings.Contains(err.Error(), names[3]) {
		t.Errorf("a missing range: %v", err)
	}
}

func param(w *Weights, name string) *Param {
	for i := range w.Params {
		if w.Params[i].Name == name {
			return &w.Params[i]
		}
	}
	return nil
}
