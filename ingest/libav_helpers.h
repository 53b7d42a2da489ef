// C side of the libav fence (see libav.go). Only small helpers live here:
// what cgo cannot express (function-like macros, variadic callbacks) and the
// swscale set-up that must mirror the ffmpeg CLI's scale filter exactly.
#ifndef ACTIOND_LIBAV_HELPERS_H
#define ACTIOND_LIBAV_HELPERS_H

#include <errno.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

// Error codes that libav builds with function-like macros.
enum {
	ACTIOND_AVERROR_EAGAIN = AVERROR(EAGAIN),
	ACTIOND_AVERROR_ENOENT = AVERROR(ENOENT),
	ACTIOND_AVERROR_ENOMEM = AVERROR(ENOMEM),
};

// actiond_log_init routes av_log through goLibavLog at the given level.
// goLibavLog gets the id of the logging object's watch (0 if none), its
// class name and the formatted message.
void actiond_log_init(int level);

// actiond_codec_set_watch and actiond_format_set_watch give a context the
// id of its log watch, in its opaque field (a codec context's frame-thread
// copies keep it).
void actiond_codec_set_watch(AVCodecContext *c, uint64_t id);
void actiond_format_set_watch(AVFormatContext *s, uint64_t id);

// actiond_sws_to_rgb24 returns a scaler from (w, h, fmt) to packed RGB24 of
// the same size, configured like the ffmpeg CLI's auto-inserted scale filter
// (flags=bicubic, MPEG-2 chroma siting for yuv420p, the frame's colour
// matrix and range). NULL on failure.
struct SwsContext *actiond_sws_to_rgb24(int w, int h, int fmt, int colorspace, int color_range);

// actiond_frame_alloc_buffer allocates an image frame of the given size and
// format with libav's default alignment, so that SIMD paths are the same as
// in the ffmpeg CLI.
AVFrame *actiond_frame_alloc_buffer(int w, int h, int fmt);

// actiond_stream returns the i-th stream of s.
AVStream *actiond_stream(AVFormatContext *s, int i);

// actiond_frame_pts returns the frame's best-effort timestamp.
int64_t actiond_frame_pts(const AVFrame *f);

// actiond_io_init remembers libav's default io_open; call it once, before
// actiond_alloc_single_file_context.
void actiond_io_init(void);

// actiond_alloc_single_file_context returns a format context that opens
// only the URL given to avformat_open_input: a demuxer that would open
// another file (a playlist's segments, a concat list's entries, a MOV
// data reference) gets EPERM. NULL on failure.
AVFormatContext *actiond_alloc_single_file_context(void);

#endif
