package ingest

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/sdp"
	"github.com/pion/rtp"
)

// fuzzClip is a tiny scene encoded as a camera sends it: NAL units per
// access unit, SPS and PPS in band before every key frame.
type fuzzClip struct {
	aus      []accessUnit
	sps, pps []byte
}

func newFuzzClip(t testing.TB) fuzzClip {
	scene := testScene{Width: 64, Height: 48, FPS: 10, Duration: 2 * time.Second, Direction: Right}
	c := fuzzClip{aus: encodeScene(t, scene, 12)}
	for _, n := range c.aus[0].nalus {
		switch nalType(CodecH264, n) {
		case h264NALSPS:
			c.sps = n
		case h264NALPPS:
			c.pps = n
		}
	}
	if c.sps == nil || c.pps == nil {
		t.Fatal("the encoder gave no SPS/PPS")
	}
	return c
}

// rtpStream packetizes aus as the simulator does (rtph264, packetization
// mode 1) with at most mtu bytes of payload per packet, and frames each
// packet with a 2-byte big-endian length, as FuzzDepacketizeDecode reads
// its input. inBand false takes the SPS and PPS out of the access units.
func rtpStream(t testing.TB, aus []accessUnit, mtu int, inBand bool) []byte {
	seq := uint16(1000)
	enc := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: mtu, InitialSequenceNumber: &seq}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, au := range aus {
		nalus := au.nalus
		if !inBand {
			nalus = slices.DeleteFunc(slices.Clone(nalus), func(n []byte) bool {
				t := nalType(CodecH264, n)
				return t == h264NALSPS || t == h264NALPPS
			})
		}
		pkts, err := enc.Encode(nalus)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkts {
			p.Timestamp = 12345 + uint32(au.pts*90000/time.Second)
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
			out = append(out, b...)
		}
	}
	return out
}

// decodeQueued decodes what the source queued, converting small frames.
func decodeQueued(t *testing.T, s *source, dec *decoder) {
	for len(s.aus) > 0 {
		au := <-s.aus
		if len(au.nalus) == 0 {
			t.Fatal("an empty access unit was queued")
		}
		for _, n := range au.nalus {
			if len(n) == 0 {
				t.Fatal("an empty NAL unit was queued")
			}
		}
		err := dec.decode(au, func(m frameMeta, pic picture) error {
			defer pic.release()
			if m.width*m.height > 1<<20 {
				return nil // valid, but slow to convert
			}
			img, err := pic.image()
			if err != nil {
				return nil // counted nowhere: a frame the converter refuses
			}
			if img.W != m.width || img.H != m.height || len(img.Pix) != img.W*img.H*3 {
				t.Fatalf("frame %dx%d converted to %dx%d with %d bytes", m.width, m.height, img.W, img.H, len(img.Pix))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if dec.errors > 0 && dec.lastErr == nil {
		t.Fatal("decode errors counted without the last one kept")
	}
}

// quietLibav drops libav's log for the test: garbage makes a lot of it.
func quietLibav(t testing.TB) {
	SetLibavLogger(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { SetLibavLogger(nil) })
}

func newFuzzSource(track videoTrack) *source {
	s := &source{ctr: &sourceCounters{}, aus: make(chan accessUnit, 4), track: track}
	s.waitKey.Store(true)
	s.params.set(track.codec, track.params)
	return s
}

// FuzzDepacketizeDecode feeds RTP packets (each framed by a 2-byte length)
// through the path of a live stream: gortsplib's depacketizer, the source's
// access-unit gate (empty NAL units, random access, parameter sets from the
// SDP and in band) and the libav decoder, which is opened and closed every
// time. Nothing panics; the decoder counts what it rejects.
func FuzzDepacketizeDecode(f *testing.F) {
	quietLibav(f)
	clip := newFuzzClip(f)
	full := rtpStream(f, clip.aus, 1450, true)
	f.Add(full, false)
	f.Add(rtpStream(f, clip.aus[:3], 100, true), false) // FU-A fragments
	f.Add(rtpStream(f, clip.aus[:4], 1450, false), false)
	f.Add(full[:len(full)/2], false)
	garbled := slices.Clone(full)
	for i := 40; i < len(garbled); i += 97 {
		garbled[i] ^= 0x5a
	}
	f.Add(garbled, false)
	f.Add(rtpStream(f, clip.aus[:2], 1450, true), true) // H.264 read as H.265
	f.Add([]byte{}, false)

	f.Fuzz(func(t *testing.T, in []byte, h265 bool) {
		depacketizeDecode(t, clip, in, h265)
	})
}

// TestFuzzSeedsDecode checks that FuzzDepacketizeDecode's seed stream is
// real: every access unit comes out as a frame, without a decode error.
func TestFuzzSeedsDecode(t *testing.T) {
	clip := newFuzzClip(t)
	for _, mtu := range []int{1450, 100} {
		frames, errs := depacketizeDecode(t, clip, rtpStream(t, clip.aus, mtu, true), false)
		if frames < uint64(len(clip.aus))-4 || errs != 0 {
			t.Errorf("mtu %d: %d frames from %d access units, %d decode errors", mtu, frames, len(clip.aus), errs)
		}
	}
}

// depacketizeDecode is FuzzDepacketizeDecode's body; it returns the frames
// decoded and the decode errors counted.
func depacketizeDecode(t *testing.T, clip fuzzClip, in []byte, h265 bool) (frames, decodeErrors uint64) {
	var forma format.Format = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.sps, PPS: clip.pps}
	track := videoTrack{codec: CodecH264, params: [][]byte{clip.sps, clip.pps}}
	if h265 {
		forma, track = &format.H265{PayloadTyp: 96}, videoTrack{codec: CodecH265, params: [][]byte{nil, nil, nil}}
	}
	depacketize, err := newDepacketizer(forma)
	if err != nil {
		t.Fatal(err)
	}
	dec := testDecoder(t, track.codec, DefaultMaxFramePixels)
	s := newFuzzSource(track)
	var aus uint64
	for len(in) >= 2 {
		n := min(int(binary.BigEndian.Uint16(in)), len(in)-2)
		chunk := in[2 : 2+n]
		in = in[2+n:]
		var pkt rtp.Packet
		if pkt.Unmarshal(chunk) != nil {
			continue // gortsplib drops it before the depacketizer
		}
		nalus, err := depacketize(&pkt)
		if err != nil {
			if !waitingForPackets(err) {
				s.onError(err)
			}
			continue
		}
		aus++
		s.onAU(nalus, ticksToDuration(int64(pkt.Timestamp), 90000), time.Time{})
		decodeQueued(t, s, dec)
	}
	if got := s.ctr.received.Load(); got != aus {
		t.Fatalf("%d access units counted, %d arrived", got, aus)
	}
	return dec.frames, dec.errors
}

// FuzzSDPParameterSets feeds a DESCRIBE answer's SDP through gortsplib's
// parser, as the client does, then the source's track choice and parameter
// sets (sprop-parameter-sets and the like), an IDR picture that lacks them
// in band, and the decoder. Nothing panics; a chosen track is H.264 or
// H.265 and its parameter sets come before the picture.
func FuzzSDPParameterSets(f *testing.F) {
	quietLibav(f)
	clip := newFuzzClip(f)
	seed := func(forma format.Format) {
		desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
		b, err := desc.Marshal(false)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// What the simulator serves.
	seed(&format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: clip.sps, PPS: clip.pps})
	seed(&format.H264{PayloadTyp: 96, PacketizationMode: 1}) // parameter sets only in band
	seed(&format.H265{PayloadTyp: 97})
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n" +
		"m=video 0 RTP/AVP 96\r\na=control:trackID=1\r\na=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==\r\n"))
	f.Add([]byte("v=0\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 sprop-parameter-sets=,;\r\n"))
	f.Add([]byte("v=0\r\ns=x\r\nm=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\n"))
	// H.265 attributes that the library refuses: two values, not base64.
	f.Add([]byte("v=0\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n" +
		"a=fmtp:96 sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwA8lZgJ; sprop-sps=QgEBAWAAAAMAkAAAAwAAAwA8oAoIBWNlZSRMQlcwEA==,QgEBAWAAAAMAkAAAAwAAAwA8oAoIBWNlZSRMQlcwEA==; sprop-pps=%%%\r\n"))

	// The key frame without its in-band parameter sets, as a camera that
	// sends them only in the SDP does.
	idr := slices.DeleteFunc(slices.Clone(clip.aus[0].nalus), func(n []byte) bool {
		t := nalType(CodecH264, n)
		return t == h264NALSPS || t == h264NALPPS
	})

	f.Fuzz(func(t *testing.T, body []byte) {
		parse := func(b []byte) (*description.Session, bool) {
			var sd sdp.SessionDescription
			if sd.Unmarshal(b) != nil {
				return nil, false
			}
			var desc description.Session
			if desc.Unmarshal(&sd) != nil {
				return nil, false
			}
			return &desc, true
		}
		// The client hands the body to fixSDP first: it never makes a
		// description that parsed fail.
		_, parsed := parse(body)
		fixed, _, _ := fixSDP(slices.Clone(body))
		desc, ok := parse(fixed)
		if parsed && !ok {
			t.Fatalf("fixSDP broke a description that parsed:\n%q\nbecame\n%q", body, fixed)
		}
		if !ok {
			return
		}
		medi, forma, track, err := findVideoTrack(desc)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedCodec) {
				t.Fatalf("no track, and not for want of a codec: %v", err)
			}
			return
		}
		if medi == nil || !slices.Contains(medi.Formats, forma) {
			t.Fatalf("track %v not in the media %v", forma, medi)
		}
		switch track.codec {
		case CodecH264:
			if _, ok := forma.(*format.H264); !ok || len(track.params) != 2 {
				t.Fatalf("H.264 track from %T with %d parameter sets", forma, len(track.params))
			}
		case CodecH265:
			if _, ok := forma.(*format.H265); !ok || len(track.params) != 3 {
				t.Fatalf("H.265 track from %T with %d parameter sets", forma, len(track.params))
			}
		default:
			t.Fatalf("track of codec %q", track.codec)
		}
		if _, err := newDepacketizer(forma); err != nil {
			return // the client's play fails too
		}
		s := newFuzzSource(track)
		dec := testDecoder(t, track.codec, DefaultMaxFramePixels)
		s.onAU(slices.Clone(idr), 0, time.Time{})
		if track.codec == CodecH264 && len(s.aus) == 1 {
			au := <-s.aus
			want := 0
			for _, ps := range s.params.all() {
				if want >= len(au.nalus) || !slices.Equal(au.nalus[want], ps) {
					t.Fatalf("parameter set %x not prepended: %x", ps, au.nalus)
				}
				want++
			}
			s.aus <- au
		}
		decodeQueued(t, s, dec)
	})
}
