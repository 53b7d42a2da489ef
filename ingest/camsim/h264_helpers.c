#include "h264_helpers.h"

struct SwsContext *camsim_sws_from_rgb24(int w, int h, int fmt) {
	return sws_getContext(w, h, AV_PIX_FMT_RGB24, w, h, fmt, SWS_BICUBIC, NULL, NULL, NULL);
}

AVFrame *camsim_frame_alloc_buffer(int w, int h, int fmt) {
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
