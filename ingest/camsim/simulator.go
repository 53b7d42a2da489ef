package camsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/actiond/actiond/ingest"
	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"
)

// ErrSimPathNotFound is returned by the Simulator's fault methods for a path
// that it neither serves nor has a publisher for.
var ErrSimPathNotFound = errors.New("no such path")

// SimulatorConfig configures a Simulator. The zero value serves on
// 127.0.0.1:8554 with TCP and UDP.
type SimulatorConfig struct {
	// Listen is the RTSP (TCP) address. Port 0 picks a free port, which
	// Addr reports. It defaults to 127.0.0.1:8554.
	Listen string
	// DisableUDP offers only the TCP transport (RTP interleaved in the
	// RTSP connection). By default UDP is offered too, on a free pair of
	// consecutive ports (even for RTP, odd for RTCP) on the Listen host.
	DisableUDP bool
	// SenderReportPeriod is how often each stream sends an RTCP sender
	// report, which ties RTP timestamps to the wall-clock capture time.
	// It defaults to 1s; a negative value sends none, like a camera
	// without them.
	SenderReportPeriod time.Duration
	// Bitrate is the target of the H.264 encoder for files and scenes, in
	// bits per second (e.g. 2_000_000 for a camera set to 2 Mbit/s). It
	// defaults to constant quality (crf 18), whatever bitrate that takes.
	Bitrate int
	// Logger receives the simulator's logs. It defaults to slog.Default()
	// with component=sim.
	Logger *slog.Logger
}

// Simulator is an RTSP server that stands in for cameras in tests and in
// the first-run demo. It serves video files and synthetic scenes as live
// H.264 streams (looped forever, timestamps continuous), relays streams that
// clients publish to it (ANNOUNCE/RECORD, as `ffmpeg -f rtsp` does), and
// breaks on command: it drops connections, stalls, jumps timestamps, loses
// packets and asks for credentials, per path, while it runs.
//
// Paths can be added before or after Start. All methods are safe for
// concurrent use.
type Simulator struct {
	cfg      SimulatorConfig
	log      *slog.Logger
	warnings ingest.LogLimiter // for per-packet trouble: slow readers, bad publishers

	server     *gortsplib.Server
	addr       string
	ctx        context.Context
	cancel     context.CancelFunc
	players    sync.WaitGroup // one play goroutine per served path
	serverDone chan struct{}  // closed once the RTSP server has stopped
	serverErr  error          // why it stopped, when not by Close

	mu       sync.Mutex
	state    simState
	paths    map[string]*simPath
	files    map[string]*simClip                   // encoded files by path: serving one file on many paths encodes it once
	sessions map[*gortsplib.ServerSession]*simPath // readers and publishers
	user     string
	pass     string
}

type simState int

const (
	simNew simState = iota
	simRunning
	simClosed
)

// NewSimulator returns a simulator with cfg's defaults filled in. Nothing
// listens until Start.
func NewSimulator(cfg SimulatorConfig) *Simulator {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:8554"
	}
	if cfg.SenderReportPeriod == 0 {
		cfg.SenderReportPeriod = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default().With("component", "sim")
	}
	return &Simulator{
		cfg:        cfg,
		log:        cfg.Logger,
		warnings:   ingest.LogLimiter{PerSecond: 5},
		serverDone: make(chan struct{}),
		paths:      make(map[string]*simPath),
		files:      make(map[string]*simClip),
		sessions:   make(map[*gortsplib.ServerSession]*simPath),
	}
}

// Start listens and starts serving the paths added so far.
func (s *Simulator) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != simNew {
		return errors.New("start simulator: already started or closed")
	}
	if err := s.startServer(); err != nil {
		// A failed simulator stays closed: Wait returns, Close is a no-op.
		s.state, s.addr = simClosed, ""
		close(s.serverDone)
		return fmt.Errorf("start simulator on %s: %w", s.cfg.Listen, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.state = simRunning
	go func() {
		err := s.server.Wait()
		s.mu.Lock()
		closing := s.state == simClosed
		s.mu.Unlock()
		if !closing {
			s.log.Error("rtsp server stopped", "error", err)
			s.serverErr = err
		}
		close(s.serverDone)
	}()
	for _, p := range s.paths {
		if err := s.openServed(p); err != nil {
			// Unreachable with a healthy server; serve the others.
			s.log.Error("cannot serve path", "path", p.name, "error", err)
			delete(s.paths, p.name)
		}
	}
	s.log.Info("rtsp simulator listening", "addr", s.addr, "udp", !s.cfg.DisableUDP)
	return nil
}

// startServer binds the sockets and starts gortsplib's server on them.
// Binding here rather than in gortsplib lets port 0 work, for RTSP and for
// the UDP pair (gortsplib wants concrete, consecutive UDP ports).
func (s *Simulator) startServer() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	srv := &gortsplib.Server{
		Handler:     &simHandler{s: s},
		RTSPAddress: s.addr,
		// Our own sender reports (see simPath.open) replace gortsplib's.
		DisableRTCPSenderReports: true,
		Listen: func(string, string) (net.Listener, error) {
			return ln, nil
		},
	}
	var rtpConn, rtcpConn net.PacketConn
	if !s.cfg.DisableUDP {
		rtpConn, rtcpConn, err = listenUDPPair(ln.Addr().(*net.TCPAddr).IP)
		if err != nil {
			ln.Close()
			return err
		}
		srv.UDPRTPAddress = rtpConn.LocalAddr().String()
		srv.UDPRTCPAddress = rtcpConn.LocalAddr().String()
		srv.ListenPacket = func(network, address string) (net.PacketConn, error) {
			switch address {
			case srv.UDPRTPAddress:
				return rtpConn, nil
			case srv.UDPRTCPAddress:
				return rtcpConn, nil
			}
			return nil, fmt.Errorf("listen %s %s: not a simulator socket", network, address)
		}
	}
	if err := srv.Start(); err != nil {
		// Closing twice is harmless; gortsplib may have closed some.
		ln.Close()
		if rtpConn != nil {
			rtpConn.Close()
			rtcpConn.Close()
		}
		return err
	}
	s.server = srv
	return nil
}

// listenUDPPair binds two consecutive UDP ports on ip, the first even, as
// RTP and RTCP want them. The kernel picks one port; its neighbour may be
// taken, so it tries a few times.
func listenUDPPair(ip net.IP) (rtpConn, rtcpConn net.PacketConn, err error) {
	host := ip.String()
	if ip.IsUnspecified() {
		host = ""
	}
	for range 32 {
		a, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		other := port + 1
		if port%2 == 1 {
			other = port - 1
		}
		b, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(other)))
		if err != nil {
			a.Close()
			continue
		}
		if port%2 == 0 {
			return a, b, nil
		}
		return b, a, nil
	}
	return nil, nil, errors.New("listen udp: found no free pair of consecutive ports")
}

// Close stops the players, disconnects every client, closes the listeners
// and waits for every goroutine it started. It is safe to call more than
// once, and before Start.
func (s *Simulator) Close() error {
	s.mu.Lock()
	prev := s.state
	s.state = simClosed
	s.mu.Unlock()
	switch prev {
	case simClosed:
		return nil
	case simNew:
		close(s.serverDone)
		return nil
	}
	s.cancel()
	s.players.Wait()
	// Not under mu: closing sessions calls OnSessionClose, which takes it.
	s.server.Close()
	<-s.serverDone
	s.mu.Lock()
	paths := s.paths
	s.paths = make(map[string]*simPath)
	s.mu.Unlock()
	for _, p := range paths {
		p.close()
	}
	s.log.Info("rtsp simulator closed")
	return nil
}

// Wait blocks until the simulator stops: it returns nil after Close, and
// the server's error if it failed on its own (Close must still be called).
func (s *Simulator) Wait() error {
	<-s.serverDone
	return s.serverErr
}

// Addr returns the RTSP address the simulator listens on ("" before Start).
func (s *Simulator) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the rtsp:// URL of path name. A simulator listening on all
// interfaces is reached through 127.0.0.1.
func (s *Simulator) URL(name string) string {
	addr := s.Addr()
	if addr == "" {
		addr = s.cfg.Listen
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		addr = net.JoinHostPort(host, port)
	}
	return "rtsp://" + addr + "/" + name
}

// Paths returns the names of the paths served or published now, sorted.
func (s *Simulator) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.paths))
	for name := range s.paths {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// AddFile serves the video in path (any format FFmpeg reads) as H.264 at
// rtsp://ADDR/name, looped forever at the file's frame rate. The file is
// decoded and re-encoded once, into memory, before AddFile returns: meant
// for clips of seconds, not films. Serving the same file on more paths
// reuses that encoding (a clip is never changed once made), so many
// simulated cameras cost one encode and one copy of the clip.
func (s *Simulator) AddFile(name, path string) error {
	if err := s.checkAdd(name); err != nil {
		return fmt.Errorf("add file %q: %w", path, err)
	}
	s.mu.Lock()
	clip := s.files[path]
	s.mu.Unlock()
	if clip != nil {
		return s.addClip(name, clip, slog.String("file", path))
	}
	clip, promised, err := fileClip(path, s.cfg.Bitrate)
	if err != nil {
		return fmt.Errorf("add path %q: %w", name, err)
	}
	s.mu.Lock()
	s.files[path] = clip
	s.mu.Unlock()
	if len(clip.aus) < promised {
		s.log.Warn("video decoded short; serving what decoded", "path", name, "file", path,
			"frames", len(clip.aus), "packets", promised)
	}
	return s.addClip(name, clip, slog.String("file", path))
}

// AddScene serves a synthetic scene at rtsp://ADDR/name, looped forever:
// the disk moves across the picture, then starts again.
func (s *Simulator) AddScene(name string, scene Scene) error {
	if err := s.checkAdd(name); err != nil {
		return fmt.Errorf("add scene: %w", err)
	}
	if err := scene.Validate(); err != nil {
		return fmt.Errorf("add path %q: %w", name, err)
	}
	clip, err := sceneClip(scene.Width, scene.Height, scene.FPS, scene.Frames(), s.cfg.Bitrate, scene.Frame)
	if err != nil {
		return fmt.Errorf("add path %q: %w", name, err)
	}
	return s.addClip(name, clip, slog.String("scene", string(scene.Direction)))
}

// AddSceneSequence serves, looped, a scene whose motion follows segments:
// for the demo camera, a disk going right for a few seconds, then left,
// and so on, without jumps (see SceneSequence).
func (s *Simulator) AddSceneSequence(name string, w, h, fps int, segments []SceneSegment) error {
	if err := s.checkAdd(name); err != nil {
		return fmt.Errorf("add scene sequence: %w", err)
	}
	q := SceneSequence{Width: w, Height: h, FPS: fps, Segments: segments}
	if err := q.Validate(); err != nil {
		return fmt.Errorf("add path %q: %w", name, err)
	}
	clip, err := sceneClip(w, h, fps, q.Frames(), s.cfg.Bitrate, q.Frame)
	if err != nil {
		return fmt.Errorf("add path %q: %w", name, err)
	}
	return s.addClip(name, clip, slog.Int("segments", len(segments)))
}

// checkAdd fails early, before a clip is encoded, when name cannot be
// added; addClip checks again under the lock.
func (s *Simulator) checkAdd(name string) error {
	if err := checkPathName(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == simClosed:
		return fmt.Errorf("add path %q: simulator closed", name)
	case s.paths[name] != nil:
		return fmt.Errorf("add path %q: already in use", name)
	}
	return nil
}

// checkPathName rejects names that cannot be one RTSP path.
func checkPathName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") ||
		strings.ContainsAny(name, "?#% \t\r\n") {
		return fmt.Errorf("bad path name %q (want letters, digits, '-', '_', '.', inner '/')", name)
	}
	return nil
}

// addClip makes clip the content of path name, and starts playing it if
// the simulator runs.
func (s *Simulator) addClip(name string, clip *simClip, what slog.Attr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.state == simClosed:
		return fmt.Errorf("add path %q: simulator closed", name)
	case s.paths[name] != nil:
		return fmt.Errorf("add path %q: already in use", name)
	}
	p := newSimPath(name, s.log)
	p.clip = clip
	if s.state == simRunning {
		if err := s.openServed(p); err != nil {
			return err
		}
	}
	s.paths[name] = p
	p.log.Info("serving", what, "size", fmt.Sprintf("%dx%d", clip.width, clip.height),
		"fps", clip.fps, "frames", len(clip.aus), "bytes", clip.bytes)
	return nil
}

// openServed creates the stream of a served path and starts its player.
// The caller holds mu, with the simulator running.
func (s *Simulator) openServed(p *simPath) error {
	var forma format.Format = &format.H264{
		PayloadTyp:        96,
		PacketizationMode: 1,
		SPS:               p.clip.sps,
		PPS:               p.clip.pps,
	}
	if p.clip.jpeg {
		forma = &format.MJPEG{}
	}
	desc := &description.Session{
		Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}},
	}
	if err := p.open(s.server, desc, s.cfg.SenderReportPeriod); err != nil {
		return err
	}
	s.players.Add(1)
	go func() {
		defer s.players.Done()
		p.play(s.ctx)
	}()
	return nil
}

// path returns the path called name, or nil.
func (s *Simulator) path(name string) *simPath {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[name]
}

// pathOrErr returns the path called name, or an error that names it.
func (s *Simulator) pathOrErr(op, name string) (*simPath, error) {
	p := s.path(name)
	if p == nil {
		return nil, fmt.Errorf("%s %q: %w", op, name, ErrSimPathNotFound)
	}
	return p, nil
}

// DropConnections closes the session and connections of every reader of
// path name, as a camera reboot or a network drop would: readers must
// reconnect. A publisher of the path stays.
func (s *Simulator) DropConnections(name string) error {
	p, err := s.pathOrErr("drop connections", name)
	if err != nil {
		return err
	}
	n := p.dropReaders()
	p.log.Info("fault: dropped readers", "readers", n)
	return nil
}

// Stall sends nothing on path name (neither RTP nor RTCP) for d, while its
// sessions and connections stay open. Packets due meanwhile are dropped,
// not delayed, as on a stalled network: readers see a gap in sequence
// numbers and timestamps afterwards. A later Stall replaces an earlier one.
func (s *Simulator) Stall(name string, d time.Duration) error {
	p, err := s.pathOrErr("stall", name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.stallUntil = time.Now().Add(d)
	p.mu.Unlock()
	p.log.Info("fault: stall", "for", d)
	return nil
}

// JumpTimestamps makes the media time of path name continue from to with
// the next frame: 0 is a camera restarting with its clock back at zero. The
// RTP timestamp jumps accordingly (its random base stays); the wall clock
// in sender reports does not jump.
func (s *Simulator) JumpTimestamps(name string, to time.Duration) error {
	p, err := s.pathOrErr("jump timestamps", name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.jumpTo = to
	p.jumpGen++
	p.mu.Unlock()
	p.log.Info("fault: timestamps jump", "to", to)
	return nil
}

// SetPacketLoss drops that fraction (0..1) of path name's RTP packets at
// random, before they reach any reader (UDP and TCP alike). The random
// sequence is seeded by the path's name, so a run repeats.
func (s *Simulator) SetPacketLoss(name string, fraction float64) error {
	if !(fraction >= 0 && fraction <= 1) {
		return fmt.Errorf("set packet loss of %q: fraction must be in 0..1, got %v", name, fraction)
	}
	p, err := s.pathOrErr("set packet loss", name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.loss = fraction
	p.mu.Unlock()
	p.log.Info("fault: packet loss", "fraction", fraction)
	return nil
}

// SetCredentials makes every path, for readers and publishers alike, ask
// for this user and password (basic or digest authentication). An empty
// user turns authentication off. Sessions already set up are not asked
// again.
func (s *Simulator) SetCredentials(user, pass string) {
	s.mu.Lock()
	s.user, s.pass = user, pass
	s.mu.Unlock()
	s.log.Info("authentication", "required", user != "")
}

// Stats returns path name's counters; zero for an unknown path.
func (s *Simulator) Stats(name string) SimPathStats {
	p := s.path(name)
	if p == nil {
		return SimPathStats{}
	}
	return p.stats()
}

// authorized checks a request's credentials against SetCredentials.
func (s *Simulator) authorized(sc *gortsplib.ServerConn, req *base.Request) bool {
	s.mu.Lock()
	user, pass := s.user, s.pass
	s.mu.Unlock()
	return user == "" || sc.VerifyCredentials(req, user, pass)
}

// warn logs per-packet trouble, at most a few lines a second.
func (s *Simulator) warn(msg string, args ...any) {
	suppressed, ok := s.warnings.Allow(time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.log.Warn(msg, args...)
}

// simHandler receives gortsplib's server callbacks. They run on gortsplib's
// connection and session goroutines: they look things up and return, and
// never wait for anything but short locks.
type simHandler struct {
	s *Simulator
}

// errUnauthorized makes gortsplib answer 401 with a challenge, or close
// the connection when the credentials given were wrong.
var errUnauthorized = liberrors.ErrServerAuth{}

// Responses are built per request: gortsplib adds headers to them.
func resOK() *base.Response           { return &base.Response{StatusCode: base.StatusOK} }
func resNotFound() *base.Response     { return &base.Response{StatusCode: base.StatusNotFound} }
func resUnauthorized() *base.Response { return &base.Response{StatusCode: base.StatusUnauthorized} }

// pathName turns a request path ("/cam") into a path name ("cam").
func pathName(p string) string { return strings.TrimPrefix(p, "/") }

func (h *simHandler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.s.log.Debug("connection opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

func (h *simHandler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.log.Debug("connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "reason", ctx.Error)
}

// OnSessionClose forgets a reader, or takes down the path of a publisher:
// its stream closes, which disconnects its readers.
func (h *simHandler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	s := h.s
	s.mu.Lock()
	p := s.sessions[ctx.Session]
	delete(s.sessions, ctx.Session)
	unpublish := p != nil && p.publisher == ctx.Session
	if unpublish && s.paths[p.name] == p {
		delete(s.paths, p.name)
	}
	s.mu.Unlock()
	switch {
	case unpublish:
		p.close()
		p.log.Info("publisher left; path closed", "reason", ctx.Error)
	case p != nil:
		p.removeReader(ctx.Session)
		p.log.Debug("reader left", "reason", ctx.Error)
	}
}

func (h *simHandler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	p := h.s.path(pathName(ctx.Path))
	if !h.s.authorized(ctx.Conn, ctx.Request) {
		p.countAuthFailure(ctx.Request)
		return resUnauthorized(), nil, errUnauthorized
	}
	if p == nil {
		return resNotFound(), nil, nil
	}
	return resOK(), p.stream, nil
}

// OnAnnounce creates a published path. A new publisher of a path that has
// one replaces it (a camera that reconnects before its old session timed
// out); a served path cannot be published to.
func (h *simHandler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	s := h.s
	if !s.authorized(ctx.Conn, ctx.Request) {
		return resUnauthorized(), errUnauthorized
	}
	name := pathName(ctx.Path)
	if err := checkPathName(name); err != nil {
		return &base.Response{StatusCode: base.StatusBadRequest}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != simRunning {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, errors.New("simulator closing")
	}
	old := s.paths[name]
	if old != nil && old.publisher == nil {
		old.log.Info("refused a publisher: the path is served")
		return &base.Response{StatusCode: base.StatusForbidden},
			fmt.Errorf("path %q is served by the simulator, not publishable", name)
	}
	p := newSimPath(name, s.log)
	p.publisher = ctx.Session
	if err := p.open(s.server, ctx.Description, s.cfg.SenderReportPeriod); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, err
	}
	if old != nil {
		// Its session's close finds the path gone and only closes it.
		old.close()
		old.publisher.Close()
		old.log.Info("publisher replaced")
	}
	s.paths[name] = p
	s.sessions[ctx.Session] = p
	p.log.Info("publisher announced", "medias", len(ctx.Description.Medias))
	return resOK(), nil
}

func (h *simHandler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	// Publishers were checked at ANNOUNCE.
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return resOK(), nil, nil
	}
	s := h.s
	p := s.path(pathName(ctx.Path))
	if !s.authorized(ctx.Conn, ctx.Request) {
		p.countAuthFailure(ctx.Request)
		return resUnauthorized(), nil, errUnauthorized
	}
	if p == nil {
		return resNotFound(), nil, nil
	}
	// gortsplib panics if a session's second SETUP returns another
	// stream: the publisher was replaced between the two.
	if st := ctx.Session.SetuppedStream(); st != nil && st != p.stream {
		return resNotFound(), nil, nil
	}
	s.mu.Lock()
	s.sessions[ctx.Session] = p
	s.mu.Unlock()
	p.addReader(ctx.Session)
	return resOK(), p.stream, nil
}

func (h *simHandler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	s := h.s
	s.mu.Lock()
	p := s.sessions[ctx.Session]
	s.mu.Unlock()
	if p == nil {
		return resNotFound(), nil
	}
	p.setPlaying(ctx.Session)
	p.log.Debug("reader playing", "transport", ctx.Session.SetuppedTransport().String())
	return resOK(), nil
}

func (h *simHandler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	s := h.s
	s.mu.Lock()
	p := s.sessions[ctx.Session]
	s.mu.Unlock()
	if p == nil || p.publisher != ctx.Session {
		return resNotFound(), nil
	}
	ctx.Session.OnPacketRTPAny(func(medi *description.Media, forma format.Format, pkt *rtp.Packet) {
		p.relay(medi, forma, pkt)
	})
	p.log.Info("publisher recording", "transport", ctx.Session.SetuppedTransport().String())
	return resOK(), nil
}

func (h *simHandler) OnPacketsLost(ctx *gortsplib.ServerHandlerOnPacketsLostCtx) {
	h.s.warn("rtp packets from publisher lost", "path", pathName(ctx.Session.SetuppedPath()), "lost", ctx.Lost)
}

func (h *simHandler) OnDecodeError(ctx *gortsplib.ServerHandlerOnDecodeErrorCtx) {
	h.s.warn("bad packet from client", "path", pathName(ctx.Session.SetuppedPath()), "error", ctx.Error)
}

func (h *simHandler) OnStreamWriteError(ctx *gortsplib.ServerHandlerOnStreamWriteErrorCtx) {
	// A reader too slow for its queue: gortsplib drops for it alone.
	h.s.warn("cannot write to reader", "path", pathName(ctx.Session.SetuppedPath()), "error", ctx.Error)
}
