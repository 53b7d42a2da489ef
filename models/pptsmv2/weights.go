package pptsmv2

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/actiond/actiond/models/paddle"
)

// Checkpoint layouts: where PaddleVideo puts the backbone's keys (§2.2).
const (
	// LayoutPlain is Recognizer2D's save: "backbone." + key.
	LayoutPlain = "plain"
	// LayoutDML is RecognizerDistillation's save: "Student.0." + key,
	// beside the teacher's "Teacher." keys, which are ignored.
	LayoutDML = "dml"
	// LayoutStudent is the student extracted from a DML save: "0." + key.
	LayoutStudent = "student"
	// LayoutRandom marks the weights of RandomWeights.
	LayoutRandom = "random"
)

// layouts maps each checkpoint layout to its key prefix, in the order
// errors name them.
var layouts = [...]struct{ name, prefix string }{
	{LayoutPlain, "backbone."},
	{LayoutDML, "Student.0."},
	{LayoutStudent, "0."},
}

// teacherPrefix marks the DML teacher's keys.
const teacherPrefix = "Teacher."

// Weights are PP-TSMv2's inference weights: every BatchNorm folded into its
// conv, every rep block's branches folded into one 5×5 depthwise conv.
type Weights struct {
	// Layout is the checkpoint layout the weights came from (LayoutPlain,
	// LayoutDML, LayoutStudent), or LayoutRandom.
	Layout string
	// LTA says whether the lightweight temporal attention is on: the
	// checkpoint has global_attention.fc.weight.
	LTA bool
	// Params are the graph's tensors, in graph order. Each is named after
	// its checkpoint module: "<path>.weight" and "<path>.bias"
	// ("stem.0.weight", "stages.2.0.dw_conv.bias", "fc.weight"); convs are
	// [out, in/groups, k, k], linear weights [in, out] as Paddle stores them.
	Params []Param
}

// Param is one named tensor of Weights.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
}

// check reports whether w has exactly the tensors the graph needs.
func (w *Weights) check() error {
	want := inferenceParams(w.LTA)
	if len(w.Params) != len(want) {
		return fmt.Errorf("weights have %d tensors, want %d (LTA %t)", len(w.Params), len(want), w.LTA)
	}
	for i, k := range want {
		p := w.Params[i]
		if p.Name != k.name || !slices.Equal(p.Shape, k.shape) || len(p.Data) != numel(k.shape) {
			return fmt.Errorf("weights tensor %d is %s %v with %d values, want %s %v",
				i, p.Name, p.Shape, len(p.Data), k.name, k.shape)
		}
	}
	return nil
}

// LoadError lists everything wrong with a checkpoint's backbone tensors.
type LoadError struct {
	// Source names what was loaded ("pptsmv2 weights", or the file).
	Source string
	// Problems are each missing, unexpected, misshapen or non-float32
	// tensor, one line each, with the key as it is in the file.
	Problems []string
}

func (e *LoadError) Error() string {
	n := "problems"
	if len(e.Problems) == 1 {
		n = "problem"
	}
	return fmt.Sprintf("load %s: %d %s: %s", e.Source, len(e.Problems), n, strings.Join(e.Problems, "; "))
}

// LoadWeights checks a PP-TSMv2 training checkpoint and folds it into
// inference weights.
//
// The layout is found from the key prefixes: "backbone.", "Student.0."
// (whose "Teacher." keys are ignored), or "0."; keys of no layout, or of
// several, are an error that names the prefixes and the first keys. LTA is
// on iff global_attention.fc.weight is present. Every backbone key must be
// there with its shape and as float32, and every other key is unexpected:
// otherwise the error is a *LoadError listing every offender. The stale
// dw_conv.weight and .bias of rep blocks are never read: their fold is
// computed from the dw_conv_list branches (§1.4), in float64. The weights
// share no memory with ck.
func LoadWeights(ck *paddle.Checkpoint) (*Weights, error) {
	return loadWeights(ck, "pptsmv2 weights")
}

// LoadWeightsFile reads a .pdparams file and loads it with LoadWeights.
func LoadWeightsFile(path string) (*Weights, error) {
	ck, err := paddle.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load pptsmv2 weights: %w", err) // names the file
	}
	return loadWeights(ck, fmt.Sprintf("pptsmv2 weights from %s", path))
}

func loadWeights(ck *paddle.Checkpoint, source string) (*Weights, error) {
	if ck == nil {
		return nil, fmt.Errorf("load %s: no checkpoint", source)
	}
	layout, prefix, err := detectLayout(ck.Keys)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", source, err)
	}
	_, lta := ck.Tensors[prefix+ltaPath+".weight"]
	expected := checkpointKeys(lta)
	known := make(map[string]bool, len(expected))
	var problems []string
	values := make(map[string][]float32, len(expected))
	for _, k := range expected {
		known[k.name] = true
		if k.role == roleStale {
			continue // present in every training save, but never read
		}
		full := prefix + k.name
		t, ok := ck.Tensors[full]
		switch {
		case !ok:
			problems = append(problems, "missing "+full)
		case !slices.Equal(t.Shape, k.shape):
			problems = append(problems, fmt.Sprintf("%s has shape %v, want %v", full, t.Shape, k.shape))
		case t.DType != "<f4" || len(t.Data) != numel(k.shape):
			problems = append(problems, fmt.Sprintf("%s is %s, want float32 (<f4)", full, t.DType))
		default:
			values[k.name] = t.Data
		}
	}
	for _, name := range ck.Keys {
		rel, ok := strings.CutPrefix(name, prefix)
		switch {
		case ok && known[rel]:
		case layout == LayoutDML && strings.HasPrefix(name, teacherPrefix):
		default:
			problems = append(problems, "unexpected "+name)
		}
	}
	if len(problems) > 0 {
		return nil, &LoadError{Source: source, Problems: problems}
	}
	return &Weights{Layout: layout, LTA: lta, Params: fold(values, lta)}, nil
}

// detectLayout finds the one layout whose prefix the keys use.
func detectLayout(keys []string) (layout, prefix string, err error) {
	var found []string
	for _, l := range layouts {
		for _, k := range keys {
			if strings.HasPrefix(k, l.prefix) {
				found = append(found, l.name)
				layout, prefix = l.name, l.prefix
				break
			}
		}
	}
	switch len(found) {
	case 1:
		return layout, prefix, nil
	case 0:
		var tried []string
		for _, l := range layouts {
			tried = append(tried, strconv.Quote(l.prefix))
		}
		first := keys[:min(len(keys), 5)]
		quoted := make([]string, len(first))
		for i, k := range first {
			quoted[i] = strconv.Quote(k)
		}
		seen := "no keys"
		if len(keys) > 0 {
			seen = fmt.Sprintf("%d keys, the first %s", len(keys), strings.Join(quoted, ", "))
		}
		return "", "", fmt.Errorf("not a PP-TSMv2 checkpoint: no key starts with %s (%s)",
			strings.Join(tried, ", "), seen)
	}
	return "", "", fmt.Errorf("keys of several layouts (%s): want one PP-TSMv2 backbone", strings.Join(found, ", "))
}

// fold turns the checked training tensors (by relative key) into the
// inference tensors, in float64 and then cast once.
func fold(v map[string][]float32, lta bool) []Param {
	folded := make(map[string][]float32)
	convBN := func(c conv) {
		w, b := foldConvBN(c, v)
		folded[c.path+".weight"], folded[c.path+".bias"] = w, b
	}
	convBN(stem0)
	for _, blk := range blocks() {
		if blk.rep {
			dw := blk.dw()
			folded[dw.path+".weight"], folded[dw.path+".bias"] = foldRep(blk, v)
		} else {
			convBN(blk.dw())
		}
		for _, c := range blk.pw() {
			convBN(c)
		}
	}
	params := inferenceParams(lta)
	out := make([]Param, len(params))
	for i, k := range params {
		d, ok := folded[k.name]
		if !ok {
			d = slices.Clone(v[k.name]) // SE convs, last_conv, fc, LTA: as they are
		}
		out[i] = Param{Name: k.name, Shape: k.shape, Data: d}
	}
	return out
}

// bnScale returns, per channel, t = gamma/sqrt(var+eps) and the folded bias
// beta - mean·t of the BatchNorm of c.
func bnScale(c conv, v map[string][]float32) (t, bias []float64) {
	gamma, beta := v[c.path+".bn.weight"], v[c.path+".bn.bias"]
	mean, variance := v[c.path+".bn._mean"], v[c.path+".bn._variance"]
	t, bias = make([]float64, c.cout), make([]float64, c.cout)
	for o := range c.cout {
		t[o] = float64(gamma[o]) / math.Sqrt(float64(variance[o])+bnEpsilon)
		bias[o] = float64(beta[o]) - float64(mean[o])*t[o]
	}
	return t, bias
}

// foldConvBN folds a ConvBN's BatchNorm into its conv (§1.9).
func foldConvBN(c conv, v map[string][]float32) (weight, bias []float32) {
	t, b := bnScale(c, v)
	w := v[c.path+".conv.weight"]
	per := len(w) / c.cout
	weight = make([]float32, len(w))
	for o := range c.cout {
		for i := range per {
			weight[o*per+i] = float32(float64(w[o*per+i]) * t[o])
		}
	}
	return weight, toFloat32(b)
}

// foldRep folds a rep block's branches into one k×k depthwise conv with
// bias (§1.4): each branch's BatchNorm is folded, its kernel zero-padded to
// the centre of k×k, and the kernels and biases summed.
func foldRep(blk block, v map[string][]float32) (weight, bias []float32) {
	k, ch := blk.k, blk.cin
	w := make([]float64, ch*k*k)
	b := make([]float64, ch)
	for _, br := range blk.repBranches() {
		t, bb := bnScale(br, v)
		bw := v[br.path+".conv.weight"]
		off := (k - br.k) / 2
		for c := range ch {
			for y := range br.k {
				for x := range br.k {
					w[(c*k+y+off)*k+x+off] += float64(bw[(c*br.k+y)*br.k+x]) * t[c]
				}
			}
			b[c] += bb[c]
		}
	}
	return toFloat32(w), toFloat32(b)
}

func toFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}
