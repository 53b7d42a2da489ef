package camsim

// This file is camsim's only cgo, and the module's only libav cgo outside
// ingest: the H.264 encoder with which the simulator and the scenes make
// video, and the file writer around it. ingest sets libav up (InitLibav:
// its log goes through slog) and describes its error codes (LibavError).
// Everything that leaves here is Go memory; every C object is owned by one
// Go value and freed by its Close on every path.

/*
#cgo pkg-config: libavformat libavcodec libavutil libswscale
#include <errno.h>
#include <stdlib.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"io/fs"
	"unsafe"

	"github.com/actiond/actiond/ingest"
)

// avErr is ingest.LibavError for a C return code.
func avErr(code C.int) error { return ingest.LibavError(int(code)) }

// libav's AVERROR(e) codes, which cgo cannot expand.
const (
	avErrEAGAIN = -C.EAGAIN
	avErrENOMEM = -C.ENOMEM
)

// allocFrame allocates a w x h image frame of format pix with libav's
// default alignment; nil on failure.
func allocFrame(w, h int, pix C.enum_AVPixelFormat) *C.AVFrame {
	f := C.av_frame_alloc()
	if f == nil {
		return nil
	}
	f.width, f.height, f.format = C.int(w), C.int(h), C.int(pix)
	if C.av_frame_get_buffer(f, 0) < 0 {
		C.av_frame_free(&f)
		return nil
	}
	return f
}

// H264AU is one encoded access unit (Annex-B byte stream), with its
// timestamps in the encoder's time base (1/fps: frame numbers).
type H264AU struct {
	Data     []byte
	PTS, DTS int64
	Key      bool
}

// H264Encoder turns RGB24 images into H.264 access units with libx264. It
// knows nothing about containers, so that the file writer and the RTSP
// simulator share it.
type H264Encoder struct {
	ctx   *C.AVCodecContext
	rgb   *C.AVFrame // staging copy of the Go image, in C memory
	yuv   *C.AVFrame // what the encoder reads
	sws   *C.struct_SwsContext
	pkt   *C.AVPacket
	w, h  int
	fps   int
	next  int64 // pts of the next frame
	ended bool  // flushed: no more frames accepted
}

// NewH264Encoder opens libx264 for w x h frames at fps (preset veryfast,
// crf 18, a key frame every second, no B-frames). globalHeader puts SPS/PPS
// in the codec's extradata, as MP4-like containers want; without it they
// come in band before every key frame, as a live stream needs.
func NewH264Encoder(w, h, fps int, globalHeader bool) (*H264Encoder, error) {
	return NewH264EncoderRate(w, h, fps, globalHeader, 0)
}

// NewH264EncoderRate is NewH264Encoder with a target bitrate in bits per
// second instead of constant quality when bitrate > 0: average bitrate with
// a one-second VBV buffer capped at the same rate, the way a camera set to
// "2 Mbit/s" behaves, so that a benchmark's network and decoder see the
// load it names whatever the picture.
func NewH264EncoderRate(w, h, fps int, globalHeader bool, bitrate int) (*H264Encoder, error) {
	ingest.InitLibav()
	name := C.CString("libx264")
	defer C.free(unsafe.Pointer(name))
	codec := C.avcodec_find_encoder_by_name(name)
	if codec == nil {
		return nil, errors.New("this FFmpeg build has no libx264 encoder")
	}
	e := &H264Encoder{
		ctx: C.avcodec_alloc_context3(codec),
		rgb: allocFrame(w, h, C.AV_PIX_FMT_RGB24),
		yuv: allocFrame(w, h, C.AV_PIX_FMT_YUV420P),
		// Bicubic, as the ffmpeg CLI scales.
		sws: C.sws_getContext(C.int(w), C.int(h), C.AV_PIX_FMT_RGB24, C.int(w), C.int(h), C.AV_PIX_FMT_YUV420P,
			C.SWS_BICUBIC, nil, nil, nil),
		pkt: C.av_packet_alloc(),
		w:   w, h: h, fps: fps,
	}
	if e.ctx == nil || e.rgb == nil || e.yuv == nil || e.sws == nil || e.pkt == nil {
		e.Close()
		return nil, avErr(avErrENOMEM)
	}
	c := e.ctx
	c.width, c.height = C.int(w), C.int(h)
	c.pix_fmt = C.AV_PIX_FMT_YUV420P
	c.time_base = C.AVRational{num: 1, den: C.int(fps)}
	c.framerate = C.AVRational{num: C.int(fps), den: 1}
	c.gop_size = C.int(fps)
	c.max_b_frames = 0 // dts == pts: simpler for muxers and RTP
	// Say what swscale's RGB->YUV did (BT.601, limited range) so that
	// players do not have to guess.
	c.colorspace = C.AVCOL_SPC_SMPTE170M
	c.color_primaries = C.AVCOL_PRI_SMPTE170M
	c.color_trc = C.AVCOL_TRC_SMPTE170M
	c.color_range = C.AVCOL_RANGE_MPEG
	if globalHeader {
		c.flags |= C.AV_CODEC_FLAG_GLOBAL_HEADER
	}
	opts := [][2]string{{"preset", "veryfast"}, {"crf", "18"}}
	if bitrate > 0 {
		c.bit_rate = C.int64_t(bitrate)
		c.rc_max_rate = C.int64_t(bitrate)
		c.rc_buffer_size = C.int(bitrate)
		opts = opts[:1]
	}
	for _, o := range opts {
		k, v := o[0], o[1]
		ck, cv := C.CString(k), C.CString(v)
		ret := C.av_opt_set(c.priv_data, ck, cv, 0)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
		if ret < 0 {
			e.Close()
			return nil, fmt.Errorf("set libx264 option %s=%s: %w", k, v, avErr(ret))
		}
	}
	if err := avErr(C.avcodec_open2(c, codec, nil)); err != nil {
		e.Close()
		return nil, fmt.Errorf("open libx264: %w", err)
	}
	return e, nil
}

// Encode encodes img and returns the access units that the encoder has
// finished (possibly none yet: x264 looks ahead). A nil img flushes: it
// returns the remaining units, after which Encode accepts no more frames.
func (e *H264Encoder) Encode(img *ingest.Image) ([]H264AU, error) {
	if e.ended {
		return nil, errors.New("encode: encoder already flushed")
	}
	var frame *C.AVFrame
	if img != nil {
		if img.W != e.w || img.H != e.h || len(img.Pix) != img.W*img.H*3 {
			return nil, fmt.Errorf("encode: image is %dx%d (%d bytes), encoder expects %dx%d",
				img.W, img.H, len(img.Pix), e.w, e.h)
		}
		// The encoder may still hold a reference to the last frame's
		// buffer; make_writable gives a fresh one in that case.
		if err := avErr(C.av_frame_make_writable(e.yuv)); err != nil {
			return nil, fmt.Errorf("encode: %w", err)
		}
		stride := int(e.rgb.linesize[0])
		row := e.w * 3
		dst := unsafe.Slice((*byte)(unsafe.Pointer(e.rgb.data[0])), stride*(e.h-1)+row)
		for y := range e.h {
			copy(dst[y*stride:y*stride+row], img.Pix[y*row:(y+1)*row])
		}
		if err := avErr(C.sws_scale_frame(e.sws, e.yuv, e.rgb)); err != nil {
			return nil, fmt.Errorf("encode: convert rgb24 to yuv420p: %w", err)
		}
		e.yuv.pts = C.int64_t(e.next)
		e.next++
		frame = e.yuv
	} else {
		e.ended = true
	}
	if err := avErr(C.avcodec_send_frame(e.ctx, frame)); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var aus []H264AU
	for {
		ret := C.avcodec_receive_packet(e.ctx, e.pkt)
		if ret == avErrEAGAIN || ret == C.AVERROR_EOF {
			return aus, nil
		}
		if ret < 0 {
			return aus, fmt.Errorf("encode: %w", avErr(ret))
		}
		aus = append(aus, H264AU{
			Data: C.GoBytes(unsafe.Pointer(e.pkt.data), e.pkt.size),
			PTS:  int64(e.pkt.pts),
			DTS:  int64(e.pkt.dts),
			Key:  e.pkt.flags&C.AV_PKT_FLAG_KEY != 0,
		})
		C.av_packet_unref(e.pkt)
	}
}

// Close frees the encoder; it is safe to call more than once.
func (e *H264Encoder) Close() {
	if e.ctx != nil {
		C.avcodec_free_context(&e.ctx)
	}
	if e.rgb != nil {
		C.av_frame_free(&e.rgb)
	}
	if e.yuv != nil {
		C.av_frame_free(&e.yuv)
	}
	if e.sws != nil {
		C.sws_freeContext(e.sws)
		e.sws = nil
	}
	if e.pkt != nil {
		C.av_packet_free(&e.pkt)
	}
}

// H264Writer writes RGB24 images as an H.264 video file. It is not safe for
// concurrent use; Close finishes the file and must be called.
type H264Writer struct {
	path   string
	fmtCtx *C.AVFormatContext
	st     *C.AVStream
	enc    *H264Encoder
	pkt    *C.AVPacket
	frames int
	closed bool
}

// CreateH264File creates path and returns a writer for w x h frames at fps
// frames per second. The container follows the file extension (.mp4, .mkv,
// .ts, .h264 ...); without a known one it is MP4. w and h must be even
// (YUV 4:2:0).
func CreateH264File(path string, w, h, fps int) (*H264Writer, error) {
	switch {
	case w <= 0 || h <= 0 || w%2 != 0 || h%2 != 0:
		return nil, fmt.Errorf("create video %q: width and height must be positive and even, got %dx%d", path, w, h)
	case fps <= 0 || fps > 1000:
		return nil, fmt.Errorf("create video %q: fps must be in 1..1000, got %d", path, fps)
	}
	ingest.InitLibav()
	wr := &H264Writer{path: path}
	if err := wr.open(w, h, fps); err != nil {
		wr.free()
		return nil, fmt.Errorf("create video %q: %w", path, err)
	}
	return wr, nil
}

func (wr *H264Writer) open(w, h, fps int) error {
	cpath := C.CString(wr.path)
	defer C.free(unsafe.Pointer(cpath))
	ofmt := C.av_guess_format(nil, cpath, nil)
	if ofmt == nil { // no or unknown extension
		mp4 := C.CString("mp4")
		defer C.free(unsafe.Pointer(mp4))
		ofmt = C.av_guess_format(mp4, nil, nil)
	}
	if err := avErr(C.avformat_alloc_output_context2(&wr.fmtCtx, ofmt, nil, cpath)); err != nil {
		return fmt.Errorf("allocate muxer: %w", err)
	}
	globalHeader := wr.fmtCtx.oformat.flags&C.AVFMT_GLOBALHEADER != 0
	enc, err := NewH264Encoder(w, h, fps, globalHeader)
	if err != nil {
		return err
	}
	wr.enc = enc
	if wr.pkt = C.av_packet_alloc(); wr.pkt == nil {
		return avErr(avErrENOMEM)
	}
	if wr.st = C.avformat_new_stream(wr.fmtCtx, nil); wr.st == nil {
		return avErr(avErrENOMEM)
	}
	if err := avErr(C.avcodec_parameters_from_context(wr.st.codecpar, enc.ctx)); err != nil {
		return err
	}
	wr.st.time_base = enc.ctx.time_base // a hint; the muxer may pick another
	wr.st.avg_frame_rate = enc.ctx.framerate
	if wr.fmtCtx.oformat.flags&C.AVFMT_NOFILE == 0 {
		if err := avErr(C.avio_open(&wr.fmtCtx.pb, cpath, C.AVIO_FLAG_WRITE)); err != nil {
			return err
		}
	}
	if err := avErr(C.avformat_write_header(wr.fmtCtx, nil)); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	return nil
}

// WriteFrame encodes one frame; its size must be the writer's.
func (wr *H264Writer) WriteFrame(img *ingest.Image) error {
	if wr.closed {
		return fmt.Errorf("write video %q: %w", wr.path, fs.ErrClosed)
	}
	aus, err := wr.enc.Encode(img)
	if err == nil {
		err = wr.writeAUs(aus)
	}
	if err != nil {
		return fmt.Errorf("write video %q: frame %d: %w", wr.path, wr.frames, err)
	}
	wr.frames++
	return nil
}

// writeAUs hands encoded units to the muxer.
func (wr *H264Writer) writeAUs(aus []H264AU) error {
	for _, au := range aus {
		if err := avErr(C.av_new_packet(wr.pkt, C.int(len(au.Data)))); err != nil {
			return err
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(wr.pkt.data)), len(au.Data)), au.Data)
		wr.pkt.pts, wr.pkt.dts, wr.pkt.duration = C.int64_t(au.PTS), C.int64_t(au.DTS), 1
		if au.Key {
			wr.pkt.flags |= C.AV_PKT_FLAG_KEY
		}
		wr.pkt.stream_index = wr.st.index
		C.av_packet_rescale_ts(wr.pkt, wr.enc.ctx.time_base, wr.st.time_base)
		// av_interleaved_write_frame takes the packet's data, leaving pkt blank.
		if err := avErr(C.av_interleaved_write_frame(wr.fmtCtx, wr.pkt)); err != nil {
			C.av_packet_unref(wr.pkt)
			return fmt.Errorf("mux: %w", err)
		}
	}
	return nil
}

// Close flushes the encoder, finishes the file and frees the writer. It is
// safe to call more than once; only the first call does anything.
func (wr *H264Writer) Close() error {
	if wr.closed {
		return nil
	}
	wr.closed = true
	defer wr.free()
	aus, err := wr.enc.Encode(nil)
	if err == nil {
		err = wr.writeAUs(aus)
	}
	if terr := avErr(C.av_write_trailer(wr.fmtCtx)); terr != nil && err == nil {
		err = fmt.Errorf("write trailer: %w", terr)
	}
	if wr.fmtCtx.oformat.flags&C.AVFMT_NOFILE == 0 {
		if cerr := avErr(C.avio_closep(&wr.fmtCtx.pb)); cerr != nil && err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("close video %q: %w", wr.path, err)
	}
	return nil
}

// free releases every C object the writer holds, whatever state it got to.
func (wr *H264Writer) free() {
	if wr.fmtCtx != nil {
		if wr.fmtCtx.oformat.flags&C.AVFMT_NOFILE == 0 && wr.fmtCtx.pb != nil {
			C.avio_closep(&wr.fmtCtx.pb)
		}
		C.avformat_free_context(wr.fmtCtx)
		wr.fmtCtx, wr.st = nil, nil
	}
	if wr.enc != nil {
		wr.enc.Close()
		wr.enc = nil
	}
	if wr.pkt != nil {
		C.av_packet_free(&wr.pkt)
	}
}
