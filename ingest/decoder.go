package ingest

/*
#include <malloc.h>
#include "libav_helpers.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// Codec is a video codec that live sources deliver.
type Codec string

// Codecs the RTSP source reads.
const (
	CodecH264 Codec = "H264"
	CodecH265 Codec = "H265"
)

// accessUnit is one encoded picture as it came off the network: its NAL
// units (without start codes) and timestamps.
type accessUnit struct {
	nalus  [][]byte
	pts    time.Duration // from the connection's first frame
	recv   time.Time     // when it arrived
	ntp    time.Time     // capture time from RTCP sender reports; zero if none yet
	random bool          // a random access point (IDR, CRA, ...)
	conn   uint64        // which connection of the stream it came over
}

// liveDecoderThreads is the decoding threads of a live stream: one. A
// server decodes its streams side by side, so their decoders fill the
// cores without threads of their own. libavcodec's automatic count (one
// per core and one more, up to 16) would have each of them decode a frame
// at once, in a buffer of its own (1.4 MB at 720p), and deliver frames
// that many frames late: per-stream memory and latency would grow with the
// machine's cores.
const liveDecoderThreads = 1

// decoder turns access units into frames with libavcodec. It does not
// convert frames: it hands each one, still in the decoder's pixel format,
// to a callback as a picture that the window converts only if it keeps it.
// It is not safe for concurrent use.
type decoder struct {
	codec Codec
	dec   *videoDecoder
	pkt   *C.AVPacket
	conv  *rgbConverter // converts the pictures; owned by the caller
	buf   []byte        // Annex-B staging of the access unit
	pics  *picturePool  // pictures handed out and back, reused

	// pending remembers the metadata of access units the decoder still
	// holds (frame threads and reordering delay output), by pts.
	pending    [32]frameMeta
	pendingPTS [32]time.Duration
	next       int

	maxPixels int // the largest frame, width times height

	errors  uint64 // packets or frames the decoder rejected
	frames  uint64 // frames decoded
	lastErr error  // the last decode error, for status
}

// newDecoder opens a libavcodec decoder for codec. Pictures it makes are
// converted by conv, which must outlive them.
func newDecoder(codec Codec, conv *rgbConverter) (*decoder, error) {
	return newDecoderMax(codec, conv, DefaultMaxFramePixels)
}

// newDecoderMax is newDecoder for frames of at most maxPixels (width times
// height): a larger one is ErrFrameTooLarge from decode, and never
// allocated.
func newDecoderMax(codec Codec, conv *rgbConverter, maxPixels int) (*decoder, error) {
	libavInit()
	var id C.enum_AVCodecID
	switch codec {
	case CodecH264:
		id = C.AV_CODEC_ID_H264
	case CodecH265:
		id = C.AV_CODEC_ID_HEVC
	default:
		return nil, fmt.Errorf("open %s decoder: %w", codec, ErrUnsupportedCodec)
	}
	par := C.avcodec_parameters_alloc()
	if par == nil {
		return nil, fmt.Errorf("open %s decoder: %w", codec, avError(avErrENOMEM))
	}
	defer C.avcodec_parameters_free(&par)
	par.codec_type = C.AVMEDIA_TYPE_VIDEO
	par.codec_id = id
	dec, err := newVideoDecoder(par, maxPixels, liveDecoderThreads)
	switch {
	case errors.Is(err, errNoDecoder):
		return nil, fmt.Errorf("open %s decoder: %w: this FFmpeg build cannot decode it", codec, ErrUnsupportedCodec)
	case err != nil:
		return nil, fmt.Errorf("open %s decoder: %w", codec, err)
	}
	d := &decoder{codec: codec, dec: dec, conv: conv, pkt: C.av_packet_alloc(), pics: &picturePool{}, maxPixels: maxPixels}
	if d.pkt == nil {
		d.close()
		return nil, fmt.Errorf("open %s decoder: %w", codec, avError(avErrENOMEM))
	}
	return d, nil
}

// decode decodes one access unit and calls fn with each frame that the
// decoder outputs, in presentation order. fn owns the picture: it must
// release it. Decode errors are counted, not returned (the decoder conceals
// what it can and recovers at the next random access point); decode returns
// fn's error, and ErrFrameTooLarge for a sequence parameter set that
// announces frames over the decoder's limit (before any is decoded).
func (d *decoder) decode(au accessUnit, fn func(frameMeta, picture) error) error {
	d.buf = d.buf[:0]
	for _, n := range au.nalus {
		if err := d.checkSize(n); err != nil {
			return err
		}
		d.buf = append(d.buf, 0, 0, 0, 1)
		d.buf = append(d.buf, n...)
	}
	if len(d.buf) == 0 {
		return nil
	}
	if err := avErr(C.av_new_packet(d.pkt, C.int(len(d.buf)))); err != nil {
		d.fail(err)
		return nil
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(d.pkt.data)), len(d.buf)), d.buf)
	d.pkt.pts = C.int64_t(au.pts)
	if au.random {
		d.pkt.flags |= C.AV_PKT_FLAG_KEY
	}
	d.remember(au)
	err := d.dec.send(d.pkt)
	C.av_packet_unref(d.pkt)
	if err != nil {
		d.fail(err)
	}
	for errs := 0; errs < 8; {
		ok, err := d.dec.receive()
		if err != nil {
			// Frame threads report one error per call; a bound keeps a
			// decoder that repeats one forever from spinning here.
			d.fail(err)
			errs++
			continue
		}
		if !ok {
			return nil
		}
		d.frames++
		pic := d.pics.get(d.conv)
		if pic == nil {
			C.av_frame_unref(d.dec.frame)
			d.fail(avError(avErrENOMEM))
			continue
		}
		C.av_frame_move_ref(pic.f, d.dec.frame)
		m := d.lookup(time.Duration(C.actiond_frame_pts(pic.f)), au)
		m.width, m.height = int(pic.f.width), int(pic.f.height)
		if err := fn(m, pic); err != nil {
			return err
		}
	}
	return nil
}

// checkSize returns ErrFrameTooLarge when nalu is a sequence parameter set
// for frames over the decoder's limit. One that does not parse is left to
// libavcodec, which allocates no frame over the limit either.
func (d *decoder) checkSize(nalu []byte) error {
	if len(nalu) == 0 {
		return nil
	}
	w, h := 0, 0
	switch {
	case d.codec == CodecH264 && h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeSPS:
		var sps h264.SPS
		if sps.Unmarshal(nalu) != nil {
			return nil
		}
		w, h = sps.Width(), sps.Height()
	case d.codec == CodecH265 && h265.NALUType((nalu[0]>>1)&0x3f) == h265.NALUType_SPS_NUT:
		var sps h265.SPS
		if sps.Unmarshal(nalu) != nil {
			return nil
		}
		w, h = sps.Width(), sps.Height()
	}
	if w*h > d.maxPixels {
		return frameTooLarge(w, h, d.maxPixels)
	}
	return nil
}

// fail counts a decode error.
func (d *decoder) fail(err error) {
	d.errors++
	if msg := d.dec.watch.last(); msg != "" {
		err = fmt.Errorf("%w (%s)", err, msg)
	}
	d.lastErr = err
}

// remember keeps au's metadata until its frame comes out.
func (d *decoder) remember(au accessUnit) {
	i := d.next % len(d.pending)
	d.pending[i] = frameMeta{pts: au.pts, conn: au.conn, recv: au.recv, ntp: au.ntp}
	d.pendingPTS[i] = au.pts
	d.next++
}

// lookup returns the metadata of the access unit with the given pts; cur
// stands in when the decoder made one up.
func (d *decoder) lookup(pts time.Duration, cur accessUnit) frameMeta {
	// Newest first: after a timestamp jump back, an old entry may carry
	// the same pts.
	for j := 1; j <= len(d.pending); j++ {
		i := ((d.next-j)%len(d.pending) + len(d.pending)) % len(d.pending)
		if d.pendingPTS[i] == pts && !d.pending[i].recv.IsZero() {
			return d.pending[i]
		}
	}
	return frameMeta{pts: pts, conn: cur.conn, recv: cur.recv, ntp: cur.ntp}
}

// close frees the decoder. Pictures it made stay valid (libav counts
// references to frame buffers) as long as the converter does.
func (d *decoder) close() {
	if d.dec != nil {
		d.dec.close()
		d.dec = nil
	}
	if d.pkt != nil {
		C.av_packet_free(&d.pkt)
	}
	if d.pics != nil {
		d.pics.close()
	}
}

// avPicture is a decoded frame that holds a reference to the decoder's
// buffer until released.
type avPicture struct {
	f    *C.AVFrame
	conv *rgbConverter
	pool *picturePool // takes it back on release
}

// picturePool keeps released pictures (and their AVFrames) for the next
// frames: a live stream decodes frame after frame, and the window holds at
// most two pictures at a time, so a couple of them serve the whole stream
// without an allocation, Go or C, per frame. The stream's goroutine uses
// it, as it does the decoder; not safe for concurrent use.
type picturePool struct {
	free   []*avPicture
	closed bool // the decoder is gone: released pictures are freed
}

// get returns an empty picture; nil when out of memory.
func (pp *picturePool) get(conv *rgbConverter) *avPicture {
	if n := len(pp.free); n > 0 {
		p := pp.free[n-1]
		pp.free = pp.free[:n-1]
		p.conv = conv
		return p
	}
	f := C.av_frame_alloc()
	if f == nil {
		return nil
	}
	return &avPicture{f: f, conv: conv, pool: pp}
}

// close frees the pooled pictures; pictures still out are freed when
// released.
func (pp *picturePool) close() {
	pp.closed = true
	for _, p := range pp.free {
		C.av_frame_free(&p.f)
	}
	pp.free = nil
}

func (p *avPicture) image() (*Image, error) {
	if p.f == nil || p.f.buf[0] == nil {
		return nil, errors.New("convert frame: picture already released")
	}
	return p.conv.convert(p.f)
}

// imageInto converts the picture into dst, reusing dst's pixels.
func (p *avPicture) imageInto(dst *Image) error {
	if p.f == nil || p.f.buf[0] == nil {
		return errors.New("convert frame: picture already released")
	}
	return p.conv.convertInto(p.f, dst)
}

func (p *avPicture) release() {
	if p.f == nil || p.f.buf[0] == nil {
		return
	}
	C.av_frame_unref(p.f)
	if p.pool == nil || p.pool.closed {
		C.av_frame_free(&p.f)
		return
	}
	p.pool.free = append(p.pool.free, p)
}

// cHeapInUse returns the bytes that C code (libav) holds from malloc, for
// tests that check that every C object is freed.
func cHeapInUse() int64 {
	mi := C.mallinfo2()
	return int64(mi.uordblks) + int64(mi.hblkhd)
}
