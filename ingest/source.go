package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// Errors of live sources that callers test with errors.Is.
var (
	// ErrNoAnswer: the camera did not answer within the connect timeout.
	ErrNoAnswer = errors.New("no answer")
	// ErrReadTimeout: the connection stayed open but no video arrived
	// within the read timeout.
	ErrReadTimeout = errors.New("read timeout")
	// ErrUnauthorized: the camera refused the credentials (or their
	// absence).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNoDecodableVideo: video arrived for the read timeout but none of
	// it decoded: no key frame or recovery point to start at, or nothing
	// the decoder could use.
	ErrNoDecodableVideo = errors.New("no decodable video")
)

// Transport is how RTP packets travel from the camera.
type Transport string

// Transports a stream can ask for.
const (
	// TransportAuto tries UDP and falls back to TCP when the camera
	// refuses UDP or no UDP packet arrives (a firewall, NAT).
	TransportAuto Transport = "auto"
	TransportUDP  Transport = "udp"
	TransportTCP  Transport = "tcp"
)

// rtspClient is what a source needs from an RTSP client library, for one
// connection. source_gortsplib.go implements it on gortsplib v4: moving to
// another version or library touches that file only.
type rtspClient interface {
	// describe connects and reads the stream's description; it returns
	// the video track the source will read.
	describe() (videoTrack, error)
	// play sets up the video track and starts playing it. The callbacks
	// given to newRTSPClient run from then on.
	play() error
	// transport says how packets arrive ("UDP", "TCP"), once playing.
	transport() string
	// received counts the video track's packets that have arrived: RTP
	// as the client hands them on, and RTCP, which keeps coming while the
	// client holds RTP packets back to put them in order.
	received() uint64
	// done is closed when the connection has ended, err says why.
	done() <-chan struct{}
	err() error
	// close ends the connection and waits for the client's goroutines.
	// It may be called concurrently with describe and play, which then
	// fail, and more than once.
	close()
}

// videoTrack is the video of a stream as its description (SDP) gives it.
type videoTrack struct {
	codec  Codec
	params [][]byte // parameter sets (VPS, SPS, PPS) from the SDP; may be empty
}

// clientConfig is what an rtspClient is made from.
type clientConfig struct {
	url            *url.URL // with credentials
	transport      Transport
	timeout        time.Duration  // dial and each request
	readTimeout    time.Duration  // the stream's: UDP must deliver well within it
	tlsFingerprint string         // hex SHA-256 of the server's certificate; "" verifies it the usual way
	hosts          *hostlist.List // where it may connect; nil: anywhere
	conns          *connSet       // the stream's connections, for Cut; nil: not tracked
	log            *slog.Logger
}

// clientCallbacks are called on the network read path: they must not block.
type clientCallbacks struct {
	// onAU gets each complete access unit (NAL units without start
	// codes) with its presentation time from the connection's first frame
	// and, once RTCP sender reports have come, its capture time.
	onAU func(nalus [][]byte, pts time.Duration, ntp time.Time)
	// onLost gets the number of RTP packets found missing.
	onLost func(packets uint64)
	// onError gets packets that could not be depacketized.
	onError func(err error)
}

// sourceCounters are the stream's counters that the network read path
// updates; the stream's status reads them.
type sourceCounters struct {
	received          atomic.Uint64 // access units that arrived
	dropped           atomic.Uint64 // dropped because the decoder queue was full
	skipped           atomic.Uint64 // skipped while waiting for a random access point
	lost              atomic.Uint64 // RTP packets lost
	depacketizeErrors atomic.Uint64 // packets that made no sense
}

// source is one connection to a camera: it plays the stream's video and
// queues its access units for the decoder. The queue is bounded: when the
// decoder falls behind, the network read path drops the access unit, counts
// it, and skips to the next random access point (decoding in between would
// only make broken pictures).
type source struct {
	redacted string
	conn     uint64
	ctr      *sourceCounters
	client   rtspClient
	track    videoTrack
	aus      chan accessUnit

	// The read path's state. Callbacks come from one goroutine at a time
	// (the client's reader), but the atomics keep that an implementation
	// detail of the client.
	waitKey  atomic.Bool  // skip access units until a random access point
	lastRecv atomic.Int64 // unix nanoseconds of the last access unit
	params   paramSets    // the latest parameter sets, in band or from the SDP

	// silence's own, on the pipeline's goroutine: the client's byte count
	// and when it last grew.
	bytes   uint64
	bytesAt time.Time
}

// sourceConfig configures openSource.
type sourceConfig struct {
	url            *url.URL
	transport      Transport
	connectTimeout time.Duration
	readTimeout    time.Duration
	queueSize      int
	tlsFingerprint string
	hosts          *hostlist.List // where it may connect; nil: anywhere
	conns          *connSet       // the stream's connections, for Cut; nil: not tracked
	conn           uint64         // connection number, stamped on access units
}

// openSource connects to the camera and starts playing, within the connect
// timeout. Its errors never contain credentials.
func openSource(ctx context.Context, cfg sourceConfig, ctr *sourceCounters, log *slog.Logger) (*source, error) {
	s := &source{
		redacted: RedactURL(cfg.url.String()),
		conn:     cfg.conn,
		ctr:      ctr,
		aus:      make(chan accessUnit, cfg.queueSize),
	}
	s.waitKey.Store(true) // a decoder must start at a random access point
	client, err := newRTSPClient(clientConfig{
		url:            cfg.url,
		transport:      cfg.transport,
		timeout:        cfg.connectTimeout,
		readTimeout:    cfg.readTimeout,
		tlsFingerprint: cfg.tlsFingerprint,
		hosts:          cfg.hosts,
		conns:          cfg.conns,
		log:            log,
	}, clientCallbacks{onAU: s.onAU, onLost: s.onLost, onError: s.onError})
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", s.redacted, redactErr(err, cfg.url))
	}
	s.client = client

	cctx, cancel := context.WithTimeout(ctx, cfg.connectTimeout)
	defer cancel()
	// The client's calls block; closing it is what ends them early.
	stop := context.AfterFunc(cctx, client.close)
	s.track, err = client.describe()
	if err == nil {
		s.params.set(s.track.codec, s.track.params)
		err = client.play()
	}
	if !stop() && err == nil {
		err = cctx.Err() // the deadline came just as PLAY succeeded
	}
	if err != nil {
		client.close()
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(cctx.Err(), context.DeadlineExceeded) || errors.Is(err, ErrNoAnswer):
			return nil, fmt.Errorf("connect %s: %w within %v", s.redacted, ErrNoAnswer, cfg.connectTimeout)
		}
		return nil, fmt.Errorf("connect %s: %w", s.redacted, redactErr(err, cfg.url))
	}
	s.lastRecv.Store(time.Now().UnixNano())
	s.bytesAt = time.Now()
	return s, nil
}

// onAU runs on the network read path: it only sorts out parameter sets and
// random access, and queues.
func (s *source) onAU(nalus [][]byte, pts time.Duration, ntp time.Time) {
	now := time.Now()
	s.lastRecv.Store(now.UnixNano())
	s.ctr.received.Add(1)
	nalus = dropEmpty(nalus)
	if len(nalus) == 0 {
		return
	}
	codec := s.track.codec
	s.params.update(codec, nalus)
	random := isRandomAccess(codec, nalus)
	if s.waitKey.Load() {
		if !random {
			s.ctr.skipped.Add(1)
			return
		}
		s.waitKey.Store(false)
	}
	if random {
		// Cameras that send parameter sets only in the SDP (or only now
		// and then) still give the decoder what it needs at every entry
		// point.
		nalus = s.params.prepend(codec, nalus)
	}
	au := accessUnit{nalus: nalus, pts: pts, recv: now, ntp: ntp, random: random, conn: s.conn}
	select {
	case s.aus <- au:
	default:
		s.ctr.dropped.Add(1)
		s.waitKey.Store(true)
	}
}

func (s *source) onLost(packets uint64) {
	s.ctr.lost.Add(packets)
	// The access unit that lost them is broken, and so are the ones that
	// refer to it: resume at the next random access point.
	s.waitKey.Store(true)
}

func (s *source) onError(error) {
	s.ctr.depacketizeErrors.Add(1)
	s.waitKey.Store(true)
}

// sinceLast is how long ago the last access unit arrived.
func (s *source) sinceLast() time.Duration {
	return time.Since(time.Unix(0, s.lastRecv.Load()))
}

// silence tells whether the camera has gone quiet, called every few
// hundred milliseconds on the pipeline's goroutine: it is lost when no
// access unit has come for readTimeout and no packet either (RTP or RTCP:
// a stall, a dead link), or when packets come but no access unit for four
// times that (nothing it sends makes a picture). Over UDP, gortsplib holds every
// packet after a lost one until the lost one or 64 later ones arrive: at
// the tens of packets per second of a small or slow stream, 5% loss alone
// withholds whole seconds of video that is on its way.
func (s *source) silence(readTimeout time.Duration) (time.Duration, error) {
	now := time.Now()
	if n := s.client.received(); n != s.bytes {
		s.bytes, s.bytesAt = n, now
	}
	quiet := s.sinceLast()
	switch {
	case quiet >= readTimeout && now.Sub(s.bytesAt) >= readTimeout:
		return quiet, fmt.Errorf("%w: no video for %v", ErrReadTimeout, quiet.Round(time.Millisecond))
	case quiet >= 4*readTimeout:
		return quiet, fmt.Errorf("%w: packets arrive, but no video for %v", ErrReadTimeout, quiet.Round(time.Millisecond))
	}
	return quiet, nil
}

// close ends the connection. Access units still queued are dropped.
func (s *source) close() { s.client.close() }

func dropEmpty(nalus [][]byte) [][]byte {
	for _, n := range nalus {
		if len(n) == 0 {
			out := make([][]byte, 0, len(nalus))
			for _, n := range nalus {
				if len(n) > 0 {
					out = append(out, n)
				}
			}
			return out
		}
	}
	return nalus
}

// NAL unit types that the source looks at.
const (
	h264NALIDR = 5
	h264NALSEI = 6
	h264NALSPS = 7
	h264NALPPS = 8

	h265NALBLA       = 16 // BLA_W_LP; 16..21 are IRAP pictures
	h265NALIRAPHi    = 21 // CRA_NUT
	h265NALVPS       = 32
	h265NALSPS       = 33
	h265NALPPS       = 34
	h265NALPrefixSEI = 39

	seiRecoveryPoint = 6 // SEI payload type, the same in H.264 and H.265
)

func nalType(codec Codec, nalu []byte) int {
	if codec == CodecH265 {
		return int(nalu[0]>>1) & 0x3f
	}
	return int(nalu[0]) & 0x1f
}

// isRandomAccess reports whether a decoder can start at the access unit:
// an IDR picture (H.264), an IRAP picture (H.265: IDR, CRA, BLA), or a
// picture with a recovery point SEI (both), which cameras with periodic
// intra refresh send in place of IDRs: a reader that joins after the one
// IDR at the start would otherwise never find a place to start.
func isRandomAccess(codec Codec, nalus [][]byte) bool {
	for _, n := range nalus {
		switch t := nalType(codec, n); {
		case codec == CodecH264 && t == h264NALIDR, codec == CodecH265 && t >= h265NALBLA && t <= h265NALIRAPHi:
			return true
		case codec == CodecH264 && t == h264NALSEI:
			if hasRecoveryPoint(n[1:]) {
				return true
			}
		case codec == CodecH265 && t == h265NALPrefixSEI && len(n) > 2:
			if hasRecoveryPoint(n[2:]) {
				return true
			}
		}
	}
	return false
}

// hasRecoveryPoint reports whether an SEI NAL unit's payload (after its
// header) holds a recovery point message.
func hasRecoveryPoint(payload []byte) bool {
	b := h264.EmulationPreventionRemove(payload)
	// sei_message()s until the RBSP trailing bits: type and size are
	// each a run of 0xff bytes plus one more.
	for len(b) > 0 && b[0] != 0x80 {
		var typ, size int
		for len(b) > 0 && b[0] == 0xff {
			typ, b = typ+255, b[1:]
		}
		if len(b) == 0 {
			return false
		}
		typ, b = typ+int(b[0]), b[1:]
		for len(b) > 0 && b[0] == 0xff {
			size, b = size+255, b[1:]
		}
		if len(b) == 0 {
			return false
		}
		size, b = size+int(b[0]), b[1:]
		if typ == seiRecoveryPoint {
			return true
		}
		if size > len(b) {
			return false
		}
		b = b[size:]
	}
	return false
}

// paramSets keeps a stream's parameter sets, in band or from the SDP: the
// latest one of each kind and id. A camera may use several PPS (or SPS) at
// once, and a decoder that enters at a random access point needs every one
// its pictures refer to, not only the last that went by.
type paramSets struct {
	sets []paramSet // by kind (VPS, SPS, PPS), then id
}

type paramSet struct {
	kind  int // 0 VPS, 1 SPS, 2 PPS
	id    int // -1 when the NAL unit is too short or damaged to say
	nalu  []byte
	codec Codec
}

// paramKind returns which parameter set n is (0 VPS, 1 SPS, 2 PPS), or -1.
func paramKind(codec Codec, n []byte) int {
	switch t := nalType(codec, n); {
	case codec == CodecH265 && t == h265NALVPS:
		return 0
	case codec == CodecH264 && t == h264NALSPS, codec == CodecH265 && t == h265NALSPS:
		return 1
	case codec == CodecH264 && t == h264NALPPS, codec == CodecH265 && t == h265NALPPS:
		return 2
	}
	return -1
}

// set takes parameter sets from the SDP.
func (p *paramSets) set(codec Codec, params [][]byte) {
	p.update(codec, dropEmpty(params))
}

// update keeps the parameter sets found in nalus, each replacing the one
// of its kind and id.
func (p *paramSets) update(codec Codec, nalus [][]byte) {
	for _, n := range nalus {
		kind := paramKind(codec, n)
		if kind < 0 {
			continue
		}
		ps := paramSet{kind: kind, id: paramSetID(codec, kind, n), nalu: n, codec: codec}
		i, found := slices.BinarySearchFunc(p.sets, ps, func(a, b paramSet) int {
			if a.kind != b.kind {
				return a.kind - b.kind
			}
			return a.id - b.id
		})
		if found {
			p.sets[i] = ps
		} else {
			p.sets = slices.Insert(p.sets, i, ps)
		}
	}
}

// all returns the parameter sets kept, VPS first, then SPS, then PPS.
func (p *paramSets) all() [][]byte {
	out := make([][]byte, len(p.sets))
	for i, ps := range p.sets {
		out[i] = ps.nalu
	}
	return out
}

// prepend returns nalus with the parameter sets that it lacks (by kind and
// id) in front.
func (p *paramSets) prepend(codec Codec, nalus [][]byte) [][]byte {
	var front [][]byte
	for _, ps := range p.sets {
		if ps.codec != codec || slices.ContainsFunc(nalus, func(n []byte) bool {
			return paramKind(codec, n) == ps.kind && paramSetID(codec, ps.kind, n) == ps.id
		}) {
			continue
		}
		front = append(front, ps.nalu)
	}
	if len(front) == 0 {
		return nalus
	}
	return append(front, nalus...)
}

// paramSetID reads the id of a parameter set of the given kind: the VPS,
// SPS or PPS id that pictures and other parameter sets refer to. It
// returns -1 when n is too short or damaged to say.
func paramSetID(codec Codec, kind int, n []byte) int {
	hdr := 1
	if codec == CodecH265 {
		hdr = 2
	}
	if len(n) <= hdr {
		return -1
	}
	r := bitReader{b: h264.EmulationPreventionRemove(n[hdr:])}
	switch {
	case codec == CodecH264 && kind == 1:
		r.skip(24) // profile_idc, constraint flags, level_idc
		return r.ue(31)
	case codec == CodecH264 && kind == 2, codec == CodecH265 && kind == 2:
		return r.ue(63 + 192*b2i(codec == CodecH264))
	case codec == CodecH265 && kind == 0:
		return r.u(4)
	case codec == CodecH265 && kind == 1:
		r.skip(4) // sps_video_parameter_set_id
		subLayers := r.u(3)
		r.skip(1) // sps_temporal_id_nesting_flag
		// profile_tier_level(1, subLayers)
		r.skip(96)
		var profile, level [8]bool
		for i := range max(subLayers, 0) {
			profile[i], level[i] = r.u(1) == 1, r.u(1) == 1
		}
		if subLayers > 0 {
			r.skip(2 * (8 - subLayers))
		}
		for i := range max(subLayers, 0) {
			if profile[i] {
				r.skip(88)
			}
			if level[i] {
				r.skip(8)
			}
		}
		return r.ue(15)
	}
	return -1
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bitReader reads an RBSP bit by bit; past its end every read fails, and
// then so does the id that needed it.
type bitReader struct {
	b   []byte
	pos int // in bits
	bad bool
}

func (r *bitReader) skip(n int) {
	r.pos += n
	if r.pos > 8*len(r.b) {
		r.bad = true
	}
}

// u reads n bits (at most 31), -1 past the end.
func (r *bitReader) u(n int) int {
	v := 0
	for range n {
		if r.pos >= 8*len(r.b) {
			r.bad = true
			return -1
		}
		v = v<<1 | int(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	if r.bad {
		return -1
	}
	return v
}

// ue reads an Exp-Golomb code; -1 past the end or above most.
func (r *bitReader) ue(most int) int {
	zeros := 0
	for {
		b := r.u(1)
		if b < 0 || zeros > 16 {
			return -1
		}
		if b == 1 {
			break
		}
		zeros++
	}
	rest := r.u(zeros)
	if rest < 0 {
		return -1
	}
	if v := 1<<zeros - 1 + rest; v <= most {
		return v
	}
	return -1
}

// RedactURL returns raw with its credentials replaced by "***": the user
// and password, and the values of query parameters that some cameras take
// them in (user=, password=, token= ...). Use it for every URL that reaches
// a log, an error, an API response or a metric. When raw does not parse as
// a URL, everything from "//" to its last "@" goes.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	authority, _, _ := strings.Cut(raw, "?")
	if err != nil || u.User == nil && strings.Contains(authority, "@") {
		// Unparsable, or a password with a "/" in it that the parser took
		// for the path: cut generously.
		return redactGreedy.ReplaceAllString(raw, "${1}***@")
	}
	hadUser := u.User != nil
	u.User = nil
	changed := hadUser
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			k, v, ok := strings.Cut(p, "=")
			if key, err := url.QueryUnescape(k); ok && err == nil && v != "***" && secretParam.MatchString(key) {
				parts[i] = k + "=***"
				changed = true
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	if !changed {
		return raw
	}
	s := u.String()
	if hadUser {
		// Mark where the credentials were, so a reader knows some were
		// given.
		s = strings.Replace(s, "//", "//***@", 1)
	}
	return s
}

var (
	redactGreedy   = regexp.MustCompile(`^([^/?#]*//).*@`)
	redactUserinfo = regexp.MustCompile(`(//)[^/?#\s]*@`)
	secretParam    = regexp.MustCompile(`(?i)^(user(name)?|login|pass(word|wd)?|pwd|token|access_token|auth|key|api_?key|secret|sig(nature)?|credentials?)$`)
)

// redactErr returns err with the credentials of u taken out of its text;
// errors.Is and errors.As still see the original.
func redactErr(err error, u *url.URL) error {
	if err == nil || u == nil {
		return err
	}
	msg := err.Error()
	clean := msg
	if u.User != nil {
		clean = strings.ReplaceAll(clean, u.User.String()+"@", "***@")
		if pass, ok := u.User.Password(); ok && len(pass) >= 4 {
			// Short passwords would mangle ordinary words; they only
			// appear inside a URL, which the line above handles.
			clean = strings.ReplaceAll(clean, pass, "***")
			clean = strings.ReplaceAll(clean, url.QueryEscape(pass), "***")
		}
	}
	clean = redactUserinfo.ReplaceAllString(clean, "$1***@")
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
