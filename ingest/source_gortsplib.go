package ingest

// This file is the only one of the package (tests aside) that knows
// gortsplib: it implements rtspClient on gortsplib v4 (and mediacommon v2,
// through gortsplib's depacketizers). The RTSP simulator, which serves
// with gortsplib, is a package of its own (ingest/camsim).

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

type gortsplibClient struct {
	cfg clientConfig
	cb  clientCallbacks
	u   *base.URL
	c   *gortsplib.Client

	desc  *description.Session
	media *description.Media
	forma format.Format

	// sdpParams are the parameter sets of the DESCRIBE answer's sprop-*
	// attributes by payload type, every value (gortsplib keeps one of
	// each); set on the client's goroutine before Describe returns.
	sdpParams map[uint8][][]byte

	transportName atomic.Pointer[string]
	// arrived counts the track's RTP packets as gortsplib hands them on
	// and its RTCP packets (sender reports come every few seconds whatever
	// the RTP reordering holds back): signs of life for source.silence.
	// Client.Stats would count bytes before the reordering, but it races
	// with the client's own shutdown.
	arrived   atomic.Uint64
	doneCh    chan struct{}
	waitErr   error
	closeOnce sync.Once
}

// newRTSPClient makes the client for one connection; it does not connect
// yet.
func newRTSPClient(cfg clientConfig, cb clientCallbacks) (rtspClient, error) {
	u, err := base.ParseURL(cfg.url.String())
	if err != nil {
		return nil, err
	}
	g := &gortsplibClient{cfg: cfg, cb: cb, u: u, doneCh: make(chan struct{})}
	g.c = &gortsplib.Client{
		Scheme: u.Scheme,
		Host:   u.Host,
		// The source bounds connecting itself and watches for silence
		// with the stream's read timeout; gortsplib's own checks (each
		// request, packets) must not cut in before either.
		ReadTimeout:  max(cfg.timeout, cfg.readTimeout),
		WriteTimeout: cfg.timeout,
		// With the transport on auto, UDP gets this long to deliver a
		// first packet before TCP is tried: well within the stream's
		// read timeout, which would otherwise end the connection first.
		InitialUDPReadTimeout: min(3*time.Second, cfg.readTimeout/2),
		OnTransportSwitch: func(err error) {
			tcp := "TCP"
			g.transportName.Store(&tcp)
			cfg.log.Info("switching to TCP", "reason", err.Error())
		},
		OnPacketsLost: cb.onLost,
		OnDecodeError: cb.onError,
		OnResponse:    g.onResponse,
		DialContext:   cfg.conns.dialer(cfg.hosts.Dialer(u.Hostname()).DialContext),
		ListenPacket:  listenRTPUDP,
	}
	switch cfg.transport {
	case TransportUDP:
		v := gortsplib.TransportUDP
		g.c.Transport = &v
	case TransportTCP:
		v := gortsplib.TransportTCP
		g.c.Transport = &v
	}
	if u.Scheme == "rtsps" && cfg.tlsFingerprint != "" {
		g.c.TLSConfig = fingerprintTLS(cfg.tlsFingerprint)
	}
	if err := g.c.Start2(); err != nil {
		return nil, err
	}
	go func() {
		g.waitErr = g.c.Wait()
		close(g.doneCh)
	}()
	return g, nil
}

// udpReadBuffer is the receive buffer that the source asks the kernel for
// on its RTP and RTCP sockets. A camera sends a frame's packets back to
// back, so a key frame arrives as one burst; a camera at 2 Mbit/s watching
// a still scene spends nearly the whole second's budget on it (about
// 145 KB, 100 datagrams), more than Linux's default buffer
// (net.core.rmem_default, 208 KiB) holds, as each datagram is charged
// about 2.3 KB, so a reader not scheduled within the burst loses its tail.
// 2 MiB holds the key frame of a camera at 8 Mbit/s with a one-second rate
// buffer. The kernel caps the request at net.core.rmem_max (and doubles
// it: 416 KiB on a stock kernel). It is a limit, not an allocation: it
// costs nothing while the reader keeps up.
const udpReadBuffer = 2 << 20

// listenRTPUDP is net.ListenPacket with the socket's receive buffer raised
// towards udpReadBuffer. A kernel that caps it is no reason to fail, as
// gortsplib's own UDPReadBufferSize would (it refuses to connect).
func listenRTPUDP(network, address string) (net.PacketConn, error) {
	pc, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		// Best effort: with the default buffer it still works, with
		// bursts at risk.
		_ = uc.SetReadBuffer(udpReadBuffer)
	}
	return pc, nil
}

// fingerprintTLS trusts exactly the certificate with the given SHA-256
// fingerprint, as cameras with self-signed certificates need.
func fingerprintTLS(fingerprint string) *tls.Config {
	want := strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
	return &tls.Config{
		// Verification is by fingerprint, below, instead of by CA.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("server sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); got != want {
				return fmt.Errorf("server certificate fingerprint %s does not match 'tls_fingerprint'", got)
			}
			return nil
		},
	}
}

func (g *gortsplibClient) describe() (videoTrack, error) {
	desc, _, err := g.c.Describe(g.u)
	if err != nil {
		return videoTrack{}, g.translate(err)
	}
	g.desc = desc
	var track videoTrack
	g.media, g.forma, track, err = findVideoTrack(desc)
	if err == nil && len(g.sdpParams[g.forma.PayloadType()]) > 0 {
		track.params = g.sdpParams[g.forma.PayloadType()]
	}
	return track, err
}

// onResponse sees every RTSP response before gortsplib reads it: a
// DESCRIBE answer's SDP goes through fixSDP, so that one bad attribute does
// not cost the whole stream.
func (g *gortsplibClient) onResponse(res *base.Response) {
	ct := res.Header["Content-Type"]
	if len(ct) == 0 || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct[0])), "application/sdp") {
		return
	}
	body, params, ignored := fixSDP(res.Body)
	res.Body, g.sdpParams = body, params
	for _, why := range ignored {
		g.cfg.log.Warn("camera's SDP: attribute ignored; the decoder takes parameter sets from the stream", "attribute", why)
	}
}

// findVideoTrack picks the stream's video track from a DESCRIBE answer:
// the first H.264 format, else the first H.265 one, with the parameter sets
// of its SDP (sprop-parameter-sets and the like).
func findVideoTrack(desc *description.Session) (*description.Media, format.Format, videoTrack, error) {
	var h264f *format.H264
	if m := desc.FindFormat(&h264f); m != nil {
		sps, pps := h264f.SafeParams()
		return m, h264f, videoTrack{codec: CodecH264, params: [][]byte{sps, pps}}, nil
	}
	var h265f *format.H265
	if m := desc.FindFormat(&h265f); m != nil {
		vps, sps, pps := h265f.SafeParams()
		return m, h265f, videoTrack{codec: CodecH265, params: [][]byte{vps, sps, pps}}, nil
	}
	var offered []string
	for _, m := range desc.Medias {
		for _, f := range m.Formats {
			offered = append(offered, f.Codec())
		}
	}
	if len(offered) == 0 {
		offered = []string{"nothing"}
	}
	return nil, nil, videoTrack{}, fmt.Errorf("%w: the stream offers %s; H.264 and H.265 video are supported",
		ErrUnsupportedCodec, strings.Join(offered, ", "))
}

func (g *gortsplibClient) play() error {
	res, err := g.c.Setup(g.desc.BaseURL, g.media, 0, 0)
	if err != nil {
		return g.translate(err)
	}
	name := "UDP"
	var th headers.Transport
	if th.Unmarshal(res.Header["Transport"]) == nil && th.Protocol == headers.TransportProtocolTCP {
		name = "TCP"
	}
	g.transportName.Store(&name)

	depacketize, err := g.depacketizer()
	if err != nil {
		return err
	}
	medi, clock := g.media, int64(g.forma.ClockRate())
	var timeline rtpTimeline
	g.c.OnPacketRTCP(medi, func(rtcp.Packet) { g.arrived.Add(1) })
	g.c.OnPacketRTP(medi, g.forma, func(pkt *rtp.Packet) {
		g.arrived.Add(1)
		ticks := timeline.decode(pkt.Timestamp)
		nalus, err := depacketize(pkt)
		if err != nil {
			if !waitingForPackets(err) {
				g.cb.onError(err)
			}
			return
		}
		ntp, ok := g.c.PacketNTP(medi, pkt)
		if !ok {
			ntp = time.Time{}
		}
		g.cb.onAU(nalus, ticksToDuration(ticks, clock), ntp)
	})
	if _, err := g.c.Play(nil); err != nil {
		return g.translate(err)
	}
	return nil
}

// depacketizer returns the RTP → access unit decoder of the track.
func (g *gortsplibClient) depacketizer() (func(*rtp.Packet) ([][]byte, error), error) {
	return newDepacketizer(g.forma)
}

// fixSDP reads the parameter sets out of an SDP's sprop-vps, sprop-sps,
// sprop-pps (H.265) and sprop-parameter-sets (H.264) attributes, every
// value that decodes, by payload type. gortsplib refuses the whole
// description when an H.265 one has several values (which RFC 7798
// allows) or one it cannot parse, or an H.264 one does not decode: such
// attributes are taken out of the body it returns, and said in ignored
// ("sprop-sps: 2 values"), so that the stream plays with what the camera
// sends in band.
func fixSDP(body []byte) (out []byte, params map[uint8][][]byte, ignored []string) {
	lines := strings.Split(string(body), "\n")
	codecs := map[string]string{} // payload type → codec, from rtpmap
	for _, l := range lines {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=rtpmap:"); ok {
			pt, enc, _ := strings.Cut(v, " ")
			codec, _, _ := strings.Cut(enc, "/")
			codecs[pt] = strings.ToUpper(strings.TrimSpace(codec))
		}
	}
	changed := false
	for i, l := range lines {
		v, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "a=fmtp:")
		if !ok {
			continue
		}
		pt, fmtp, _ := strings.Cut(v, " ")
		codec := codecs[pt]
		if codec != "H264" && codec != "H265" {
			continue
		}
		var kept []string
		for _, kv := range strings.Split(fmtp, ";") {
			key, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
			key = strings.ToLower(key)
			var sets [][]byte
			why := ""
			switch {
			case codec == "H265" && (key == "sprop-vps" || key == "sprop-sps" || key == "sprop-pps"):
				sets, why = spropValues(val)
				if why == "" && len(sets) > 1 {
					why = fmt.Sprintf("%d values", len(sets))
				}
				if why == "" && !gortsplibTakesH265(key, sets[0]) {
					why = "a parameter set the RTSP library cannot parse"
				}
			case codec == "H264" && key == "sprop-parameter-sets":
				sets, why = spropValues(val)
			}
			if n, err := strconv.ParseUint(pt, 10, 8); err == nil && len(sets) > 0 {
				if params == nil {
					params = map[uint8][][]byte{}
				}
				params[uint8(n)] = append(params[uint8(n)], sets...)
			}
			if why != "" {
				ignored = append(ignored, fmt.Sprintf("%s: %s", key, why))
				changed = true
				continue
			}
			kept = append(kept, strings.TrimSpace(kv))
		}
		if len(kept) > 0 {
			lines[i] = "a=fmtp:" + pt + " " + strings.Join(kept, ";")
			if strings.HasSuffix(l, "\r") {
				lines[i] += "\r"
			}
		} else {
			lines[i] = ""
		}
	}
	if !changed {
		return body, params, nil
	}
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(l)
			b.WriteString("\n")
		}
	}
	return []byte(b.String()), params, ignored
}

// spropValues decodes a sprop attribute's comma-separated base64 values,
// as gortsplib does (an Annex-B start code in front is cut); why says
// what is wrong if one does not decode. Empty values are skipped.
func spropValues(val string) (sets [][]byte, why string) {
	for _, v := range strings.Split(val, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			why = "not base64: " + v
			continue
		}
		if b = bytes.TrimPrefix(b, []byte{0, 0, 0, 1}); len(b) > 0 {
			sets = append(sets, b)
		}
	}
	if why == "" && len(sets) == 0 {
		why = "no value"
	}
	return sets, why
}

// gortsplibTakesH265 reports whether gortsplib's SDP parser accepts the
// H.265 parameter set of a sprop attribute: it parses SPS and PPS.
func gortsplibTakesH265(key string, set []byte) bool {
	switch key {
	case "sprop-sps":
		var sps h265.SPS
		return sps.Unmarshal(set) == nil
	case "sprop-pps":
		var pps h265.PPS
		return pps.Unmarshal(set) == nil
	}
	return true
}

// newDepacketizer returns the RTP → access unit decoder of a format.
func newDepacketizer(forma format.Format) (func(*rtp.Packet) ([][]byte, error), error) {
	switch f := forma.(type) {
	case *format.H264:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return d.Decode, nil
	case *format.H265:
		d, err := f.CreateDecoder()
		if err != nil {
			return nil, err
		}
		return d.Decode, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, forma.Codec())
}

// waitingForPackets reports whether a depacketizer error only means that
// the access unit is not complete yet (or began before the first packet):
// no error of the stream.
func waitingForPackets(err error) bool {
	return errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) ||
		errors.Is(err, rtph265.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious)
}

// rtpTimeline unwraps a track's 32-bit RTP timestamps into ticks since its
// first packet. gortsplib's own decoder (PacketPTS2) gives no time until a
// packet that it takes for a key frame or a parameter set: from a camera
// with intra refresh that sends its parameter sets only in the SDP, no
// packet would ever have one. Within a connection only differences
// matter; the window anchors each epoch at its first frame.
type rtpTimeline struct {
	mu      sync.Mutex // packets of one track come one at a time; this only makes it certain
	started bool
	prev    uint32
	ticks   int64
}

func (t *rtpTimeline) decode(ts uint32) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		t.ticks += int64(int32(ts - t.prev))
	}
	t.started, t.prev = true, ts
	return t.ticks
}

// ticksToDuration converts RTP clock ticks without overflowing for days.
func ticksToDuration(ticks, clock int64) time.Duration {
	secs, rem := ticks/clock, ticks%clock
	return time.Duration(secs)*time.Second + time.Duration(rem*int64(time.Second)/clock)
}

// translate maps gortsplib's errors to the package's sentinels where a
// caller can act on them.
func (g *gortsplibClient) translate(err error) error {
	var (
		status  liberrors.ErrClientBadStatusCode
		unknown x509.UnknownAuthorityError
	)
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w (a self-signed certificate is trusted by its 'tls_fingerprint')", err)
	case errors.As(err, &liberrors.ErrClientTCPTimeout{}), errors.As(err, &liberrors.ErrClientUDPTimeout{}):
		// gortsplib's own watch on the connection, which only fires when
		// the stream's (shorter) read timeout did not get to it first.
		return fmt.Errorf("%w: the camera sent nothing for %v (%v)", ErrReadTimeout, g.c.ReadTimeout, err)
	case errors.As(err, &liberrors.ErrClientRequestTimedOut{}):
		return fmt.Errorf("%w (request timed out)", ErrNoAnswer)
	case errors.As(err, &status) && status.Code == base.StatusUnauthorized:
		if g.u.User == nil {
			return fmt.Errorf("%w: the camera wants credentials (put them in the URL: user:pass@host)", ErrUnauthorized)
		}
		return fmt.Errorf("%w: the camera refused the credentials", ErrUnauthorized)
	case errors.As(err, &status):
		return fmt.Errorf("camera answered %d %s", int(status.Code), status.Message)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("the camera closed the connection (%w)", err)
	}
	return err
}

func (g *gortsplibClient) transport() string {
	if p := g.transportName.Load(); p != nil {
		return *p
	}
	return ""
}

func (g *gortsplibClient) received() uint64 { return g.arrived.Load() }

func (g *gortsplibClient) done() <-chan struct{} { return g.doneCh }

func (g *gortsplibClient) err() error {
	select {
	case <-g.doneCh:
		return g.translate(g.waitErr)
	default:
		return nil
	}
}

func (g *gortsplibClient) close() {
	g.closeOnce.Do(g.c.Close)
	<-g.doneCh
}
