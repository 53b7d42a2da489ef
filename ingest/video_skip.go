package ingest

/*
#include "libav_helpers.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Decoding only what the wanted frames need.
//
// Decode wants a few frames (16 of a clip's hundreds) by their index in
// presentation order. Two kinds of pictures cannot change them, and are not
// worth decoding when they are not wanted themselves:
//
//   - non-reference pictures (H.264 nal_ref_idc 0, most B frames): no other
//     picture predicts from them;
//   - reference pictures after the last wanted one of their IDR period: an
//     IDR picture empties the decoder's reference buffer, so nothing at or
//     after it reads them.
//
// CountFrames already reads every packet, so it records what Decode needs
// for that: each packet's pts (which gives its presentation index: the
// decoder outputs one frame per packet, in pts order) and whether it is a
// reference or IDR picture. Decode then feeds the decoder only the packets a
// wanted frame depends on and drains it after the last of them instead of
// reading on.
//
// Skipping must not change which frame an index names, so it is checked as
// it goes: every frame the decoder outputs must carry the pts of the next
// packet it was given, in presentation order. The first frame that does not
// (a packet that made no frame or two, a decode error, a timestamp the
// container got wrong) abandons the plan and Decode starts again without
// skipping, from the first wanted frame not yet delivered.

// packetInfo is what CountFrames learns about one packet of the video
// stream, in decoding order.
type packetInfo struct {
	pts int64 // container pts; noPTSValue when it has none
	ref bool  // later pictures may predict from it
	idr bool  // no picture at or after it predicts from one before it
}

// skipPlan says which packets (in decoding order) Decode sends.
type skipPlan struct {
	need     []bool
	last     int     // the last packet needed
	rankOf   []int   // presentation index of each packet
	rankPTS  []int64 // pts of each presentation index
	sent     []int   // presentation indices of the needed packets, ascending
	skipping int     // packets not needed before last
}

// noPTSValue is libav's AV_NOPTS_VALUE, for code that cannot use cgo.
const noPTSValue = math.MinInt64

// errPlanBroken abandons a skip plan: the decoder did not do what the
// packet index predicted. Decode then decodes everything.
var errPlanBroken = errors.New("skip plan broken")

// h264NALLengthSize returns the size of the NAL length prefix that an
// "avcC" extradata announces; 0 for Annex-B streams (start codes), which
// have no avcC.
func h264NALLengthSize(extradata []byte) int {
	if len(extradata) >= 7 && extradata[0] == 1 {
		return int(extradata[4]&3) + 1
	}
	return 0
}

// h264PacketInfo reads the NAL unit headers of one H.264 packet (one access
// unit) and says whether it is a reference and an IDR picture. ok is false
// when it holds no coded slice or cannot be parsed; such a packet is then
// treated as a reference, and the plan's checks decide.
func h264PacketInfo(data []byte, lengthSize int) (ref, idr, ok bool) {
	visit := func(nal []byte) {
		if len(nal) == 0 {
			return
		}
		switch typ := nal[0] & 0x1f; typ {
		case 1, 5: // coded slice of a non-IDR / IDR picture
			ok = true
			// All slices of a picture carry the same nal_ref_idc.
			ref = ref || nal[0]&0x60 != 0
			idr = idr || typ == 5
		}
	}
	if lengthSize > 0 {
		for len(data) > 0 {
			if len(data) < lengthSize {
				return true, false, false
			}
			var n uint64
			for _, b := range data[:lengthSize] {
				n = n<<8 | uint64(b)
			}
			data = data[lengthSize:]
			if n > uint64(len(data)) {
				return true, false, false
			}
			visit(data[:n])
			data = data[n:]
		}
	} else {
		var nalus h264.AnnexB
		if err := nalus.Unmarshal(data); err != nil {
			return true, false, false
		}
		for _, nal := range nalus {
			visit(nal)
		}
	}
	if !ok {
		return true, false, false
	}
	return ref, idr, true
}

// maxCachedPacketBytes bounds the packets CountFrames keeps for Decode:
// a 10 s 1080p clip is about 10 MB of H.264; a longer file is demuxed
// again instead.
const maxCachedPacketBytes = 64 << 20

// recordPacket adds f.pkt to the packet index when the codec lets Decode
// skip pictures, and keeps a reference to it while they fit in
// maxCachedPacketBytes; it is called by CountFrames for each video packet.
func (f *VideoFile) recordPacket() {
	if f.index == nil {
		return
	}
	info := packetInfo{pts: int64(f.pkt.pts), ref: true}
	data := unsafe.Slice((*byte)(unsafe.Pointer(f.pkt.data)), int(f.pkt.size))
	if ref, idr, ok := h264PacketInfo(data, f.nalLengthSize); ok {
		info.ref, info.idr = ref, idr
	}
	f.index = append(f.index, info)
	if !f.caching {
		return
	}
	f.cachedBytes += int(f.pkt.size)
	var c *C.AVPacket
	if f.cachedBytes <= maxCachedPacketBytes {
		c = C.av_packet_clone(f.pkt)
	}
	if c == nil {
		f.freePackets()
		f.caching = false
		return
	}
	f.packets = append(f.packets, c)
}

// freePackets drops the packets CountFrames kept.
func (f *VideoFile) freePackets() {
	for i := range f.packets {
		C.av_packet_free(&f.packets[i])
	}
	f.packets, f.cachedBytes = nil, 0
}

// reopenDecoder replaces a used decoder by a fresh one, leaving the
// demuxer where it is.
func (f *VideoFile) reopenDecoder() error {
	f.dec.close()
	f.dec = nil
	dec, err := newVideoDecoder(C.actiond_stream(f.fmtCtx, f.stream).codecpar, f.opts.MaxFramePixels, 0)
	if err != nil {
		return fmt.Errorf("decode %q: reopen decoder: %w", f.path, err)
	}
	f.dec = dec
	return nil
}

// startIndex prepares CountFrames to build the packet index, for codecs
// whose picture types it can read (H.264).
func (f *VideoFile) startIndex() {
	f.index = nil
	f.freePackets()
	par := C.actiond_stream(f.fmtCtx, f.stream).codecpar
	if par.codec_id != C.AV_CODEC_ID_H264 {
		return
	}
	f.index = make([]packetInfo, 0, 256)
	f.packets = make([]*C.AVPacket, 0, 256)
	f.caching = true
	f.nalLengthSize = 0
	if par.extradata != nil && par.extradata_size > 0 {
		f.nalLengthSize = h264NALLengthSize(unsafe.Slice((*byte)(unsafe.Pointer(par.extradata)), int(par.extradata_size)))
	}
}

// planSkips returns the packets to decode for the wanted frames (ascending
// presentation indices), or nil when the packet index cannot say: none was
// built, a packet has no pts or shares one, or a wanted index is past the
// end.
func planSkips(index []packetInfo, want []int) *skipPlan {
	n := len(index)
	if n == 0 || len(want) == 0 || want[len(want)-1] >= n {
		return nil
	}
	order := make([]int, n) // packets in presentation order
	for i := range order {
		order[i] = i
		if index[i].pts == noPTSValue {
			return nil
		}
	}
	slices.SortFunc(order, func(a, b int) int { return cmpInt64(index[a].pts, index[b].pts) })
	p := &skipPlan{need: make([]bool, n), rankOf: make([]int, n), rankPTS: make([]int64, n)}
	for r, k := range order {
		if r > 0 && index[k].pts == p.rankPTS[r-1] {
			return nil
		}
		p.rankOf[k], p.rankPTS[r] = r, index[k].pts
	}
	for _, w := range want {
		p.need[order[w]] = true
	}
	// Backwards: a reference picture is needed when a wanted picture
	// follows it in decoding order before the next IDR picture.
	wantedAhead := false
	p.last = -1
	for k := n - 1; k >= 0; k-- {
		if p.need[k] {
			wantedAhead = true
		} else if index[k].ref && wantedAhead {
			p.need[k] = true
		}
		if p.need[k] && p.last < 0 {
			p.last = k
		}
		if index[k].idr {
			wantedAhead = false
		}
	}
	for k := 0; k <= p.last; k++ {
		if p.need[k] {
			p.sent = append(p.sent, p.rankOf[k])
		} else {
			p.skipping++
		}
	}
	slices.Sort(p.sent)
	return p
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// decodePlanned decodes the wanted frames with the plan's packets only. It
// returns how many of want it handed to fn; errPlanBroken when the decoder
// strayed from the plan, fn's error as is, or a read error.
func (f *VideoFile) decodePlanned(p *skipPlan, want []int, fn func(int, time.Duration, *Image) error) (int, error) {
	// The packets CountFrames kept spare opening and demuxing the file a
	// second time; the decoder must be fresh all the same.
	cached := len(f.packets) == len(p.need)
	switch {
	case !cached:
		if err := f.rewind(); err != nil {
			return 0, err
		}
	case f.dec.sent:
		if err := f.reopenDecoder(); err != nil {
			return 0, err
		}
	}
	f.used = true
	f.packetsRead, f.decodeErrors, f.packetsSkipped = 0, 0, 0
	var (
		next     int // position in want
		out      int // frames output so far: position in p.sent
		k        int // packets of the video stream read so far
		draining bool
	)
	for {
		for {
			ok, err := f.dec.receive()
			if err != nil {
				return next, fmt.Errorf("%w: %w", errPlanBroken, err)
			}
			if !ok {
				break
			}
			pts := int64(f.dec.frame.pts)
			if out >= len(p.sent) || pts != p.rankPTS[p.sent[out]] {
				C.av_frame_unref(f.dec.frame)
				return next, fmt.Errorf("%w: frame %d out of the decoder has pts %d", errPlanBroken, out, pts)
			}
			idx := p.sent[out]
			out++
			if idx != want[next] {
				C.av_frame_unref(f.dec.frame)
				continue
			}
			if err := f.handOn(idx, fn); err != nil {
				return next, err
			}
			if next++; next == len(want) {
				return next, nil
			}
		}
		if draining {
			return next, fmt.Errorf("%w: the decoder ran dry after %d of %d frames", errPlanBroken, out, len(p.sent))
		}
		if k > p.last {
			draining = true
			if err := f.dec.send(nil); err != nil {
				return next, fmt.Errorf("%w: %w", errPlanBroken, err)
			}
			continue
		}
		if err := f.interrupted("decode"); err != nil {
			return next, err
		}
		pkt := f.pkt
		if cached {
			pkt = f.packets[k]
		} else {
			ret := C.av_read_frame(f.fmtCtx, f.pkt)
			if ret < 0 {
				return next, fmt.Errorf("%w: read packet %d: %w", errPlanBroken, k, avError(ret))
			}
			if f.pkt.stream_index != f.stream {
				C.av_packet_unref(f.pkt)
				continue
			}
		}
		f.packetsRead++
		pos := k
		k++
		err := error(nil)
		switch {
		case int64(pkt.pts) != p.rankPTS[p.rankOf[pos]]:
			err = fmt.Errorf("%w: packet %d has another pts than when counted", errPlanBroken, pos)
		case !p.need[pos]:
			f.packetsSkipped++
		default:
			if err = f.dec.send(pkt); err != nil {
				err = fmt.Errorf("%w: %w", errPlanBroken, err)
			}
		}
		if !cached {
			C.av_packet_unref(f.pkt)
		}
		if err != nil {
			return next, err
		}
	}
}
