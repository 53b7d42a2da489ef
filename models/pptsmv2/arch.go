package pptsmv2

import "strconv"

// Model constants (PPTSMV2.md §1.1, §1.6, §1.7).
const (
	// Segments is the number of frames per clip; the backbone's reshapes
	// hard-wire it.
	Segments = 16
	// NumClasses is the number of Kinetics-400 classes.
	NumClasses = 400
	// DefaultInputSize is the square crop the released model was trained on.
	DefaultInputSize = 224

	// lastChannels is the width of last_conv, the input of fc.
	lastChannels = 1280
	// dropoutScale is Dropout(p=0.2, mode="downscale_in_infer") at
	// inference: the activations are multiplied by 1-p.
	dropoutScale = 0.8
	// bnEpsilon is Paddle's BatchNorm2D default.
	bnEpsilon = 1e-5
	// shiftDiv is 1/shift_ratio of the temporal shift: C/16 channels move
	// each way.
	shiftDiv = 16
	// seReduction is the squeeze ratio of the SE layers.
	seReduction = 4
)

// conv is one Conv2D of the network: symmetric zero padding (k-1)/2, weight
// [cout, cin/groups, k, k].
type conv struct {
	// path is the module's checkpoint sub-path ("stages.0.0.dw_conv").
	path                         string
	cin, cout, k, stride, groups int
}

func (c conv) pad() int { return (c.k - 1) / 2 }

func (c conv) weightShape() []int { return []int{c.cout, c.cin / c.groups, c.k, c.k} }

// outSize is the output height (or width) for an input of size in.
func (c conv) outSize(in int) int { return (in+2*c.pad()-c.k)/c.stride + 1 }

// macs is the multiply-accumulate count for an input of size in×in.
func (c conv) macs(in int) int64 {
	o := int64(c.outSize(in))
	return o * o * int64(c.cout) * int64(c.cin/c.groups*c.k*c.k)
}

// stageConfig is one row of NET_CONFIG (pptsm_v2.py L38-44): block i of the
// stage maps cin = c (i = 0) or 2c (i > 0) to 2c, with stride 2 in block 0.
type stageConfig struct {
	name                       string
	c, k, depth                int
	splitPW, rep, se, shortcut bool
}

// netConfig is PP-LCNetV2-base at scale 1.0 with depths [2, 2, 6, 2];
// make_divisible leaves every width unchanged at that scale.
var netConfig = [...]stageConfig{
	{name: "stage1", c: 64, k: 3, depth: 2},
	{name: "stage2", c: 128, k: 3, depth: 2},
	{name: "stage3", c: 256, k: 5, depth: 6, splitPW: true, rep: true, se: true},
	{name: "stage4", c: 512, k: 5, depth: 2, rep: true, shortcut: true},
}

// The stem: stem.0 is a plain ConvBN, stem.1 a depthwise-separable block.
var (
	stem0 = conv{path: "stem.0", cin: 3, cout: 32, k: 3, stride: 2, groups: 1}
	stem1 = block{path: "stem.1", stage: "stem", cin: 32, cout: 64, stride: 1, k: 3}
)

// block is one RepDepthwiseSeparable block (pptsm_v2.py L152-277).
type block struct {
	// path is the checkpoint sub-path ("stem.1", "stages.2.0").
	path, stage                string
	cin, cout, stride, k       int
	rep, se, splitPW, shortcut bool
}

// blocks lists every block of the network in forward order, stem.1 first.
func blocks() []block {
	out := []block{stem1}
	for s, st := range netConfig {
		for i := range st.depth {
			b := block{
				path: "stages." + strconv.Itoa(s) + "." + strconv.Itoa(i), stage: st.name,
				cin: 2 * st.c, cout: 2 * st.c, stride: 1, k: st.k,
				rep: st.rep, se: st.se, splitPW: st.splitPW, shortcut: st.shortcut,
			}
			if i == 0 {
				b.cin, b.stride = st.c, 2
			}
			out = append(out, b)
		}
	}
	return out
}

// dw is the depthwise conv as inference runs it: the ConvBN "dw_conv", or
// for rep blocks the folded k×k conv with bias that rep() leaves in dw_conv.
func (b block) dw() conv {
	return conv{path: b.path + ".dw_conv", cin: b.cin, cout: b.cin, k: b.k, stride: b.stride, groups: b.cin}
}

// repBranches are the ConvBN branches of a rep block's training form:
// kernel sizes k, k-2, ..., 1, without the 1×1 when the stride is not 1.
func (b block) repBranches() []conv {
	var out []conv
	for j, k := 0, b.k; k >= 1; j, k = j+1, k-2 {
		if k == 1 && b.stride != 1 {
			break
		}
		out = append(out, conv{
			path: b.path + ".dw_conv_list." + strconv.Itoa(j),
			cin:  b.cin, cout: b.cin, k: k, stride: b.stride, groups: b.cin,
		})
	}
	return out
}

// seConvs are the two 1×1 convs (with bias) of the SE layer, which works on
// the pooled depthwise output.
func (b block) seConvs() [2]conv {
	mid := b.cin / seReduction
	return [2]conv{
		{path: b.path + ".se.conv1", cin: b.cin, cout: mid, k: 1, stride: 1, groups: 1},
		{path: b.path + ".se.conv2", cin: mid, cout: b.cin, k: 1, stride: 1, groups: 1},
	}
}

// pw are the pointwise ConvBNs: one, or two through cout/2 when split.
func (b block) pw() []conv {
	if b.splitPW {
		mid := b.cout / 2
		return []conv{
			{path: b.path + ".pw_conv_1", cin: b.cin, cout: mid, k: 1, stride: 1, groups: 1},
			{path: b.path + ".pw_conv_2", cin: mid, cout: b.cout, k: 1, stride: 1, groups: 1},
		}
	}
	return []conv{{path: b.path + ".pw_conv", cin: b.cin, cout: b.cout, k: 1, stride: 1, groups: 1}}
}

// hasShortcut is Paddle's condition (L170): the flag alone is not enough.
func (b block) hasShortcut() bool { return b.shortcut && b.stride == 1 && b.cin == b.cout }

// The head.
var lastConv = conv{path: "last_conv", cin: 1024, cout: lastChannels, k: 1, stride: 1, groups: 1}

// key is one checkpoint entry: a relative key, its shape, and what it is.
type key struct {
	name  string
	shape []int
	role  role
	// branches is, for a rep branch's conv weight, how many branches are
	// summed (RandomCheckpoint scales them so that the sum keeps the
	// activations' size).
	branches int
}

// role says what a checkpoint tensor is, for the loader and for
// RandomCheckpoint.
type role uint8

const (
	roleWeight   role = iota // conv or linear weight
	roleBias                 // conv or linear bias
	roleGateBias             // SE conv2 bias, in front of a sigmoid gate
	roleGamma                // BatchNorm weight
	roleBeta                 // BatchNorm bias
	roleMean                 // BatchNorm running mean
	roleVariance             // BatchNorm running variance
	roleStale                // a rep block's dw_conv: never read (§1.4)
)

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// convBNKeys are a ConvBN's five keys, in state-dict order.
func convBNKeys(c conv) []key {
	ch := []int{c.cout}
	return []key{
		{name: c.path + ".conv.weight", shape: c.weightShape(), role: roleWeight},
		{name: c.path + ".bn.weight", shape: ch, role: roleGamma},
		{name: c.path + ".bn.bias", shape: ch, role: roleBeta},
		{name: c.path + ".bn._mean", shape: ch, role: roleMean},
		{name: c.path + ".bn._variance", shape: ch, role: roleVariance},
	}
}

// convBiasKeys are the keys of a Conv2D or Linear with bias.
func convBiasKeys(path string, w []int, out int, bias role) []key {
	return []key{
		{name: path + ".weight", shape: w, role: roleWeight},
		{name: path + ".bias", shape: []int{out}, role: bias},
	}
}

// ltaPath is LTA's Linear(16, 16); LTA is on iff its weight is present.
const ltaPath = "global_attention.fc"

// checkpointKeys lists the backbone's training state dict (Appendix A), in
// the order Paddle writes it: per block the depthwise part (rep branches,
// then the stale dw_conv), SE, pointwise; then the head; LTA last.
func checkpointKeys(lta bool) []key {
	ks := convBNKeys(stem0)
	for _, b := range blocks() {
		if b.rep {
			brs := b.repBranches()
			for _, br := range brs {
				bk := convBNKeys(br)
				bk[0].branches = len(brs)
				ks = append(ks, bk...)
			}
			dw := b.dw()
			ks = append(ks,
				key{name: dw.path + ".weight", shape: dw.weightShape(), role: roleStale},
				key{name: dw.path + ".bias", shape: []int{dw.cout}, role: roleStale})
		} else {
			ks = append(ks, convBNKeys(b.dw())...)
		}
		if b.se {
			se := b.seConvs()
			ks = append(ks, convBiasKeys(se[0].path, se[0].weightShape(), se[0].cout, roleBias)...)
			ks = append(ks, convBiasKeys(se[1].path, se[1].weightShape(), se[1].cout, roleGateBias)...)
		}
		for _, c := range b.pw() {
			ks = append(ks, convBNKeys(c)...)
		}
	}
	return append(ks, headKeys(lta)...)
}

// headKeys are last_conv (no bias), fc, and the LTA linear, which Paddle
// registers last. Linear weights are [in, out].
func headKeys(lta bool) []key {
	ks := []key{{name: lastConv.path + ".weight", shape: lastConv.weightShape(), role: roleWeight}}
	ks = append(ks, convBiasKeys("fc", []int{lastChannels, NumClasses}, NumClasses, roleBias)...)
	if lta {
		ks = append(ks, convBiasKeys(ltaPath, []int{Segments, Segments}, Segments, roleBias)...)
	}
	return ks
}

// inferenceParams lists the tensors of the inference graph, in graph order.
// Each is named after the module it belongs to: "<path>.weight" and
// "<path>.bias", where for a ConvBN the bias is BatchNorm folded into the
// conv, and for a rep block's dw_conv both are the fold of its branches.
func inferenceParams(lta bool) []key {
	withBias := func(c conv) []key {
		return convBiasKeys(c.path, c.weightShape(), c.cout, roleBias)
	}
	ks := withBias(stem0)
	for _, b := range blocks() {
		ks = append(ks, withBias(b.dw())...)
		if b.se {
			for _, c := range b.seConvs() {
				ks = append(ks, withBias(c)...)
			}
		}
		for _, c := range b.pw() {
			ks = append(ks, withBias(c)...)
		}
	}
	return append(ks, headKeys(lta)...)
}
