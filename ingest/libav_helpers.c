#include <stdio.h>
#include <string.h>

#include "libav_helpers.h"
#include "_cgo_export.h"

static void actiond_log_cb(void *avcl, int level, const char *fmt, va_list vl) {
	char line[1024];
	const char *name = "";
	uint64_t watch = 0;

	if (level > av_log_get_level())
		return;
	vsnprintf(line, sizeof line, fmt, vl);
	if (avcl) {
		const AVClass *cls = *(const AVClass **)avcl;
		if (cls && cls->item_name)
			name = cls->item_name(avcl);
		// Watched contexts carry their watch's id in opaque (frame
		// threads log through copies of the codec context, which keep
		// it).
		if (cls == avcodec_get_class())
			watch = (uint64_t)(uintptr_t)((AVCodecContext *)avcl)->opaque;
		else if (cls == avformat_get_class())
			watch = (uint64_t)(uintptr_t)((AVFormatContext *)avcl)->opaque;
	}
	goLibavLog(level, watch, (char *)name, line);
}

void actiond_log_init(int level) {
	av_log_set_level(level);
	av_log_set_callback(actiond_log_cb);
}

void actiond_codec_set_watch(AVCodecContext *c, uint64_t id) { c->opaque = (void *)(uintptr_t)id; }

void actiond_format_set_watch(AVFormatContext *s, uint64_t id) { s->opaque = (void *)(uintptr_t)id; }

// yuv_table mirrors vf_scale's parse_yuv_type(in_color_matrix="auto", ...).
static const int *yuv_table(int colorspace) {
	if (colorspace < 1 || colorspace > 10 || colorspace == 8)
		colorspace = AVCOL_SPC_BT470BG;
	return sws_getCoefficients(colorspace);
}

struct SwsContext *actiond_sws_to_rgb24(int w, int h, int fmt, int colorspace, int color_range) {
	struct SwsContext *s = sws_alloc_context();
	int in_full, out_full, brightness, contrast, saturation;
	int *inv_table, *table;
	const int *coefs;

	if (!s)
		return NULL;
	av_opt_set_int(s, "srcw", w, 0);
	av_opt_set_int(s, "srch", h, 0);
	av_opt_set_int(s, "src_format", fmt, 0);
	av_opt_set_int(s, "dstw", w, 0);
	av_opt_set_int(s, "dsth", h, 0);
	av_opt_set_int(s, "dst_format", AV_PIX_FMT_RGB24, 0);
	av_opt_set_int(s, "sws_flags", SWS_BICUBIC, 0);
	av_opt_set_int(s, "src_h_chr_pos", -513, 0);
	// vf_scale: "MPEG-2 chroma positions are used by convention".
	av_opt_set_int(s, "src_v_chr_pos", fmt == AV_PIX_FMT_YUV420P ? 128 : -513, 0);
	if (sws_init_context(s, NULL, NULL) < 0) {
		sws_freeContext(s);
		return NULL;
	}

	// vf_scale's scale_frame: input matrix from the frame, output table the
	// same, input range from the frame when it says.
	sws_getColorspaceDetails(s, &inv_table, &in_full, &table, &out_full,
	                         &brightness, &contrast, &saturation);
	coefs = yuv_table(colorspace);
	if (color_range != AVCOL_RANGE_UNSPECIFIED)
		in_full = color_range == AVCOL_RANGE_JPEG;
	sws_setColorspaceDetails(s, coefs, in_full, coefs, out_full,
	                         brightness, contrast, saturation);
	return s;
}

AVFrame *actiond_frame_alloc_buffer(int w, int h, int fmt) {
	AVFrame *f = av_frame_alloc();

	if (!f)
		return NULL;
	f->width = w;
	f->height = h;
	f->format = fmt;
	if (av_frame_get_buffer(f, 0) < 0) {
		av_frame_free(&f);
		return NULL;
	}
	return f;
}

AVStream *actiond_stream(AVFormatContext *s, int i) {
	return s->streams[i];
}

int64_t actiond_frame_pts(const AVFrame *f) {
	return f->best_effort_timestamp;
}

// The io_open that avformat_alloc_context installs; one for every context.
static int (*default_io_open)(AVFormatContext *s, AVIOContext **pb, const char *url,
                              int flags, AVDictionary **options);

// only_own_url opens nothing but the context's own URL: whatever a
// demuxer asks for besides (a playlist's segments, a concat list's files,
// a MOV data reference) is refused.
static int only_own_url(AVFormatContext *s, AVIOContext **pb, const char *url,
                        int flags, AVDictionary **options) {
	if (!s->url || strcmp(url, s->url) != 0) {
		av_log(s, AV_LOG_ERROR, "actiond: refused to open another file\n");
		return AVERROR(EPERM);
	}
	return default_io_open(s, pb, url, flags, options);
}

void actiond_io_init(void) {
	AVFormatContext *s = avformat_alloc_context();
	if (!s)
		return;
	default_io_open = s->io_open;
	avformat_free_context(s);
}

AVFormatContext *actiond_alloc_single_file_context(void) {
	AVFormatContext *s;
	if (!default_io_open)
		return NULL;
	s = avformat_alloc_context();
	if (!s)
		return NULL;
	s->io_open = only_own_url;
	return s;
}
