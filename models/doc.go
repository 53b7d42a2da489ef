// Package models says what a model is: the manifest stored in an ONNX file's
// metadata_props (labels, segments, input size, normalisation, output kind),
// the embedded label lists, and the graph builders that write ONNX.
//
// It never runs a model (that is engine) and never touches media (ingest).
package models
