package ingest

// This file holds what every libav (FFmpeg 5.1) user shares: library
// setup, log routing, error codes. It and three others are ingest's cgo
// fence, the only files of the package that import "C" and talk to
// libavformat, libavcodec and libswscale directly: decoder.go (live
// decoding), video_file.go and video_skip.go (files). The module's one
// other libav user is camsim's H.264 encoder (ingest/camsim/h264_writer.go),
// which sets libav up and names its errors through InitLibav and
// LibavError. Everything that leaves these files is Go memory (Image,
// []byte); every C object is owned by one Go value and freed by its close
// method on every path.

/*
#cgo pkg-config: libavformat libavcodec libavutil libswscale
#include <stdlib.h>
#include "libav_helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unsafe"
)

// libav error codes that the Go side tests for.
const (
	avErrEOF    = C.AVERROR_EOF
	avErrEAGAIN = C.ACTIOND_AVERROR_EAGAIN
	avErrENOENT = C.ACTIOND_AVERROR_ENOENT
	avErrENOMEM = C.ACTIOND_AVERROR_ENOMEM
)

// avError is a negative libav return code.
type avError C.int

// Error returns libav's description, lower-cased to read well after a colon.
func (e avError) Error() string {
	var buf [C.AV_ERROR_MAX_STRING_SIZE]C.char
	if C.av_strerror(C.int(e), &buf[0], C.size_t(len(buf))) < 0 {
		return fmt.Sprintf("libav error %d", int(e))
	}
	s := C.GoString(&buf[0])
	// "Invalid data found ..." -> "invalid data found ...", but keep
	// acronyms ("BSF not found").
	if len(s) > 1 && !unicode.IsUpper(rune(s[1])) {
		s = strings.ToLower(s[:1]) + s[1:]
	}
	return s
}

// avErr turns a libav return code into an error; nil when code >= 0.
func avErr(code C.int) error {
	if code >= 0 {
		return nil
	}
	return avError(code)
}

// libav logging. av_log output goes to slog so that operators see it with
// the rest of the process's logs, at the matching level, and a burst (a
// corrupt stream can make the decoder log one line per macroblock row) is
// cut to a few lines a second plus a count of what was left out.

var (
	libavLogger  atomic.Pointer[slog.Logger]
	libavLimiter = LogLimiter{PerSecond: 5}
	libavOnce    sync.Once
)

// SetLibavLogger sets the logger that libav's messages go to. It defaults to
// slog.Default() with component=libav.
func SetLibavLogger(l *slog.Logger) {
	libavLogger.Store(l)
}

// libavInit installs the log callback. It is called before any libav use.
func libavInit() {
	libavOnce.Do(func() {
		// Warnings and worse: libav's info level is meant for the CLI.
		C.actiond_log_init(C.AV_LOG_WARNING)
		C.actiond_io_init()
	})
}

// InitLibav sets libav up for this process (see libavInit). ingest calls it
// itself; another package that calls libav (camsim's H.264 encoder) calls
// it first, so that libav's log goes through slog here too.
func InitLibav() { libavInit() }

// LibavError is the error for a libav return code, in libav's words; nil
// when code >= 0.
func LibavError(code int) error { return avErr(C.int(code)) }

//export goLibavLog
func goLibavLog(level C.int, watch C.uint64_t, name, msg *C.char) {
	text := strings.TrimSpace(C.GoString(msg))
	if text == "" {
		return
	}
	if level <= C.AV_LOG_ERROR && watch != 0 {
		if w, ok := logWatches.Load(uint64(watch)); ok {
			w.(*logWatch).set(text)
		}
	}
	suppressed, ok := libavLimiter.Allow(time.Now())
	if !ok {
		return
	}
	l := libavLogger.Load()
	if l == nil {
		l = slog.Default().With("component", "libav")
	}
	attrs := []slog.Attr{}
	if n := C.GoString(name); n != "" {
		attrs = append(attrs, slog.String("class", n))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	l.LogAttrs(context.Background(), slogLevel(int(level)), text, attrs...)
}

// logWatch keeps the last error that libav logged for one object (a demuxer
// or decoder context). libav often says why in the log ("moov atom not found") and only
// how in the return code (AVERROR_INVALIDDATA); errors quote both.
//
// A watch has an id of its own, never used again, that the object carries
// in its opaque field (watchCodec, watchFormat) and the log callback finds
// it by. Not the object's address: libav reuses addresses once an object is
// freed (avformat_open_input frees a context when it fails), and a watch
// stopped late would then remove, or catch the errors of, another object's.
type logWatch struct {
	id  uint64
	mu  sync.Mutex
	msg string
}

var (
	// logWatches maps a watch's id to its *logWatch.
	logWatches  sync.Map
	lastWatchID atomic.Uint64
)

// newLogWatch starts a watch; its id goes into the object's opaque field.
func newLogWatch() *logWatch {
	w := &logWatch{id: lastWatchID.Add(1)}
	logWatches.Store(w.id, w)
	return w
}

// watchCodec starts recording the errors that libav logs for ctx (and its
// frame threads' copies, which keep opaque).
func watchCodec(ctx *C.AVCodecContext) *logWatch {
	w := newLogWatch()
	C.actiond_codec_set_watch(ctx, C.uint64_t(w.id))
	return w
}

// watchFormat starts recording the errors that libav logs for ctx.
func watchFormat(ctx *C.AVFormatContext) *logWatch {
	w := newLogWatch()
	C.actiond_format_set_watch(ctx, C.uint64_t(w.id))
	return w
}

func (w *logWatch) set(msg string) {
	w.mu.Lock()
	w.msg = strings.TrimSuffix(msg, ".")
	w.mu.Unlock()
}

// last returns the last error logged, "" if none (or w is nil).
func (w *logWatch) last() string {
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.msg
}

// stop ends the watch. Only this watch: the id is never another's.
func (w *logWatch) stop() {
	logWatches.Delete(w.id)
}

// slogLevel maps an av_log level to slog's.
func slogLevel(avLevel int) slog.Level {
	switch {
	case avLevel <= C.AV_LOG_ERROR:
		return slog.LevelError
	case avLevel <= C.AV_LOG_WARNING:
		return slog.LevelWarn
	case avLevel <= C.AV_LOG_INFO:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

// LogLimiter lets PerSecond messages through in each one-second window and
// reports, with the first message of a later window, how many it dropped.
type LogLimiter struct {
	PerSecond int64

	mu         sync.Mutex
	window     time.Time
	n          int64
	suppressed int64
}

func (l *LogLimiter) Allow(now time.Time) (suppressed int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.window) >= time.Second {
		l.window, l.n = now, 0
	}
	if l.n >= l.PerSecond {
		l.suppressed++
		return 0, false
	}
	l.n++
	suppressed, l.suppressed = l.suppressed, 0
	return suppressed, true
}

// videoDecoder wraps an opened AVCodecContext and the frame it decodes into.
// It is the part of decoding shared by files and network sources:
// packets in, frames out, in presentation order.
type videoDecoder struct {
	ctx   *C.AVCodecContext
	frame *C.AVFrame
	watch *logWatch // last error libav logged about ctx
	sent  bool      // it has been given input: no longer fresh
}

// errNoDecoder is returned by newVideoDecoder when this FFmpeg build has no
// decoder for the codec.
var errNoDecoder = errors.New("no decoder")

// newVideoDecoder opens a decoder for par with automatic threading. It
// allocates no frame much larger than maxPixels (width times height): such
// a frame is a decode error. Callers check the exact size themselves;
// libav's own check counts the width padded for SIMD, hence the margin.
func newVideoDecoder(par *C.AVCodecParameters, maxPixels int) (*videoDecoder, error) {
	codec := C.avcodec_find_decoder(par.codec_id)
	if codec == nil {
		return nil, errNoDecoder
	}
	d := &videoDecoder{ctx: C.avcodec_alloc_context3(codec), frame: C.av_frame_alloc()}
	if d.ctx == nil || d.frame == nil {
		d.close()
		return nil, avError(avErrENOMEM)
	}
	d.watch = watchCodec(d.ctx)
	if err := avErr(C.avcodec_parameters_to_context(d.ctx, par)); err != nil {
		d.close()
		return nil, err
	}
	d.ctx.thread_count = 0 // auto: libav sizes it from the core count
	d.ctx.max_pixels = 2 * C.int64_t(maxPixels)
	if err := avErr(C.avcodec_open2(d.ctx, codec, nil)); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// send gives the decoder one packet; a nil packet starts draining.
func (d *videoDecoder) send(pkt *C.AVPacket) error {
	d.sent = true
	return avErr(C.avcodec_send_packet(d.ctx, pkt))
}

// receive fetches the next decoded frame into d.frame. ok is false when the
// decoder needs more input (or, after draining, has no more output).
func (d *videoDecoder) receive() (ok bool, err error) {
	ret := C.avcodec_receive_frame(d.ctx, d.frame)
	switch {
	case ret >= 0:
		return true, nil
	case ret == avErrEAGAIN || ret == avErrEOF:
		return false, nil
	default:
		return false, avError(ret)
	}
}

// close frees the decoder; it is safe to call more than once.
func (d *videoDecoder) close() {
	if d.watch != nil {
		d.watch.stop()
		d.watch = nil
	}
	if d.ctx != nil {
		C.avcodec_free_context(&d.ctx)
	}
	if d.frame != nil {
		C.av_frame_free(&d.frame)
	}
}

// rgbConverter turns decoded frames into RGB24 Images at native size. Its
// scaler is set up like the ffmpeg CLI's, so output matches
// `ffmpeg -pix_fmt rgb24` byte for byte, and is rebuilt when the input's
// size, pixel format or colour description changes mid-stream.
type rgbConverter struct {
	sws *C.struct_SwsContext
	dst *C.AVFrame // RGB24, libav-aligned: SIMD paths depend on alignment
	key [5]C.int   // w, h, format, colorspace, range that sws was made for
}

// convert returns a copy of src as an RGB24 Image.
func (c *rgbConverter) convert(src *C.AVFrame) (*Image, error) {
	img := new(Image)
	if err := c.convertInto(src, img); err != nil {
		return nil, err
	}
	return img, nil
}

// convertInto converts src into dst, reusing dst's pixels when they are
// large enough: a caller that converts frame after frame allocates
// nothing.
func (c *rgbConverter) convertInto(src *C.AVFrame, dst *Image) error {
	key := [5]C.int{src.width, src.height, C.int(src.format), C.int(src.colorspace), C.int(src.color_range)}
	if src.width <= 0 || src.height <= 0 {
		return fmt.Errorf("convert to rgb24: frame is %dx%d", int(src.width), int(src.height))
	}
	if c.sws == nil || key != c.key {
		c.close()
		c.sws = C.actiond_sws_to_rgb24(key[0], key[1], key[2], key[3], key[4])
		if c.sws == nil {
			name := C.av_get_pix_fmt_name(C.enum_AVPixelFormat(src.format))
			return fmt.Errorf("convert %dx%d %s to rgb24: unsupported by swscale",
				int(src.width), int(src.height), C.GoString(name))
		}
		c.dst = C.actiond_frame_alloc_buffer(src.width, src.height, C.AV_PIX_FMT_RGB24)
		if c.dst == nil {
			c.close()
			return avError(avErrENOMEM)
		}
		c.key = key
	}
	if err := avErr(C.sws_scale_frame(c.sws, c.dst, src)); err != nil {
		return fmt.Errorf("convert to rgb24: %w", err)
	}
	w, h := int(src.width), int(src.height)
	dst.W, dst.H, dst.Pix = w, h, grow(dst.Pix, w*h*3)
	stride := int(c.dst.linesize[0])
	data := unsafe.Slice((*byte)(unsafe.Pointer(c.dst.data[0])), stride*(h-1)+w*3)
	for y := range h {
		copy(dst.Pix[y*w*3:(y+1)*w*3], data[y*stride:y*stride+w*3])
	}
	return nil
}

// close frees the scaler and its buffer; it is safe to call more than once.
func (c *rgbConverter) close() {
	if c.sws != nil {
		C.sws_freeContext(c.sws)
		c.sws = nil
	}
	if c.dst != nil {
		C.av_frame_free(&c.dst)
	}
	c.key = [5]C.int{}
}
