package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Options configure a Session.
type Options struct {
	// Threads is the number of intra-op threads. It defaults to the number of
	// cores.
	Threads int
	// NoSpin stops the intra-op threads from busy-waiting for work between
	// and after runs. ONNX Runtime spins by default, which is fastest for a
	// process that only infers; a server that also decodes video on the
	// same cores loses that CPU to the spinning, so the server sets it.
	NoSpin bool
}

// Tensor describes one model input or output. A dimension of -1 is free
// (symbolic in the model, such as the batch axis N).
type Tensor struct {
	Name  string
	Shape []int64
	Type  string
}

func (t Tensor) String() string { return t.Name + " " + formatShape(t.Shape) }

// Session runs one ONNX model. Run is safe for concurrent use; calls are
// serialised because the input and output tensors are reused between runs.
type Session struct {
	path    string
	input   Tensor
	output  Tensor
	threads int
	// metadata is the model's metadata_props, as ONNX Runtime read them.
	metadata map[string]string

	mu      sync.Mutex
	sess    *ort.DynamicAdvancedSession
	buffers map[string]*runBuffers // by input shape
}

type runBuffers struct {
	in  *ort.Tensor[float32]
	out *ort.Tensor[float32]
}

// Open loads the model at path. It needs Init to have succeeded; when Init
// was not called yet, Open calls Init("").
func Open(path string, opts Options) (*Session, error) {
	if err := Init(""); err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("open model %q: %v", name, err)
	}
	if len(ins) != 1 || len(outs) < 1 {
		return nil, fmt.Errorf("open model %q: need exactly one input and at least one output, have %d inputs and %d outputs", name, len(ins), len(outs))
	}
	in, out := toTensor(ins[0]), toTensor(outs[0])
	for _, t := range []Tensor{in, out} {
		if t.Type != "float32" {
			return nil, fmt.Errorf("open model %q: %s is %s, only float32 tensors are supported", name, t.Name, t.Type)
		}
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("open model %q: %v", name, err)
	}
	defer so.Destroy()
	for _, set := range []func() error{
		func() error { return so.SetIntraOpNumThreads(threads) },
		func() error { return so.SetInterOpNumThreads(1) },
		func() error { return so.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll) },
		func() error {
			if !opts.NoSpin {
				return nil
			}
			return so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
		},
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("open model %q: session options: %v", name, err)
		}
	}
	sess, err := ort.NewDynamicAdvancedSession(path, []string{in.Name}, []string{out.Name}, so)
	if err != nil {
		return nil, fmt.Errorf("open model %q: %v", name, err)
	}
	metadata, err := readMetadata(sess)
	if err != nil {
		sess.Destroy()
		return nil, fmt.Errorf("open model %q: read metadata_props: %v", name, err)
	}
	return &Session{
		path: path, input: in, output: out, threads: threads, metadata: metadata,
		sess: sess, buffers: map[string]*runBuffers{},
	}, nil
}

// readMetadata returns the model's metadata_props.
func readMetadata(sess *ort.DynamicAdvancedSession) (map[string]string, error) {
	md, err := sess.GetModelMetadata()
	if err != nil {
		return nil, err
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, err
	}
	props := make(map[string]string, len(keys))
	for _, k := range keys {
		v, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, err
		}
		if ok {
			props[k] = v
		}
	}
	return props, nil
}

func toTensor(info ort.InputOutputInfo) Tensor {
	shape := make([]int64, len(info.Dimensions))
	copy(shape, info.Dimensions)
	for i, d := range shape {
		if d <= 0 {
			shape[i] = -1
		}
	}
	typ := info.DataType.String()
	if info.DataType == ort.TensorElementDataTypeFloat {
		typ = "float32"
	}
	return Tensor{Name: info.Name, Shape: shape, Type: typ}
}

// Input describes the model's input tensor.
func (s *Session) Input() Tensor { return s.input }

// Output describes the model's (first) output tensor.
func (s *Session) Output() Tensor { return s.output }

// Threads is the number of intra-op threads the session uses.
func (s *Session) Threads() int { return s.threads }

// Path is the model file the session was opened from.
func (s *Session) Path() string { return s.path }

// Name is the model file's base name, used in errors.
func (s *Session) Name() string { return filepath.Base(s.path) }

// ItemShape returns the input shape for a batch of n items: the model's shape
// with the leading free axis set to n. It fails when other axes are free too;
// use RunShape for such models.
func (s *Session) ItemShape(n int) ([]int64, error) {
	shape := append([]int64(nil), s.input.Shape...)
	for i, d := range shape {
		if d == -1 && i == 0 {
			shape[0] = int64(n)
		} else if d == -1 {
			return nil, fmt.Errorf("model %q: input %s has a free axis %d besides the batch; give the full shape", s.Name(), s.input, i)
		}
	}
	if len(shape) > 0 && s.input.Shape[0] != -1 && shape[0] != int64(n) {
		return nil, fmt.Errorf("model %q: input %s has a fixed batch of %d, asked for %d", s.Name(), s.input, shape[0], n)
	}
	return shape, nil
}

// ErrInterrupted: a run ended early because its context did (RunContext).
// The error wraps the context's cause too.
var ErrInterrupted = errors.New("run interrupted")

// Run runs a batch of n items given as one flat float32 slice in the input's
// layout, and returns the flat output.
func (s *Session) Run(input []float32, n int) ([]float32, error) {
	return s.RunContext(context.Background(), input, n)
}

// RunContext is Run that ends early when ctx does: ONNX Runtime's terminate
// flag stops the run between two of the graph's nodes, and the error is
// ErrInterrupted (and ctx's cause).
func (s *Session) RunContext(ctx context.Context, input []float32, n int) ([]float32, error) {
	shape, err := s.ItemShape(n)
	if err != nil {
		return nil, err
	}
	out, _, err := s.runShape(ctx, input, shape)
	return out, err
}

// RunShape runs the model on input of the given shape and returns the output
// values and shape. The shape must match the model's rank and fixed axes.
func (s *Session) RunShape(input []float32, shape []int64) ([]float32, []int64, error) {
	return s.runShape(context.Background(), input, shape)
}

func (s *Session) runShape(ctx context.Context, input []float32, shape []int64) ([]float32, []int64, error) {
	if err := s.checkShape(input, shape); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil, nil, fmt.Errorf("model %q: session is closed", s.Name())
	}
	if ctx.Err() != nil {
		return nil, nil, s.interrupted(ctx, shape)
	}
	b, err := s.buffersFor(shape)
	if err != nil {
		return nil, nil, err
	}
	copy(b.in.GetData(), input)
	outputs := []ort.Value{nil}
	if b.out != nil {
		outputs[0] = b.out
	}
	var ro *ort.RunOptions
	if ctx.Done() != nil {
		if ro, err = ort.NewRunOptions(); err != nil {
			return nil, nil, fmt.Errorf("run model %q: run options: %v", s.Name(), err)
		}
		defer ro.Destroy()
		// The flag is set from another goroutine while the run goes on;
		// the options are freed only once that is over.
		set := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(set)
			_ = ro.Terminate()
		})
		defer func() {
			if !stop() {
				<-set
			}
		}()
	}
	if err := s.sess.RunWithOptions([]ort.Value{b.in}, outputs, ro); err != nil {
		if ctx.Err() != nil {
			return nil, nil, s.interrupted(ctx, shape)
		}
		return nil, nil, fmt.Errorf("run model %q on %s: %v", s.Name(), formatShape(shape), err)
	}
	if b.out != nil {
		return append([]float32(nil), b.out.GetData()...), append([]int64(nil), b.out.GetShape()...), nil
	}
	// Output shape could not be known before the run: ONNX Runtime allocated it.
	defer outputs[0].Destroy()
	t, ok := outputs[0].(*ort.Tensor[float32])
	if !ok {
		return nil, nil, fmt.Errorf("run model %q: output %s is not a float32 tensor", s.Name(), s.output.Name)
	}
	return append([]float32(nil), t.GetData()...), append([]int64(nil), t.GetShape()...), nil
}

func (s *Session) interrupted(ctx context.Context, shape []int64) error {
	return fmt.Errorf("run model %q on %s: %w: %w", s.Name(), formatShape(shape), ErrInterrupted, context.Cause(ctx))
}

func (s *Session) checkShape(input []float32, shape []int64) error {
	want := s.input.Shape
	bad := len(shape) != len(want)
	n := int64(1)
	for i, d := range shape {
		if d <= 0 || (!bad && want[i] != -1 && want[i] != d) {
			bad = true
		}
		n *= d
	}
	if bad {
		return fmt.Errorf("model %q: input %s expects shape %s, given %s", s.Name(), s.input.Name, formatShape(want), formatShape(shape))
	}
	if int64(len(input)) != n {
		return fmt.Errorf("model %q: input %s of shape %s needs %d values, given %d", s.Name(), s.input.Name, formatShape(shape), n, len(input))
	}
	return nil
}

// buffersFor returns the reusable tensors for one input shape. Shapes seen
// are few (batch sizes), so they are kept for the session's life.
func (s *Session) buffersFor(shape []int64) (*runBuffers, error) {
	key := formatShape(shape)
	if b, ok := s.buffers[key]; ok {
		return b, nil
	}
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
	if err != nil {
		return nil, fmt.Errorf("model %q: allocate input %s: %v", s.Name(), key, err)
	}
	b := &runBuffers{in: in}
	if outShape, ok := s.outputShape(shape); ok {
		if b.out, err = ort.NewEmptyTensor[float32](ort.NewShape(outShape...)); err != nil {
			in.Destroy()
			return nil, fmt.Errorf("model %q: allocate output %s: %v", s.Name(), formatShape(outShape), err)
		}
	}
	s.buffers[key] = b
	return b, nil
}

// outputShape predicts the output shape when only its leading batch axis is
// free and the input's batch is known.
func (s *Session) outputShape(inShape []int64) ([]int64, bool) {
	out := append([]int64(nil), s.output.Shape...)
	for i, d := range out {
		switch {
		case d != -1:
		case i == 0 && len(s.input.Shape) > 0 && s.input.Shape[0] == -1:
			out[0] = inShape[0]
		default:
			return nil, false
		}
	}
	return out, true
}

// Close frees the session and its tensors. It is safe to call twice.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	for _, b := range s.buffers {
		b.in.Destroy()
		if b.out != nil {
			b.out.Destroy()
		}
	}
	s.buffers = nil
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

func formatShape(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		if d == -1 {
			parts[i] = "N"
			if i > 0 {
				parts[i] = "?"
			}
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}
