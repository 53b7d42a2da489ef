// Package pptsmv2 builds PP-TSMv2 (PaddleVideo's PP-LCNetV2 backbone with a
// temporal shift, 16 frames, Kinetics-400) as a standard ONNX graph, from the
// architecture written down in Go (docs/PPTSMV2.md) and the weights of
// a Paddle training checkpoint (.pdparams) in any of its three layouts: the
// plain recognizer ("backbone."), the distillation save with its teacher
// ("Student.0." beside "Teacher."), and the extracted student ("0.").
//
// Loading is strict: every key and shape is checked against the
// architecture, and the multi-branch depthwise convolutions of stages 3 and 4
// are folded into one 5×5 convolution, as Paddle's rep() does before export.
// Without a checkpoint, RandomWeights gives a model of the same shape and
// cost with seeded random weights, which says so in its manifest.
//
// The package only reads the files it is given and writes ONNX: it never
// downloads anything and never runs a model (that is engine).
package pptsmv2
