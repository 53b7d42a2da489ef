// C side of camsim's H.264 encoder (h264_writer.go, the package's only file
// that imports "C"): what cgo cannot express (function-like macros) and the
// two libav set-ups the encoder needs. Named camsim_*: ingest's helpers
// (ingest/libav_helpers.h) link into the same binaries.
#ifndef CAMSIM_H264_HELPERS_H
#define CAMSIM_H264_HELPERS_H

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

// Error codes that libav builds with function-like macros.
enum {
	CAMSIM_AVERROR_EAGAIN = AVERROR(EAGAIN),
	CAMSIM_AVERROR_ENOMEM = AVERROR(ENOMEM),
};

// camsim_sws_from_rgb24 returns a bicubic scaler from packed RGB24 to fmt of
// the same size. NULL on failure.
struct SwsContext *camsim_sws_from_rgb24(int w, int h, int fmt);

// camsim_frame_alloc_buffer allocates an image frame of the given size and
// format with libav's default alignment. NULL on failure.
AVFrame *camsim_frame_alloc_buffer(int w, int h, int fmt);

#endif
