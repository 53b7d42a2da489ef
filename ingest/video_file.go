package ingest

/*
#include "libav_helpers.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"
	"unsafe"
)

// Errors that callers (the clip classifier, the Classify RPC) map to a
// user-facing status. A missing file matches fs.ErrNotExist.
var (
	// ErrNotVideo: the file is not in a container format FFmpeg can read.
	ErrNotVideo = errors.New("not a video file")
	// ErrNoVideoStream: the container holds no video (audio only, say).
	ErrNoVideoStream = errors.New("has no video stream")
	// ErrUnsupportedCodec: FFmpeg has no decoder for the video's codec.
	ErrUnsupportedCodec = errors.New("unsupported codec")
	// ErrCorrupt: not a single frame of the video could be decoded.
	ErrCorrupt = errors.New("corrupt or unsupported data")
	// ErrContainerNotAllowed: the file is in a container that actiond does
	// not open (see containers), such as a playlist that refers to other
	// files.
	ErrContainerNotAllowed = errors.New("container not allowed")
	// ErrFrameTooLarge: a frame is larger than the configured most pixels
	// (ingest.max_frame_pixels).
	ErrFrameTooLarge = errors.New("frame too large")
)

// DefaultMaxFramePixels is the largest frame read by default: 8192×4320
// (8K), width times height.
const DefaultMaxFramePixels = 8192 * 4320

// frameTooLarge says that a w×h frame is over max pixels.
func frameTooLarge(w, h, max int) error {
	return fmt.Errorf("%w: %dx%d is %d pixels, over ingest.max_frame_pixels (%d)", ErrFrameTooLarge, w, h, w*h, max)
}

// containers are the file formats a VideoFile opens, as FFmpeg's demuxers
// name them, with what a user calls them. Each holds its video in the one
// file: a demuxer that follows references to other files (HLS and DASH
// playlists, concat lists, image sequences, MOV data references) would let
// a file uploaded to the server read others on it, so none is allowed.
var containers = []struct{ Demuxer, Name string }{
	{"mov,mp4,m4a,3gp,3g2,mj2", "MP4/MOV"},
	{"matroska,webm", "Matroska/WebM"},
	{"avi", "AVI"},
	{"mpegts", "MPEG-TS"},
	{"flv", "FLV"},
	{"h264", "raw H.264"},
	{"hevc", "raw H.265"},
}

// containerAllowed reports whether the demuxer named name is in containers.
func containerAllowed(name string) bool {
	for _, c := range containers {
		if c.Demuxer == name {
			return true
		}
	}
	return false
}

// containerList is containers for messages: "MP4/MOV, Matroska/WebM, ...".
func containerList() string {
	names := make([]string, len(containers))
	for i, c := range containers {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// demuxerList is containers as libav's format_whitelist spells it.
func demuxerList() string {
	names := make([]string, len(containers))
	for i, c := range containers {
		names[i] = c.Demuxer
	}
	return strings.Join(names, ",")
}

// FileOptions bound what reading one file may cost.
type FileOptions struct {
	// MaxFramePixels is the largest frame, width times height, that the
	// file may have; a larger one is ErrFrameTooLarge before anything is
	// decoded. It defaults to DefaultMaxFramePixels.
	MaxFramePixels int
	// Context, when set, stops CountFrames and Decode once it ends: they
	// return its error. It defaults to none.
	Context context.Context
}

// noSuchFile reads "no such file" and matches fs.ErrNotExist.
type noSuchFile struct{}

func (noSuchFile) Error() string        { return "no such file" }
func (noSuchFile) Is(target error) bool { return target == fs.ErrNotExist }

// VideoInfo describes a file's video stream as its container states it.
type VideoInfo struct {
	Width, Height int
	FPS           float64 // frame rate (libav's best guess); 0 when unknown
	Codec         string  // FFmpeg codec name: "h264", "mpeg4", ...
	Duration      time.Duration
}

// VideoFile reads the frames of one video file in presentation order, the way
// the reference pipeline (decord) indexes them. It is not safe for concurrent
// use; Close frees its C resources and must be called.
type VideoFile struct {
	path string
	info VideoInfo
	opts FileOptions

	fmtCtx *C.AVFormatContext
	watch  *logWatch // last libav error about fmtCtx
	stream C.int     // index of the video stream in fmtCtx
	dec    *videoDecoder
	conv   rgbConverter
	pkt    *C.AVPacket

	// used is true once a pass (Decode, CountFrames) has moved the demuxer
	// or the decoder away from the start; the next pass reopens first.
	used   bool
	closed bool

	packetsRead    int
	packetsSkipped int
	decodeErrors   int

	// index describes every video packet, in decoding order, as the last
	// CountFrames found them; nil when the codec's picture types are not
	// read (see video_skip.go). nalLengthSize is the H.264 NAL length
	// prefix size, 0 for Annex B.
	index         []packetInfo
	nalLengthSize int
	// packets are the video packets themselves (references, in decoding
	// order) when index is set and they fit; nil otherwise.
	packets     []*C.AVPacket
	cachedBytes int
	caching     bool // CountFrames is still keeping packets
}

// OpenVideoFile opens path, picks its best video stream and opens a decoder
// for it (threads: as many as libav picks for the core count). Its errors name the file and say what is
// wrong in terms a user can act on. Only single-file containers are
// opened (see containers), and nothing but path itself is read.
func OpenVideoFile(path string) (*VideoFile, error) {
	return OpenVideoFileWith(path, FileOptions{})
}

// OpenVideoFileWith is OpenVideoFile with limits.
func OpenVideoFileWith(path string, opts FileOptions) (*VideoFile, error) {
	libavInit()
	if opts.MaxFramePixels <= 0 {
		opts.MaxFramePixels = DefaultMaxFramePixels
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open video %q: %w", path, noSuchFile{})
	case err != nil:
		return nil, fmt.Errorf("open video %q: %w", path, err)
	case st.IsDir():
		return nil, fmt.Errorf("open video %q: %w: it is a directory", path, ErrNotVideo)
	}
	f := &VideoFile{path: path, opts: opts}
	if err := f.open(); err != nil {
		f.Close()
		return nil, err
	}
	f.info = f.readInfo()
	return f, nil
}

// open opens the demuxer, finds the video stream and opens its decoder.
func (f *VideoFile) open() error {
	// "file:" makes libav read a local file whatever the name looks like
	// (a name with a colon is a protocol to it otherwise).
	url := "file:" + f.path
	curl := C.CString(url)
	defer C.free(unsafe.Pointer(curl))

	iformat, err := f.probe(curl)
	if err != nil {
		return err
	}
	f.fmtCtx = C.actiond_alloc_single_file_context()
	if f.fmtCtx == nil {
		return fmt.Errorf("open video %q: %w", f.path, avError(avErrENOMEM))
	}
	f.watch = watchFormat(f.fmtCtx)
	// Belt and braces to the probe and the context's io_open: the file
	// protocol only, the allowed demuxers only.
	var opts *C.AVDictionary
	defer C.av_dict_free(&opts)
	for k, v := range map[string]string{"protocol_whitelist": "file", "format_whitelist": demuxerList()} {
		ck, cv := C.CString(k), C.CString(v)
		C.av_dict_set(&opts, ck, cv, 0)
		C.free(unsafe.Pointer(ck))
		C.free(unsafe.Pointer(cv))
	}
	if ret := C.avformat_open_input(&f.fmtCtx, curl, iformat, &opts); ret < 0 {
		// avformat_open_input frees a user-supplied context on failure.
		f.fmtCtx = nil
		switch ret {
		case avErrENOENT:
			return fmt.Errorf("open video %q: %w", f.path, noSuchFile{})
		case C.AVERROR_INVALIDDATA:
			return fmt.Errorf("open video %q: %w: %s", f.path, ErrNotVideo, f.detail(avError(ret)))
		default:
			return fmt.Errorf("open video %q: %w", f.path, avError(ret))
		}
	}
	if ret := C.avformat_find_stream_info(f.fmtCtx, nil); ret < 0 {
		return fmt.Errorf("open video %q: %w: %s", f.path, ErrNotVideo, f.detail(avError(ret)))
	}
	f.stream = C.av_find_best_stream(f.fmtCtx, C.AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
	if f.stream < 0 {
		return fmt.Errorf("open video %q: %w", f.path, ErrNoVideoStream)
	}
	st := C.actiond_stream(f.fmtCtx, f.stream)
	if st.disposition&C.AV_DISPOSITION_ATTACHED_PIC != 0 {
		// Cover art of an audio file is a one-picture "video" stream.
		return fmt.Errorf("open video %q: %w (only cover art)", f.path, ErrNoVideoStream)
	}
	if w, h := int(st.codecpar.width), int(st.codecpar.height); w*h > f.opts.MaxFramePixels {
		return fmt.Errorf("open video %q: %w", f.path, frameTooLarge(w, h, f.opts.MaxFramePixels))
	}
	// Reading only the video stream saves demuxing (and counting) the rest.
	for i := range C.int(f.fmtCtx.nb_streams) {
		if i != f.stream {
			C.actiond_stream(f.fmtCtx, i).discard = C.AVDISCARD_ALL
		}
	}

	dec, err := newVideoDecoder(st.codecpar, f.opts.MaxFramePixels, 0)
	switch {
	case errors.Is(err, errNoDecoder):
		return fmt.Errorf("open video %q: %w: this FFmpeg build cannot decode %s",
			f.path, ErrUnsupportedCodec, codecName(st.codecpar))
	case err != nil:
		return fmt.Errorf("open video %q: open %s decoder: %w", f.path, codecName(st.codecpar), err)
	}
	f.dec = dec
	if f.pkt == nil {
		if f.pkt = C.av_packet_alloc(); f.pkt == nil {
			return fmt.Errorf("open video %q: %w", f.path, avError(avErrENOMEM))
		}
	}
	return nil
}

// probe finds the container of the file at url (libav's own probe, on the
// file alone) and refuses those not in containers.
func (f *VideoFile) probe(url *C.char) (*C.AVInputFormat, error) {
	var pb *C.AVIOContext
	if ret := C.avio_open2(&pb, url, C.AVIO_FLAG_READ, nil, nil); ret < 0 {
		if ret == avErrENOENT {
			return nil, fmt.Errorf("open video %q: %w", f.path, noSuchFile{})
		}
		return nil, fmt.Errorf("open video %q: %w", f.path, avError(ret))
	}
	defer C.avio_closep(&pb)
	var iformat *C.AVInputFormat
	if ret := C.av_probe_input_buffer2(pb, &iformat, url, nil, 0, 0); ret < 0 {
		if ret == C.AVERROR_INVALIDDATA {
			return nil, fmt.Errorf("open video %q: %w: %v", f.path, ErrNotVideo, avError(ret))
		}
		return nil, fmt.Errorf("open video %q: %w", f.path, avError(ret))
	}
	name := C.GoString(iformat.name)
	switch {
	case name == "tty":
		// The tty demuxer takes text files named .ans, .nfo, .asc ... and
		// renders them as ANSI-art video: not what a user means by a video.
		return nil, fmt.Errorf("open video %q: %w: it looks like text", f.path, ErrNotVideo)
	case !containerAllowed(name):
		return nil, fmt.Errorf("open video %q: %w: the file is %s (%s); actiond reads only single-file containers: %s",
			f.path, ErrContainerNotAllowed, name, C.GoString(iformat.long_name), containerList())
	}
	return iformat, nil
}

// interrupted returns the error of the file's context once it has ended.
func (f *VideoFile) interrupted(what string) error {
	if f.opts.Context == nil || f.opts.Context.Err() == nil {
		return nil
	}
	return fmt.Errorf("%s %q: %w", what, f.path, f.opts.Context.Err())
}

// detail returns err followed by the last error libav logged about the
// demuxer or the decoder, if any.
func (f *VideoFile) detail(err error) string {
	for _, w := range []*logWatch{f.decoderWatch(), f.watch} {
		if msg := w.last(); msg != "" {
			return fmt.Sprintf("%v (%s)", err, msg)
		}
	}
	return err.Error()
}

func (f *VideoFile) decoderWatch() *logWatch {
	if f.dec == nil {
		return nil
	}
	return f.dec.watch
}

// codecName names a stream's codec, falling back to its fourcc.
func codecName(par *C.AVCodecParameters) string {
	if par.codec_id != C.AV_CODEC_ID_NONE {
		return fmt.Sprintf("%q", C.GoString(C.avcodec_get_name(par.codec_id)))
	}
	var buf [C.AV_FOURCC_MAX_STRING_SIZE]C.char
	C.av_fourcc_make_string(&buf[0], C.uint32_t(par.codec_tag))
	return fmt.Sprintf("unknown codec (fourcc %q)", C.GoString(&buf[0]))
}

// closeStreams frees the demuxer and decoder (not the converter or packet,
// which survive a rewind).
func (f *VideoFile) closeStreams() {
	if f.watch != nil {
		f.watch.stop()
		f.watch = nil
	}
	if f.fmtCtx != nil {
		C.avformat_close_input(&f.fmtCtx)
	}
	if f.dec != nil {
		f.dec.close()
		f.dec = nil
	}
}

// rewind gets back to the first packet and a fresh decoder. It reopens the
// file instead of seeking: seeking to 0 is not exact in every container
// (raw streams, files without an index), reopening is.
func (f *VideoFile) rewind() error {
	if f.closed {
		return fmt.Errorf("video %q: %w", f.path, fs.ErrClosed)
	}
	if !f.used && f.dec != nil {
		return nil
	}
	stream := f.stream
	f.closeStreams()
	if err := f.open(); err != nil {
		return err
	}
	if f.stream != stream {
		return fmt.Errorf("open video %q: the file changed while open", f.path)
	}
	f.used = false
	return nil
}

// readInfo reads the stream's description from the container.
func (f *VideoFile) readInfo() VideoInfo {
	st := C.actiond_stream(f.fmtCtx, f.stream)
	info := VideoInfo{
		Width:  int(st.codecpar.width),
		Height: int(st.codecpar.height),
		Codec:  C.GoString(C.avcodec_get_name(st.codecpar.codec_id)),
	}
	if r := C.av_guess_frame_rate(f.fmtCtx, st, nil); r.num > 0 && r.den > 0 {
		info.FPS = float64(r.num) / float64(r.den)
	}
	ns := C.AVRational{num: 1, den: 1e9}
	switch {
	case st.duration != C.AV_NOPTS_VALUE && st.duration > 0:
		info.Duration = time.Duration(C.av_rescale_q(st.duration, st.time_base, ns))
	case f.fmtCtx.duration != C.AV_NOPTS_VALUE && f.fmtCtx.duration > 0:
		info.Duration = time.Duration(f.fmtCtx.duration) * (time.Second / C.AV_TIME_BASE)
	}
	return info
}

// Info describes the video stream.
func (f *VideoFile) Info() VideoInfo { return f.info }

// PacketsRead returns how many packets of the video stream the last Decode
// or CountFrames read from the container. It shows that Decode stops early.
func (f *VideoFile) PacketsRead() int { return f.packetsRead }

// PacketsSkipped returns how many of the packets the last Decode read it
// did not decode, because no wanted frame depends on them.
func (f *VideoFile) PacketsSkipped() int { return f.packetsSkipped }

// DecodeErrors returns how many packets or frames the last Decode could not
// decode. Such errors are skipped (the decoder conceals what it can); only a
// video with no decodable frame at all fails.
func (f *VideoFile) DecodeErrors() int { return f.decodeErrors }

// decoderThreads returns how many threads the decoder runs. Frame threads
// each hold a packet back, so they bound how far decoding runs ahead.
func (f *VideoFile) decoderThreads() int {
	if f.dec == nil {
		return 0
	}
	return int(f.dec.ctx.thread_count)
}

// CountFrames returns the number of frames as the reference counts them:
// decord's len(VideoReader) is the number of video packets found by
// demuxing the whole file, without decoding. The next Decode starts again
// from the first frame.
func (f *VideoFile) CountFrames() (int, error) {
	if err := f.rewind(); err != nil {
		return 0, err
	}
	f.used = true
	f.packetsRead, f.decodeErrors, f.packetsSkipped = 0, 0, 0
	f.startIndex()
	for {
		if err := f.interrupted("count frames of"); err != nil {
			f.index = nil
			f.freePackets()
			return 0, err
		}
		ret := C.av_read_frame(f.fmtCtx, f.pkt)
		if ret == avErrEOF {
			return f.packetsRead, nil
		}
		if ret < 0 {
			f.index = nil
			f.freePackets()
			return 0, fmt.Errorf("count frames of %q: read after %d packets: %s",
				f.path, f.packetsRead, f.detail(avError(ret)))
		}
		if f.pkt.stream_index == f.stream {
			f.packetsRead++
			f.recordPacket()
		}
		C.av_packet_unref(f.pkt)
	}
}

// Decode decodes the video from its first frame in presentation order and
// calls fn with each frame whose index is in want, as an RGB24 image at the
// native size. Index i is the i-th frame the decoder outputs (0-based), the
// reference's frame numbering. want must be ascending without duplicates.
//
// Decoding stops right after the last wanted frame. Frames that are not
// wanted are decoded (later frames reference them) but not converted;
// after CountFrames, pictures that no wanted frame depends on are not even
// decoded (see video_skip.go), which gives the same frames faster. An
// error from fn stops decoding and is returned as is. Decode fails if the
// video ends before a wanted index, or if no frame can be decoded at all.
func (f *VideoFile) Decode(want []int, fn func(index int, pts time.Duration, img *Image) error) error {
	for i, idx := range want {
		if idx < 0 || (i > 0 && idx <= want[i-1]) {
			return fmt.Errorf("decode %q: frame indices must be ascending, unique and >= 0, got %v", f.path, want)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if p := planSkips(f.index, want); p != nil {
		done, err := f.decodePlanned(p, want, fn)
		if !errors.Is(err, errPlanBroken) {
			return err
		}
		// Decode everything from the start, handing on only the
		// frames not handed on yet.
		slog.Debug("decoding every frame", "file", f.path, "reason", err)
		want = want[done:]
	}
	if err := f.rewind(); err != nil {
		return err
	}
	f.used = true
	f.packetsRead, f.decodeErrors, f.packetsSkipped = 0, 0, 0

	var (
		next     int   // position in want
		decoded  int   // frames output by the decoder so far
		lastErr  error // last decode error, for the "nothing decoded" case
		draining bool
	)
	for {
		// Take every frame the decoder has ready before feeding it more.
		for errs := 0; ; {
			ok, err := f.dec.receive()
			if err != nil {
				f.decodeErrors++
				lastErr = err
				// A failed frame does not end draining: frame threads
				// report their errors one call at a time. Bounded in
				// case a decoder repeats an error forever.
				if errs++; draining && errs < 64 {
					continue
				}
				break
			}
			if !ok {
				break
			}
			idx := decoded
			decoded++
			if idx != want[next] {
				C.av_frame_unref(f.dec.frame)
				continue
			}
			if err := f.handOn(idx, fn); err != nil {
				return err
			}
			if next++; next == len(want) {
				return nil
			}
		}
		if draining {
			break
		}
		if err := f.interrupted("decode"); err != nil {
			return err
		}

		ret := C.av_read_frame(f.fmtCtx, f.pkt)
		if ret < 0 {
			// End of file, or a damaged tail: either way the decoder
			// still holds delayed frames, which a NULL packet releases.
			if ret != avErrEOF {
				lastErr = avError(ret)
			}
			draining = true
			if err := f.dec.send(nil); err != nil {
				lastErr = err
			}
			continue
		}
		if f.pkt.stream_index != f.stream {
			C.av_packet_unref(f.pkt)
			continue
		}
		f.packetsRead++
		err := f.dec.send(f.pkt)
		C.av_packet_unref(f.pkt)
		if err != nil {
			f.decodeErrors++
			lastErr = err
		}
	}

	if decoded == 0 {
		detail := "the video stream is empty"
		if lastErr != nil {
			detail = f.detail(lastErr)
		}
		return fmt.Errorf("decode %q: %w: no frame decoded from %d packets (%d errors): %s",
			f.path, ErrCorrupt, f.packetsRead, f.decodeErrors, detail)
	}
	return fmt.Errorf("decode %q: frame %d wanted, but the video ends after %d frames", f.path, want[next], decoded)
}

// handOn converts the decoder's current frame, index idx, and hands it to
// fn; it returns fn's error as is.
func (f *VideoFile) handOn(idx int, fn func(int, time.Duration, *Image) error) error {
	// The container states the first size only; a raw stream may grow.
	if w, h := int(f.dec.frame.width), int(f.dec.frame.height); w*h > f.opts.MaxFramePixels {
		C.av_frame_unref(f.dec.frame)
		return fmt.Errorf("decode %q: frame %d: %w", f.path, idx, frameTooLarge(w, h, f.opts.MaxFramePixels))
	}
	pts := f.framePTS(idx)
	img, err := f.conv.convert(f.dec.frame)
	C.av_frame_unref(f.dec.frame)
	if err != nil {
		return fmt.Errorf("decode %q: frame %d: %w", f.path, idx, err)
	}
	return fn(idx, pts, img)
}

// framePTS returns the presentation time of the decoder's current frame,
// counted from the stream's start; frame index over frame rate when the
// container gives no timestamp.
func (f *VideoFile) framePTS(idx int) time.Duration {
	st := C.actiond_stream(f.fmtCtx, f.stream)
	ts := C.actiond_frame_pts(f.dec.frame)
	if ts == C.AV_NOPTS_VALUE {
		if f.info.FPS <= 0 {
			return 0
		}
		return time.Duration(float64(idx) / f.info.FPS * float64(time.Second))
	}
	if st.start_time != C.AV_NOPTS_VALUE {
		ts -= st.start_time
	}
	return time.Duration(C.av_rescale_q(ts, st.time_base, C.AVRational{num: 1, den: 1e9}))
}

// Close frees the file's C resources. It is safe to call more than once.
func (f *VideoFile) Close() error {
	f.closed = true
	f.freePackets()
	f.closeStreams()
	f.conv.close()
	if f.pkt != nil {
		C.av_packet_free(&f.pkt)
	}
	return nil
}
