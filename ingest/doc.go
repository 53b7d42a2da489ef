// Package ingest is the live and file input path: it gets frames and makes
// them model input. Video files and RTSP cameras (the gortsplib source,
// behind a small interface), the libavcodec decoder, the reference
// preprocessing (resize, crop, normalise, as the model's manifest says),
// the rolling window of preprocessed frames, and the per-stream supervisor
// that reconnects forever.
//
// It must not import engine or server: where it needs something from them
// it declares a small interface (FrameEncoder). Nothing here decodes or
// converts on the RTP read path. It makes no video: the RTSP simulator, the
// synthetic scenes and the H.264 encoder and writer, which tests and the
// demo use, are ingest/camsim. Its libav cgo is in four files (libav.go
// names them); camsim's encoder is the module's only other libav cgo.
package ingest
