package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/actiond/actiond/internal/testcert"
	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// testCamera is a small gortsplib server for what the Simulator does not
// do: one authentication method only, and RTSPS. It serves a short scene,
// looped, over TCP only.
type testCamera struct {
	server *gortsplib.Server
	stream *gortsplib.ServerStream
	addr   string
	user   string
	pass   string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type testCameraConfig struct {
	methods    []auth.VerifyMethod // with user and pass
	user, pass string
	tls        *tls.Config // serve rtsps
	// sdpOnly sends SPS and PPS in the SDP only, never in band.
	sdpOnly bool
	// resize alternates 160x120 and 320x180 every 2s, with the new SPS
	// in band.
	resize bool
	// h265, when set, is served in place of the scene (16 fps), with
	// fmtp as its SDP's format parameters, verbatim.
	h265 []accessUnit
	fmtp map[string]string
}

func startTestCamera(t *testing.T, cfg testCameraConfig) *testCamera {
	t.Helper()
	scene := testScene{Width: 160, Height: 120, FPS: 16, Duration: 2 * time.Second, Direction: Right}
	aus := encodeScene(t, scene, scene.Frames())
	if cfg.resize {
		big := scene
		big.Width, big.Height = 320, 180
		aus = append(aus, encodeScene(t, big, big.Frames())...)
	}
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	if cfg.sdpOnly {
		for i, au := range aus {
			var kept [][]byte
			for _, n := range au.nalus {
				switch n[0] & 0x1f {
				case h264NALSPS:
					forma.SPS = n
				case h264NALPPS:
					forma.PPS = n
				default:
					kept = append(kept, n)
				}
			}
			aus[i].nalus = kept
		}
	}
	var served format.Format = forma
	var packetize func([][]byte) ([]*rtp.Packet, error)
	if cfg.h265 != nil {
		aus = cfg.h265
		g := &format.Generic{PayloadTyp: 96, RTPMa: "H265/90000", FMT: cfg.fmtp}
		if err := g.Init(); err != nil {
			t.Fatal(err)
		}
		enc := &rtph265.Encoder{PayloadType: 96}
		if err := enc.Init(); err != nil {
			t.Fatal(err)
		}
		served, packetize = g, enc.Encode
	} else {
		enc, err := forma.CreateEncoder()
		if err != nil {
			t.Fatal(err)
		}
		packetize = enc.Encode
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &testCamera{addr: ln.Addr().String(), user: cfg.user, pass: cfg.pass}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{served}}
	c.server = &gortsplib.Server{
		Handler:     c,
		RTSPAddress: c.addr,
		AuthMethods: cfg.methods,
		TLSConfig:   cfg.tls,
		Listen:      func(string, string) (net.Listener, error) { return ln, nil },
	}
	if err := c.server.Start(); err != nil {
		t.Fatal(err)
	}
	c.stream = &gortsplib.ServerStream{Server: c.server, Desc: &description.Session{Medias: []*description.Media{medi}}}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(scene.FPS))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			au := aus[i%len(aus)]
			pkts, err := packetize(au.nalus)
			if err != nil {
				t.Error(err)
				return
			}
			for _, pkt := range pkts {
				pkt.Timestamp = uint32(i * 90000 / scene.FPS)
				c.stream.WritePacketRTP(medi, pkt) //nolint:errcheck // no reader yet is fine
			}
		}
	}()
	t.Cleanup(func() {
		c.cancel()
		c.wg.Wait()
		c.stream.Close()
		c.server.Close()
	})
	return c
}

func (c *testCamera) allowed(conn *gortsplib.ServerConn, req *base.Request) bool {
	return c.user == "" || conn.VerifyCredentials(req, c.user, c.pass)
}

func (c *testCamera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !c.allowed(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *testCamera) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !c.allowed(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

func (c *testCamera) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// selfSigned returns a TLS config with a fresh certificate for 127.0.0.1
// that no client trusts (testcert's, its authority left out), and the
// certificate's SHA-256 fingerprint.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	f, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Certificate[0])
	return &tls.Config{Certificates: []tls.Certificate{cert}}, hex.EncodeToString(sum[:])
}
