package pptsmv2

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/actiond/actiond/models/onnx"
)

// int8 quantisation in the QDQ format: the graph stays float32 at its
// edges, and around every spatial conv (the stem, every depthwise and
// pointwise conv; not the SE convs on pooled 1×1 maps nor last_conv, which
// are a rounding error of the cost) QuantizeLinear/DequantizeLinear pairs
// say where values are int8: weights per output channel (symmetric int8,
// axis 0), biases int32 at input scale × weight scale, activations per
// tensor (asymmetric uint8, from ranges measured on calibration clips).
// ONNX Runtime fuses each DQ → Conv (→ Relu) → Q group into one integer
// conv (QLinearConv, the Relu absorbed by a zero point at the range's
// floor) and DQ, DQ → Add → Q into QLinearAdd.

// CalibrationOutput is the output of a calibration graph: for each tensor
// CalibrationTensors names, its minimum then its maximum over the run, then
// the run's logits (the float model's answer, to compare the int8 one with).
const CalibrationOutput = "calibration"

// Range is the span of values a tensor took over the calibration clips.
type Range struct{ Min, Max float32 }

// quantConv reports whether n is a conv that QuantizeQDQ makes integer:
// one with a bias (BatchNorm folded) outside the SE layers.
func quantConv(n *onnx.Node) bool {
	return n.OpType == "Conv" && len(n.Inputs) == 3 && !strings.Contains(n.Name, ".se.")
}

// CalibrationTensors returns the activations of m that QuantizeQDQ
// quantises: the input of every integer conv and its output (after its
// Relu), each once, in graph order.
func CalibrationTensors(m *onnx.Model) []string {
	consumers := consumersOf(&m.Graph)
	var names []string
	add := func(t string) {
		if !slices.Contains(names, t) {
			names = append(names, t)
		}
	}
	for i := range m.Graph.Nodes {
		n := &m.Graph.Nodes[i]
		if !quantConv(n) {
			continue
		}
		add(n.Inputs[0])
		out := n.Outputs[0]
		if c := consumers[out]; len(c) == 1 && m.Graph.Nodes[c[0]].OpType == "Relu" {
			out = m.Graph.Nodes[c[0]].Outputs[0]
		}
		add(out)
	}
	return names
}

// CalibrationModel returns the whole model m with one output instead of
// its own: CalibrationOutput, [2K + 400] float32, the minimum and maximum
// of each of the K tensors CalibrationTensors names over one run of one
// clip (batch 1), then its logits. The input is m's. It shares m's
// initializers.
func CalibrationModel(m *onnx.Model) (*onnx.Model, []string) {
	names := CalibrationTensors(m)
	c := *m
	c.Metadata = nil
	g := m.Graph
	g.Nodes = slices.Clone(g.Nodes)
	b := &graphBuilder{g: g}
	flat := b.ints("calibration.flat", -1)
	var parts []string
	for _, t := range names {
		f := b.node("Reshape", []string{t, flat}, t+".calibration.flat")
		parts = append(parts,
			b.node("ReduceMin", []string{f}, t+".calibration.min", onnx.AttrInts("axes", 0), onnx.AttrInt("keepdims", 1)),
			b.node("ReduceMax", []string{f}, t+".calibration.max", onnx.AttrInts("axes", 0), onnx.AttrInt("keepdims", 1)))
	}
	parts = append(parts, b.node("Reshape", []string{OutputName, flat}, "calibration.logits"))
	b.node("Concat", parts, CalibrationOutput, onnx.AttrInt("axis", 0))
	b.g.Outputs = []onnx.ValueInfo{{Name: CalibrationOutput, ElemType: onnx.Float, Shape: []onnx.Dim{{Value: int64(2*len(names) + NumClasses)}}}}
	c.Graph = b.g
	return &c, names
}

// QuantizeQDQ returns m (the whole model or a half) with its integer convs
// in QDQ form, the activations quantised over ranges (by tensor name, from
// CalibrationModel runs of the whole model: the halves share its names). A
// tensor without a range is an error. m is not modified.
func QuantizeQDQ(m *onnx.Model, ranges map[string]Range) (*onnx.Model, error) {
	q := *m
	q.Metadata = slices.Clone(m.Metadata)
	g := m.Graph
	g.Nodes = nil
	g.Initializers = nil
	init := make(map[string]*onnx.Tensor, len(m.Graph.Initializers))
	for i := range m.Graph.Initializers {
		init[m.Graph.Initializers[i].Name] = &m.Graph.Initializers[i]
	}
	targets := CalibrationTensors(m)
	type actQ struct {
		scale float32
		zp    uint8
	}
	acts := make(map[string]actQ, len(targets))
	for _, t := range targets {
		r, ok := ranges[t]
		if !ok {
			return nil, fmt.Errorf("quantise pptsmv2: no calibration range for %q", t)
		}
		s, zp := uint8Params(r)
		acts[t] = actQ{s, zp}
	}
	b := &graphBuilder{g: g}
	usedInit := map[string]bool{}
	// Each quantised tensor gets one QuantizeLinear, after the node that
	// makes it (or first, for a graph input), and each reader of it its
	// own DequantizeLinear, as ONNX Runtime's fusions want them.
	quantised := map[string]string{} // tensor → its QuantizeLinear output
	quantise := func(t string) {
		a := acts[t]
		s := b.scalar(t+".q.scale", a.scale)
		zp := b.constTensor(onnx.Tensor{Name: t + ".q.zero_point", DataType: onnx.Uint8, Raw: []byte{a.zp}})
		quantised[t] = b.node("QuantizeLinear", []string{t, s, zp}, t+".q")
	}
	dequantise := func(t, reader string) string {
		a := acts[t]
		s := b.scalar(t+".dq."+reader+".scale", a.scale)
		zp := b.constTensor(onnx.Tensor{Name: t + ".dq." + reader + ".zero_point", DataType: onnx.Uint8, Raw: []byte{a.zp}})
		return b.node("DequantizeLinear", []string{quantised[t], s, zp}, t+".dq."+reader)
	}
	for _, in := range m.Graph.Inputs {
		if _, ok := acts[in.Name]; ok {
			quantise(in.Name)
		}
	}
	for i := range m.Graph.Nodes {
		n := m.Graph.Nodes[i]
		n.Inputs = slices.Clone(n.Inputs)
		for j, in := range n.Inputs {
			if _, ok := quantised[in]; ok {
				n.Inputs[j] = dequantise(in, n.Name)
			}
		}
		if quantConv(&m.Graph.Nodes[i]) {
			x := m.Graph.Nodes[i].Inputs[0]
			w, bias := init[n.Inputs[1]], init[n.Inputs[2]]
			if w == nil || bias == nil || len(w.Dims) != 4 {
				return nil, fmt.Errorf("quantise pptsmv2: conv %q has no weight or bias initializer", n.Name)
			}
			n.Inputs[1], n.Inputs[2] = b.quantWeights(w, bias, acts[x].scale)
			usedInit[w.Name], usedInit[bias.Name] = true, true
		}
		b.g.Nodes = append(b.g.Nodes, n)
		for _, out := range n.Outputs {
			if _, ok := acts[out]; ok {
				quantise(out)
			}
		}
	}
	for _, t := range m.Graph.Initializers {
		if !usedInit[t.Name] {
			b.g.Initializers = append(b.g.Initializers, t)
		}
	}
	for t := range quantised {
		if slices.ContainsFunc(m.Graph.Outputs, func(o onnx.ValueInfo) bool { return o.Name == t }) {
			return nil, fmt.Errorf("quantise pptsmv2: %q is a graph output", t)
		}
	}
	b.prune()
	q.Graph = b.g
	q.DocString = m.DocString + " int8: QDQ, per-channel int8 weights, uint8 activations calibrated on clips."
	return &q, nil
}

// uint8Params returns the scale and zero point that map r, widened to
// contain 0, onto 0..255.
func uint8Params(r Range) (float32, uint8) {
	lo, hi := min(float64(r.Min), 0), max(float64(r.Max), 0)
	if hi-lo < 1e-8 {
		hi = lo + 1e-8
	}
	scale := (hi - lo) / 255
	zp := math.Round(-lo / scale)
	return float32(scale), uint8(min(max(zp, 0), 255))
}

// quantWeights adds the int8 weights (symmetric, per output channel) and
// int32 bias of a conv whose input has scale xScale, each behind its
// DequantizeLinear, and returns the two DQ outputs.
func (b *graphBuilder) quantWeights(w, bias *onnx.Tensor, xScale float32) (string, string) {
	cout := int(w.Dims[0])
	per := len(w.Floats) / cout
	wq := make([]byte, len(w.Floats))
	wScale := make([]float32, cout)
	bScale := make([]float32, cout)
	bq := make([]byte, 4*cout)
	for c := range cout {
		row := w.Floats[c*per : (c+1)*per]
		m := 0.0
		for _, v := range row {
			m = max(m, math.Abs(float64(v)))
		}
		s := m / 127
		if s == 0 {
			s = 1
		}
		for i, v := range row {
			wq[c*per+i] = byte(int8(min(max(math.Round(float64(v)/s), -127), 127)))
		}
		wScale[c] = float32(s)
		bs := float64(xScale) * float64(float32(s))
		bScale[c] = float32(bs)
		binary.LittleEndian.PutUint32(bq[4*c:], uint32(int32(min(max(math.Round(float64(bias.Floats[c])/bs), math.MinInt32), math.MaxInt32))))
	}
	ch := []int64{int64(cout)}
	axis := onnx.AttrInt("axis", 0)
	b.g.Initializers = append(b.g.Initializers,
		onnx.Tensor{Name: w.Name + ".int8", Dims: w.Dims, DataType: onnx.Int8, Raw: wq},
		onnx.FloatTensor(w.Name+".scale", ch, wScale),
		onnx.Tensor{Name: w.Name + ".zero_point", Dims: ch, DataType: onnx.Int8, Raw: make([]byte, cout)},
		onnx.Tensor{Name: bias.Name + ".int32", Dims: ch, DataType: onnx.Int32, Raw: bq},
		onnx.FloatTensor(bias.Name+".scale", ch, bScale),
		onnx.Tensor{Name: bias.Name + ".zero_point", Dims: ch, DataType: onnx.Int32, Raw: make([]byte, 4*cout)},
	)
	wdq := b.node("DequantizeLinear", []string{w.Name + ".int8", w.Name + ".scale", w.Name + ".zero_point"}, w.Name+".dq", axis)
	bdq := b.node("DequantizeLinear", []string{bias.Name + ".int32", bias.Name + ".scale", bias.Name + ".zero_point"}, bias.Name+".dq", axis)
	return wdq, bdq
}

// constTensor adds a Constant node holding t.
func (b *graphBuilder) constTensor(t onnx.Tensor) string {
	return b.node("Constant", nil, t.Name, onnx.AttrTensor("value", t))
}

// consumersOf returns, for each value, the indices of the nodes that read it.
func consumersOf(g *onnx.Graph) map[string][]int {
	c := map[string][]int{}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			c[in] = append(c[in], i)
		}
	}
	return c
}
