// Package ingest gets frames and makes them model input: video files and
// RTSP cameras (the gortsplib source, behind a small interface), the
// libavcodec decoder, the reference preprocessing (resize, crop, normalise,
// as the model's manifest says), the rolling window of preprocessed frames,
// the per-stream supervisor that reconnects forever, and the H.264 encoder
// and file writer (libav) with which the RTSP simulator and its synthetic
// scenes (ingest/camsim, used by tests and the demo) make video.
//
// It is the only package with libav cgo. It must not import engine or server:
// where it needs something from them it declares a small interface. Nothing
// here decodes or converts on the RTP read path.
package ingest
