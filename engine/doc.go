// Package engine runs models: ONNX Runtime sessions, tensor reuse between
// runs, what the server needs to know of a model file (its manifest, read
// through ONNX Runtime's metadata, and its weight count), softmax and
// top-k, the feature cache (a split model's front half, which the window
// calls on each kept frame as an ingest.FrameEncoder, and its back half,
// which the scheduler runs), and the tensor file format (.npy) used to
// check a model against other runtimes.
//
// It is the only package that imports onnxruntime_go. It knows nothing of
// media (ingest) or of the API (server), and it does not build or rewrite
// models (models/onnx and the builders do; the server never imports them).
package engine
