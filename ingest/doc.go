// Package ingest gets frames and makes them model input: file and (later)
// RTSP sources, the libavcodec decoder, the reference preprocessing (resize,
// crop, normalise, as the model's manifest says), and the synthetic scenes
// used by tests and the demo.
//
// It is the only package with libav cgo. It must not import engine or server:
// where it needs something from them it declares a small interface.
package ingest
