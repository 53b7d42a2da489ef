package pptsmv2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

// opset 17: ONNX Runtime 1.29 fully optimises it (Conv+bias+Relu fusion,
// constant folding of the shape inputs), and ReduceMean still takes its
// axes as an attribute there (they became an input at 18). Slice and Pad
// take their indices as tensor inputs, which keeps the batch axis free.
const opset = 17

// Graph input and output names. The halves of the split model (BuildSplit)
// meet at FeaturesName: the front's output, the back's input.
const (
	InputName    = "input"
	OutputName   = "logits"
	FeaturesName = "features"
)

// BuildOptions configure Build.
type BuildOptions struct {
	// InputSize is the side of the square crop, in pixels. It defaults to
	// 224 (DefaultInputSize), the size the released weights were trained
	// at; tests use smaller sizes.
	InputSize int
	// Untrained marks the model's manifest as having meaningless labels.
	// Weights from RandomWeights are always marked.
	Untrained bool
	// Name is the manifest's model name. It defaults to "pptsmv2".
	Name string
	// Progress, when set, is called after each step of building (and, in
	// WriteFile, writing): done of total steps, and what the step was.
	Progress func(done, total int, what string)
}

// Build returns the inference graph of PP-TSMv2 with the weights w and its
// manifest embedded: input "input" [N, 16, 3, S, S] float32 (RGB,
// normalised the ImageNet way), output "logits" [N, 400] (no softmax).
//
// Every BatchNorm is folded into its conv's bias and the dropout's ×0.8 is
// a Mul node in front of the segment mean, so "fc.weight" in the graph is
// the checkpoint's. Build does not modify w, and the model shares its
// slices.
func Build(w *Weights, opts BuildOptions) (*onnx.Model, error) {
	opts, err := opts.check(w)
	if err != nil {
		return nil, err
	}
	return build(w, opts, partWhole, nil, progressSteps(opts, 0))
}

// BuildSplit returns the two halves of the graph Build returns, split where
// the 16 frames of a clip first meet (in front of LTA and the temporal
// shift, after stage 2):
//
//   - front: "input" [F, 3, S, S] → "features" [F, 256, S/8, S/8], frame by
//     frame (the stem, stages 1 and 2: about a third of the MACs);
//   - back: "features" [N, 16, 256, S/8, S/8] → "logits" [N, 400] (LTA when
//     w has it, the temporal shift, stages 3 and 4, the head).
//
// The front on a clip's 16 frames followed by the back gives Build's
// logits. Both come from the same builder as Build, and each holds only
// the weights it uses. Their metadata_props carry the model's name, whether
// it is untrained and which half they are (models.PartKey); the manifest
// lives in the whole model, which names its halves (WriteFile).
func BuildSplit(w *Weights, opts BuildOptions) (front, back *onnx.Model, err error) {
	opts, err = opts.check(w)
	if err != nil {
		return nil, nil, err
	}
	if front, err = build(w, opts, partFront, nil, nil); err != nil {
		return nil, nil, err
	}
	if back, err = build(w, opts, partBack, nil, nil); err != nil {
		return nil, nil, err
	}
	return front, back, nil
}

// HalfPaths returns the file names WriteFile gives the halves of the model
// at path: "x.onnx" → "x.front.onnx", "x.back.onnx", in path's directory.
func HalfPaths(path string) (front, back string) {
	base := strings.TrimSuffix(path, ".onnx")
	return base + ".front.onnx", base + ".back.onnx"
}

// WriteFile builds the model (see Build) and writes it to path, and its two
// halves (see BuildSplit) beside it, named by HalfPaths; the model's
// manifest names them (feature_cache), so that a server given path finds
// them. The halves are written first: a model file never names halves that
// are not there.
func WriteFile(w *Weights, opts BuildOptions, path string) error {
	return writeFile(w, opts, path, nil, "")
}

// WriteFileQuantized is WriteFile with the model and its halves int8 in
// QDQ form (QuantizeQDQ over ranges, from CalibrationModel runs of the
// model Build returns); the build fingerprint says int8, so that halves of
// the float model are never taken for its own.
func WriteFileQuantized(w *Weights, opts BuildOptions, path string, ranges map[string]Range) error {
	// The front reads the frames as its input, which the whole model names
	// "frames" after its reshape.
	r := make(map[string]Range, len(ranges)+1)
	for k, v := range ranges {
		r[k] = v
	}
	if v, ok := ranges[framesName]; ok {
		r[InputName] = v
	}
	return writeFile(w, opts, path, func(m *onnx.Model) (*onnx.Model, error) { return QuantizeQDQ(m, r) }, "+int8")
}

// framesName is the whole model's input reshaped to frames [16N, 3, S, S].
const framesName = "frames"

func writeFile(w *Weights, opts BuildOptions, path string, transform func(*onnx.Model) (*onnx.Model, error), idSuffix string) error {
	opts, err := opts.check(w)
	if err != nil {
		return err
	}
	step := progressSteps(opts, 3)
	frontPath, backPath := HalfPaths(path)
	fc := &models.FeatureCache{
		Front:        filepath.Base(frontPath),
		Back:         filepath.Base(backPath),
		FeatureShape: featureShape(opts.InputSize),
		Build:        buildID(w, opts) + idSuffix,
	}
	m, err := build(w, opts, partWhole, fc, step)
	if err != nil {
		return err
	}
	front, back, err := BuildSplit(w, opts)
	if err != nil {
		return err
	}
	if transform != nil {
		for _, p := range []**onnx.Model{&m, &front, &back} {
			if *p, err = transform(*p); err != nil {
				return err
			}
		}
		// The manifest says what the graph became (model info shows it).
		man, err := onnx.ManifestFromModel(m)
		if err != nil {
			return err
		}
		man.Description = m.DocString
		if err := onnx.EmbedManifest(m, man); err != nil {
			return err
		}
	}
	front.SetMetadata(models.BuildKey, fc.Build)
	back.SetMetadata(models.BuildKey, fc.Build)
	for _, f := range []struct {
		m    *onnx.Model
		path string
	}{{front, frontPath}, {back, backPath}, {m, path}} {
		if err := f.m.WriteFile(f.path); err != nil {
			return fmt.Errorf("write pptsmv2 model: %w", err)
		}
		step("write " + f.path)
	}
	return nil
}

// buildID fingerprints a build: FNV-1a 64 of the input size, LTA and every
// parameter's name and values.
func buildID(w *Weights, opts BuildOptions) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "pptsmv2 %d %t\n", opts.InputSize, w.LTA)
	var b [4]byte
	for _, p := range w.Params {
		h.Write([]byte(p.Name))
		for _, v := range p.Data {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			h.Write(b[:])
		}
	}
	return fmt.Sprintf("fnv1a64:%016x", h.Sum64())
}

// buildSteps is the number of Progress calls of Build: the stem conv, the
// 13 blocks, the temporal part, the head, the manifest.
var buildSteps = 1 + len(blocks()) + 3

// progressSteps returns the step function of a build with extra steps
// after Build's.
func progressSteps(opts BuildOptions, extra int) func(string) {
	if opts.Progress == nil {
		return func(string) {}
	}
	done, total := 0, buildSteps+extra
	return func(what string) {
		done++
		opts.Progress(done, total, what)
	}
}

// check fills in opts' defaults and checks them and w.
func (opts BuildOptions) check(w *Weights) (BuildOptions, error) {
	if opts.InputSize == 0 {
		opts.InputSize = DefaultInputSize
	}
	if opts.Name == "" {
		opts.Name = "pptsmv2"
	}
	if opts.InputSize < 1 {
		return opts, fmt.Errorf("build pptsmv2: input size must be ≥ 1, got %d", opts.InputSize)
	}
	if w == nil {
		return opts, errors.New("build pptsmv2: no weights")
	}
	if err := w.check(); err != nil {
		return opts, fmt.Errorf("build pptsmv2: %w", err)
	}
	return opts, nil
}

// part is which graph build makes.
type part int

const (
	partWhole part = iota
	partFront
	partBack
)

func (p part) String() string { return [...]string{"whole", "front", "back"}[p] }

// featureShape is the front's output per frame for crops of side s: the
// input of the first block of stage 3.
func featureShape(s int) []int {
	size := stem0.outSize(s)
	for _, blk := range blocks() {
		if blk.path == temporalBefore {
			return []int{blk.cin, size, size}
		}
		size = blk.dw().outSize(size)
	}
	panic("pptsmv2: no block " + temporalBefore)
}

// build makes the whole graph or one half; fc, for the whole graph, names
// its halves in the manifest. step, when not nil, is called after each
// step of the whole graph.
func build(w *Weights, opts BuildOptions, p part, fc *models.FeatureCache, step func(string)) (*onnx.Model, error) {
	if step == nil {
		step = func(string) {}
	}
	s := opts.InputSize
	b := &graphBuilder{}
	for _, prm := range w.Params {
		b.floats(prm.Name, prm.Shape, prm.Data)
	}
	var x string
	switch p {
	case partWhole:
		x = b.node("Reshape", []string{InputName, b.ints("shape.frames", -1, 3, int64(s), int64(s))}, framesName)
	case partFront:
		x = InputName
	}
	if p != partBack {
		x = b.convReLU(x, stem0)
	}
	size := stem0.outSize(s)
	step(stem0.path)
	split := false // past the split point
	for _, blk := range blocks() {
		if blk.path == temporalBefore {
			split = true
			if p == partFront {
				b.node("Identity", []string{x}, FeaturesName)
				break
			}
			if p == partBack {
				x = FeaturesName
			}
			x = b.temporal(x, blk.cin, size, w.LTA)
			step("temporal shift")
		}
		if p != partBack || split {
			x = b.block(x, blk)
		}
		size = blk.dw().outSize(size)
		step(blk.path)
	}
	if p != partFront {
		b.head(x)
		step("head")
	}
	b.prune()

	feat := featureShape(s)
	frame := []onnx.Dim{{Value: 3}, {Value: int64(s)}, {Value: int64(s)}}
	features := []onnx.Dim{{Value: int64(feat[0])}, {Value: int64(feat[1])}, {Value: int64(feat[2])}}
	logits := onnx.ValueInfo{Name: OutputName, ElemType: onnx.Float, Shape: []onnx.Dim{{Param: "N"}, {Value: NumClasses}}}
	b.g.Name = "pptsmv2"
	switch p {
	case partWhole:
		b.g.Inputs = []onnx.ValueInfo{{Name: InputName, ElemType: onnx.Float,
			Shape: append([]onnx.Dim{{Param: "N"}, {Value: Segments}}, frame...)}}
		b.g.Outputs = []onnx.ValueInfo{logits}
	case partFront:
		b.g.Name = "pptsmv2.front"
		b.g.Inputs = []onnx.ValueInfo{{Name: InputName, ElemType: onnx.Float, Shape: append([]onnx.Dim{{Param: "F"}}, frame...)}}
		b.g.Outputs = []onnx.ValueInfo{{Name: FeaturesName, ElemType: onnx.Float, Shape: append([]onnx.Dim{{Param: "F"}}, features...)}}
	case partBack:
		b.g.Name = "pptsmv2.back"
		b.g.Inputs = []onnx.ValueInfo{{Name: FeaturesName, ElemType: onnx.Float,
			Shape: append([]onnx.Dim{{Param: "N"}, {Value: Segments}}, features...)}}
		b.g.Outputs = []onnx.ValueInfo{logits}
	}
	untrained := opts.Untrained || w.Layout == LayoutRandom
	desc := description(w.LTA, untrained)
	switch p {
	case partFront:
		desc = "Front half (per frame: stem, stages 1-2) of " + desc
	case partBack:
		desc = "Back half (per clip: temporal part, stages 3-4, head) of " + desc
	}
	m := &onnx.Model{
		IRVersion:       onnx.DefaultIRVersion,
		OpsetImports:    []onnx.OpsetID{{Version: opset}},
		ProducerName:    "actiond",
		ProducerVersion: "pptsmv2",
		DocString:       desc,
		Graph:           b.g,
	}
	if p != partWhole {
		m.SetMetadata(models.NameKey, opts.Name)
		m.SetMetadata(models.UntrainedKey, strconv.FormatBool(untrained))
		m.SetMetadata(models.PartKey, p.String())
		return m, nil
	}
	man := models.Manifest{
		Name:         opts.Name,
		Description:  desc,
		Labels:       models.Kinetics400(),
		Segments:     Segments,
		InputSize:    s,
		ShortSide:    shortSide(s),
		Mean:         models.ImageNetMean,
		Std:          models.ImageNetStd,
		Output:       models.OutputLogits,
		Untrained:    untrained,
		MACsPerClip:  Count(s, w.LTA).MACsPerClip,
		FeatureCache: fc,
	}
	if err := onnx.EmbedManifest(m, man); err != nil {
		return nil, fmt.Errorf("build pptsmv2: %w", err)
	}
	step("manifest")
	return m, nil
}

// temporalBefore is the block in front of which LTA and the temporal shift
// run: the first of stage 3.
const temporalBefore = "stages.2.0"

// shortSide is the Scale() target for a crop of size s: 256 for 224, the
// same 8:7 ratio otherwise.
func shortSide(s int) int { return (16*s + 7) / 14 }

func description(lta, untrained bool) string {
	d := "PP-TSMv2 (PaddleVideo): PP-LCNetV2 on each of 16 frames with a temporal shift"
	if lta {
		d += " and lightweight temporal attention"
	}
	d += "; Kinetics-400 action recognition."
	if untrained {
		d += " UNTRAINED: seeded random weights, same shape and cost as the real model, meaningless labels."
	}
	return d
}

// graphBuilder appends nodes and initializers to a graph. Values are named
// after the checkpoint module that computes them ("stages.2.0.dw_conv").
type graphBuilder struct {
	g onnx.Graph
}

// prune drops the initializers no node reads: a half holds only its own
// weights.
func (b *graphBuilder) prune() {
	used := make(map[string]bool)
	for _, n := range b.g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	kept := b.g.Initializers[:0]
	for _, t := range b.g.Initializers {
		if used[t.Name] {
			kept = append(kept, t)
		}
	}
	b.g.Initializers = kept
}

func (b *graphBuilder) node(op string, inputs []string, output string, attrs ...onnx.Attr) string {
	b.g.Nodes = append(b.g.Nodes, onnx.Node{
		Name: output, OpType: op, Inputs: inputs, Outputs: []string{output}, Attrs: attrs,
	})
	return output
}

// ints adds a 1-D int64 Constant node (a shape, indices or pads). Constants
// are nodes, not initializers, so that the initializers are exactly the
// model's parameters and a parameter count reads them off the file.
func (b *graphBuilder) ints(name string, v ...int64) string {
	return b.node("Constant", nil, name, onnx.AttrTensor("value", onnx.Int64Tensor(name, []int64{int64(len(v))}, v)))
}

// scalar adds a float32 scalar Constant node.
func (b *graphBuilder) scalar(name string, v float32) string {
	return b.node("Constant", nil, name, onnx.AttrTensor("value", onnx.FloatTensor(name, nil, []float32{v})))
}

func (b *graphBuilder) floats(name string, shape []int, v []float32) string {
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	b.g.Initializers = append(b.g.Initializers, onnx.FloatTensor(name, dims, v))
	return name
}

// conv adds c with its weight "<path>.weight" and, if bias, "<path>.bias".
func (b *graphBuilder) conv(x string, c conv, bias bool) string {
	in := []string{x, c.path + ".weight"}
	if bias {
		in = append(in, c.path+".bias")
	}
	p := int64(c.pad())
	return b.node("Conv", in, c.path,
		onnx.AttrInts("kernel_shape", int64(c.k), int64(c.k)),
		onnx.AttrInts("strides", int64(c.stride), int64(c.stride)),
		onnx.AttrInts("pads", p, p, p, p),
		onnx.AttrInt("group", int64(c.groups)),
	)
}

func (b *graphBuilder) relu(x string) string { return b.node("Relu", []string{x}, x+".relu") }

// convReLU is a ConvBN with its BatchNorm folded into the bias, or a rep
// block's folded depthwise conv, then ReLU.
func (b *graphBuilder) convReLU(x string, c conv) string { return b.relu(b.conv(x, c, true)) }

// block is one depthwise-separable block (§1.2).
func (b *graphBuilder) block(x string, blk block) string {
	y := b.convReLU(x, blk.dw())
	if blk.se {
		y = b.se(y, blk)
	}
	for _, c := range blk.pw() {
		y = b.convReLU(y, c)
	}
	if blk.hasShortcut() {
		// After the pointwise ReLU, with no activation after the add.
		y = b.node("Add", []string{y, x}, blk.path+".shortcut")
	}
	return y
}

// se gates the channels of x by sigmoid(conv2(relu(conv1(pool(x))))).
func (b *graphBuilder) se(x string, blk block) string {
	c := blk.seConvs()
	p := b.node("GlobalAveragePool", []string{x}, blk.path+".se.avg_pool")
	h := b.convReLU(p, c[0])
	g := b.node("Sigmoid", []string{b.conv(h, c[1], true)}, blk.path+".se.sigmoid")
	return b.node("Mul", []string{x, g}, blk.path+".se")
}

// temporal runs LTA (if on) and the temporal shift on x [16N, c, h, h],
// viewed as clips [N, 16, c, h, h].
func (b *graphBuilder) temporal(x string, c, h int, lta bool) string {
	x5 := b.node("Reshape", []string{x, b.ints("shape.clips", -1, Segments, int64(c), int64(h), int64(h))}, "clips")
	if lta {
		x5 = b.lta(x5)
	}
	y5 := b.temporalShift(x5, c)
	return b.node("Reshape", []string{y5, b.ints("shape.shifted_frames", -1, int64(c), int64(h), int64(h))}, "temporal_shift.frames")
}

// lta is the lightweight temporal attention (§1.5) on clips x5 [N, 16, C,
// H, W]: each frame is scaled by sigmoid(m·W + b), m [N, 16] being the
// frames' mean activations and W [16, 16] stored [in, out].
func (b *graphBuilder) lta(x5 string) string {
	m := b.node("ReduceMean", []string{x5}, "global_attention.mean",
		onnx.AttrInts("axes", 2, 3, 4), onnx.AttrInt("keepdims", 0))
	z := b.node("MatMul", []string{m, ltaPath + ".weight"}, "global_attention.fc.matmul")
	z = b.node("Add", []string{z, ltaPath + ".bias"}, ltaPath)
	a := b.node("Sigmoid", []string{z}, "global_attention.sigmoid")
	a = b.node("Reshape", []string{a, b.ints("shape.attention", -1, Segments, 1, 1, 1)}, "global_attention.gate")
	return b.node("Mul", []string{x5, a}, "global_attention")
}

// temporalShift is Paddle's temporal_shift with shift_ratio 1/16 on clips
// x5 [N, 16, c, H, W] (§1.6): channels [0, c/16) take frame t-1's values,
// [c/16, c/8) frame t+1's, the rest stay; the clip ends are zero-filled.
// Pad rather than a Concat with zeros keeps the batch axis free, and the
// shift never crosses clips because it works on the T axis of each clip.
func (b *graphBuilder) temporalShift(x5 string, c int) string {
	c1, c2 := int64(c/shiftDiv), int64(2*c/shiftDiv)
	const t = Segments
	later := b.node("Slice", []string{x5,
		b.ints("temporal_shift.later.starts", 0, 0),
		b.ints("temporal_shift.later.ends", t-1, c1),
		b.ints("temporal_shift.later.axes", 1, 2),
	}, "temporal_shift.later.slice")
	// pads: begin of axes 0..4, then end of axes 0..4; one frame in front.
	later = b.node("Pad", []string{later, b.ints("temporal_shift.later.pads", 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)},
		"temporal_shift.later")
	earlier := b.node("Slice", []string{x5,
		b.ints("temporal_shift.earlier.starts", 1, c1),
		b.ints("temporal_shift.earlier.ends", t, c2),
		b.ints("temporal_shift.earlier.axes", 1, 2),
	}, "temporal_shift.earlier.slice")
	earlier = b.node("Pad", []string{earlier, b.ints("temporal_shift.earlier.pads", 0, 0, 0, 0, 0, 0, 1, 0, 0, 0)},
		"temporal_shift.earlier")
	kept := b.node("Slice", []string{x5,
		b.ints("temporal_shift.kept.starts", c2),
		b.ints("temporal_shift.kept.ends", int64(c)),
		b.ints("temporal_shift.kept.axes", 2),
	}, "temporal_shift.kept")
	return b.node("Concat", []string{later, earlier, kept}, "temporal_shift", onnx.AttrInt("axis", 2))
}

// head is the tail (§1.7): pool, last_conv (no bias), ReLU, ×0.8 (the
// dropout at inference), the mean over the 16 frames, fc.
func (b *graphBuilder) head(x string) {
	p := b.node("GlobalAveragePool", []string{x}, "avg_pool")
	h := b.relu(b.conv(p, lastConv, false))
	h = b.node("Mul", []string{h, b.scalar("dropout.scale", dropoutScale)}, "dropout")
	h = b.node("Reshape", []string{h, b.ints("shape.segments", -1, Segments, lastChannels)}, "segments")
	m := b.node("ReduceMean", []string{h}, "segment_mean", onnx.AttrInts("axes", 1), onnx.AttrInt("keepdims", 0))
	l := b.node("MatMul", []string{m, "fc.weight"}, "fc.matmul")
	b.node("Add", []string{l, "fc.bias"}, OutputName)
}
