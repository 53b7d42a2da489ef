// Package models says what a model is: the manifest stored in an ONNX file's
// metadata_props (labels, segments, input size, normalisation, output kind),
// decoded from those props or a sidecar file and checked against a model's
// inputs and outputs, and the embedded label lists. Its subpackages write
// and read ONNX files (onnx) and build the models (motion, pptsmv2, with
// paddle's checkpoint reader).
//
// It never runs a model (that is engine), never touches media (ingest), and
// never parses an ONNX file itself: whoever read the model hands it the
// metadata_props and the inputs and outputs (engine through ONNX Runtime,
// the tools through models/onnx), so that the server, which imports models,
// pulls in no ONNX parser or model builder.
package models
