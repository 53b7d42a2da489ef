// Package classify labels whole clips: a video file or one window of an
// RTSP camera, through the model's reference preprocessing (ingest) and
// one ONNX Runtime session (engine). The Classify RPC (server) and
// `actiond classify` share it, so both give the same answer.
//
// It must not keep state between calls beyond the open model, nor import
// server or cmd.
package classify
