package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/eventlog"
	"github.com/actiond/actiond/server/fleet"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrShutdownForced: the graceful shutdown did not finish in time (or a
// second signal came): connections were cut.
var ErrShutdownForced = errors.New("shutdown forced: connections cut before they ended")

// Server is the actiond process: the gRPC API (StreamService,
// RecognitionService, grpc.health.v1, reflection), the Prometheus endpoint,
// and, once the model is loaded, the scheduler, the hub and the streams.
//
// Start listens at once and loads the model in the background: until it is
// loaded, health says NOT_SERVING and the API answers UNAVAILABLE.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	grpc    *grpc.Server
	health  *health.Server

	// auth is nil without tokens. SIGHUP (ReloadTokens) sets its tokens
	// to staticTokens and those of tokensFile, read again.
	auth         *tokenAuth
	staticTokens []string
	tokensFile   string

	lis        net.Listener
	metricsLis net.Listener
	httpSrv    *http.Server // metrics_listen
	webLis     net.Listener
	webSrv     *http.Server // http_listen: console, HTTP/JSON API

	loaded   chan struct{} // closed once loading ends, well or not
	loadErr  error         // why it failed; read after loaded
	core     atomic.Pointer[core]
	failed   chan error // a fatal error while serving (loading, the listener)
	closing  chan struct{}
	closeMu  sync.Mutex
	isClosed bool
	// followers are goroutines of Follow; Shutdown waits for them.
	followers sync.WaitGroup
	served    sync.WaitGroup // Serve goroutines
	loading   sync.WaitGroup // load, from Start until the core is up (or stopped)

	// sinks push events from the event log to MQTT and webhooks.
	sinks sinks

	// beforeLoad, for tests, runs before the model is loaded.
	beforeLoad func()
	// fleetPrevious, for tests, makes this node write the fleet's records
	// as the previous minor release did (fleet.Config.Previous).
	fleetPrevious bool
	// releaseHook, for tests, runs in the stream manager's Release before
	// a stream is stopped (StreamManager.releaseHook).
	releaseHook func(name string)
}

// core is what exists once the model is loaded.
type core struct {
	classifier   *classify.Classifier
	features     *engine.FeatureCache // nil: windows run the whole model
	model        *actiondv1.Model
	hub          *Hub
	events       *eventLog
	sched        *Scheduler
	pool         *ingest.TensorPool
	extra        []*engine.Session // the scheduler's sessions beyond the classifier's
	streams      *StreamManager
	classifyGate *classifyGate

	// In a fleet (nats.url): the membership once joined (nil until then
	// and outside a fleet); joinFleet ends when fleetJoined is closed.
	fleet       atomic.Pointer[fleet.Fleet]
	fleetJoined chan struct{}
	leaveFleet  context.CancelFunc
}

// Services that health reports on: "" is the whole server.
var healthServices = []string{"", actiondv1.StreamService_ServiceDesc.ServiceName, actiondv1.RecognitionService_ServiceDesc.ServiceName}

// New checks cfg (filling in its defaults) and builds the server; nothing
// listens until Start. log may be nil (slog.Default()).
func New(cfg Config, log *slog.Logger) (*Server, error) {
	// Settle merges the tokens file into the tokens; ReloadTokens needs
	// them apart.
	staticTokens, tokensFile := slices.Clone(cfg.Auth.Tokens), cfg.Auth.TokensFile
	cfg, err := cfg.Settle()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		metrics: NewMetrics(),
		health:  health.NewServer(),
		loaded:  make(chan struct{}),
		failed:  make(chan error, 2),
		closing: make(chan struct{}),

		staticTokens: staticTokens,
		tokensFile:   tokensFile,
	}
	opts := []grpc.ServerOption{
		// Room for the largest clip plus the request around it; a larger
		// message is RESOURCE_EXHAUSTED from grpc itself.
		grpc.MaxRecvMsgSize(int(cfg.Classify.MaxContentSize) + 1<<20),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
	}
	if cfg.TLS.CertFile != "" {
		creds, err := credentials.NewServerTLSFromFile(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("config: tls: %w", err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	unary := []grpc.UnaryServerInterceptor{s.logUnary}
	stream := []grpc.StreamServerInterceptor{s.logStream}
	if s.auth = newTokenAuth(cfg.Auth.Tokens); s.auth != nil {
		unary = append(unary, s.auth.unary)
		stream = append(stream, s.auth.stream)
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))
	s.grpc = grpc.NewServer(opts...)
	actiondv1.RegisterStreamServiceServer(s.grpc, &streamService{srv: s})
	actiondv1.RegisterRecognitionServiceServer(s.grpc, &recognitionService{srv: s})
	actiondv1.RegisterSinkServiceServer(s.grpc, &sinkService{srv: s})
	s.metrics.registry.MustRegister(sinkCollector{s})
	actiondv1.RegisterHistoryServiceServer(s.grpc, &historyService{srv: s})
	actiondv1.RegisterFleetServiceServer(s.grpc, &serverFleetService{srv: s})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, name := range healthServices {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	// HistoryService's health follows the event log's (eventLog);
	// FleetService's says whether the node has joined its fleet.
	s.health.SetServingStatus(actiondv1.HistoryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(actiondv1.FleetService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
	if *cfg.Reflection {
		ropts := reflection.ServerOptions{Services: s.grpc, DescriptorResolver: actiondv1.DocumentedFiles()}
		reflectionv1.RegisterServerReflectionServer(s.grpc, reflection.NewServerV1(ropts))
		reflectionv1alpha.RegisterServerReflectionServer(s.grpc, reflection.NewServer(ropts))
	}
	return s, nil
}

// Config returns the server's configuration, defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Start listens on the gRPC and metrics addresses, serves, and loads the
// model in the background.
func (s *Server) Start() error {
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.lis = lis
	if s.cfg.MetricsListen != "" {
		if s.metricsLis, err = net.Listen("tcp", s.cfg.MetricsListen); err != nil {
			lis.Close()
			return fmt.Errorf("metrics_listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", s.metrics.Handler())
		mux.Handle("/snapshots/", s.SnapshotHandler())
		s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.served.Go(func() {
			if err := s.httpSrv.Serve(s.metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.fail(fmt.Errorf("metrics: %w", err))
			}
		})
	}
	if *s.cfg.HTTPListen != "" {
		if err := s.startHTTP(); err != nil {
			lis.Close()
			if s.metricsLis != nil {
				s.httpSrv.Close()
			}
			return err
		}
	}
	s.served.Go(func() {
		if err := s.grpc.Serve(lis); err != nil {
			s.fail(fmt.Errorf("serve gRPC: %w", err))
		}
	})
	tls := "off"
	if s.cfg.TLS.CertFile != "" {
		tls = "on"
	}
	s.log.Info("serving", "addr", s.Addr(), "http", s.HTTPAddr(), "metrics", s.MetricsAddr(), "tls", tls,
		"auth", len(s.cfg.Auth.Tokens) > 0, "reflection", *s.cfg.Reflection)
	if len(s.cfg.Auth.Tokens) > 0 && s.cfg.TLS.CertFile == "" && (!isLoopback(s.Addr()) || (s.webLis != nil && !isLoopback(s.HTTPAddr()))) {
		s.log.Warn("bearer tokens travel in plaintext: set tls.cert_file and tls.key_file")
	}
	s.loading.Go(s.load)
	return nil
}

func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr returns the gRPC address, with the port chosen for port 0.
func (s *Server) Addr() string {
	if s.lis == nil {
		return s.cfg.Listen
	}
	return s.lis.Addr().String()
}

// MetricsAddr returns the metrics address, "" when there is none. Without
// metrics_listen, /metrics is served on the HTTP listener.
func (s *Server) MetricsAddr() string {
	if s.metricsLis == nil {
		return ""
	}
	return s.metricsLis.Addr().String()
}

// HTTPAddr returns the address of the HTTP listener (console and
// HTTP/JSON API), "" when http_listen is off.
func (s *Server) HTTPAddr() string {
	if s.webLis == nil {
		return ""
	}
	return s.webLis.Addr().String()
}

// ConsoleURL returns the web console's address, "" when http_listen is off.
func (s *Server) ConsoleURL() string {
	if s.webLis == nil {
		return ""
	}
	scheme := "http"
	if s.cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + s.webLis.Addr().String() + "/"
}

// startHTTP listens on http_listen and serves the console and the
// HTTP/JSON API, with the gRPC listener's TLS certificate when it has one.
func (s *Server) startHTTP() error {
	h, err := s.httpHandler()
	if err != nil {
		return err
	}
	if s.webLis, err = net.Listen("tcp", *s.cfg.HTTPListen); err != nil {
		if s.cfg.httpDefault {
			s.log.Warn("no web console and no HTTP/JSON API: the default http_listen is taken; set http_listen (or --http-listen) to another address",
				"http_listen", *s.cfg.HTTPListen, "error", err)
			return nil
		}
		return fmt.Errorf("http_listen: %w", err)
	}
	s.webSrv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.served.Go(func() {
		var err error
		if s.cfg.TLS.CertFile != "" {
			err = s.webSrv.ServeTLS(s.webLis, s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile)
		} else {
			err = s.webSrv.Serve(s.webLis)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("http: %w", err))
		}
	})
	return nil
}

// Loaded is closed once the model is loaded (or failed to load).
func (s *Server) Loaded() <-chan struct{} { return s.loaded }

// Failed delivers a fatal error: the model did not load, or a listener
// failed.
func (s *Server) Failed() <-chan error { return s.failed }

func (s *Server) fail(err error) {
	select {
	case s.failed <- err:
	default:
	}
}

// ready returns the loaded core, or why there is none.
func (s *Server) ready() (*core, error) {
	select {
	case <-s.closing:
		return nil, ErrShuttingDown
	default:
	}
	if c := s.core.Load(); c != nil {
		return c, nil
	}
	select {
	case <-s.loaded:
		if s.loadErr != nil {
			return nil, fmt.Errorf("%w: %v", ErrShuttingDown, s.loadErr)
		}
	default:
	}
	return nil, ErrNotReady
}

// load loads the model, starts the scheduler, the hub and the streams, and
// says SERVING.
func (s *Server) load() {
	defer close(s.loaded)
	if s.beforeLoad != nil {
		s.beforeLoad()
	}
	start := time.Now()
	c, err := s.loadCore()
	if err != nil {
		s.loadErr = err
		s.log.Error("cannot load the model", "model", s.cfg.Model, "error", err)
		s.fail(err)
		return
	}
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.isClosed {
		// Shutdown came while loading: it waits for this stop.
		c.stop()
		c.closeModels()
		return
	}
	s.core.Store(c)
	if err := s.StartSinks(c.events.log.JetStream()); err != nil {
		s.log.Error("sinks not started", "error", err)
	}
	if err := c.streams.Restore(s.cfg.Streams); err != nil {
		s.loadErr = err
		s.fail(err)
		return
	}
	s.metrics.setStreams(c.streams.All)
	s.metrics.modelLoaded.Set(1)
	if !s.cfg.InFleet() {
		// A fleet node says SERVING once it has joined (joinFleet).
		for _, name := range healthServices {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
	}
	if s.cfg.InFleet() {
		ctx, cancel := context.WithCancel(context.Background())
		c.leaveFleet = cancel
		go s.joinFleet(ctx, c)
	} else {
		close(c.fleetJoined)
		s.health.SetServingStatus(actiondv1.FleetService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	s.log.Info("model loaded: serving", "model", c.model.GetName(), "labels", len(c.model.GetLabels()),
		"took", time.Since(start).Round(time.Millisecond), "streams", len(s.cfg.Streams))
}

func (s *Server) loadCore() (*core, error) {
	nsess, threads := InferenceSplit(s.cfg.Inference.Threads, s.cfg.Inference.Sessions)
	cl, err := classify.OpenClassifier(s.cfg.Model, threads)
	if err != nil {
		return nil, err
	}
	man := cl.Manifest()
	var params int64
	if n, err := engine.ParamCount(s.cfg.Model); err == nil {
		params = n
	}
	c := &core{
		classifier:   cl,
		model:        modelProto(man, params),
		classifyGate: newClassifyGate(s.cfg.Classify.MaxConcurrent),
		fleetJoined:  make(chan struct{}),
	}
	var sessions []*engine.Session
	enc := ingest.FrameEncoder(nil)
	if man.FeatureCache != nil && *s.cfg.Inference.FeatureCache {
		if c.features, err = engine.OpenFeatureCache(s.cfg.Model, man, threads); err == nil {
			if err = c.features.Widen(nsess, threads); err != nil {
				c.features.Close()
			}
		}
		if err != nil {
			// The model itself works: serve it whole rather than not at all.
			c.features = nil
			s.log.Warn("feature cache off: running the whole model per window", "error", err)
		} else {
			sessions, enc = c.features.Backs(), c.features
			s.log.Info("feature cache on: the front runs once per kept frame, the back per window",
				"front", c.features.Front().Name(), "back", c.features.Back().Name(), "features_per_frame", c.features.Shape())
		}
	}
	if sessions == nil {
		sessions = []*engine.Session{cl.Session()}
		for len(sessions) < nsess {
			sess, err := engine.Open(s.cfg.Model, engine.Options{Threads: threads, NoSpin: true})
			if err != nil {
				c.closeModels()
				return nil, err
			}
			c.extra = append(c.extra, sess)
			sessions = append(sessions, sess)
		}
	}
	s.log.Info("inference", "sessions", nsess, "threads_per_session", threads, "max_batch", s.cfg.Inference.MaxBatch)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	events, restartEnds, err := openEventLog(ctx, s.cfg, s.metrics, s.log.With("component", "eventlog"), func(st healthpb.HealthCheckResponse_ServingStatus) {
		s.health.SetServingStatus(actiondv1.HistoryService_ServiceDesc.ServiceName, st)
	})
	cancel()
	if err != nil {
		c.closeModels()
		return nil, err
	}
	c.events = events
	c.hub = NewHub(man, s.cfg.Subscribers.QueueSize, s.cfg.Subscribers.MaxSubscribers, s.metrics, s.log.With("component", "hub"))
	c.hub.events = events
	c.hub.inFleet = s.cfg.InFleet()
	c.hub.restartEnds = restartEnds
	itemSize := man.Segments * 3 * man.InputSize * man.InputSize
	if enc != nil {
		itemSize = man.Segments * enc.FeatureSize()
	}
	c.pool = ingest.NewTensorPool(itemSize)
	c.sched = NewScheduler(sessions, man, s.cfg.Inference.MaxBatch, s.cfg.Inference.MaxWait, c.pool,
		c.hub.windowResult, s.metrics, s.log.With("component", "scheduler"))
	c.hub.Start()
	c.sched.Start()
	// The streams added over the API are kept in the stream registry, a
	// KV bucket beside the event log; it imports state_file once.
	openRegistry := func() (*streamRegistry, error) {
		if !events.log.Connected() {
			return nil, fmt.Errorf("%w: not connected to NATS", eventlog.ErrUnavailable)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return openStreamRegistry(ctx, events.log.JetStream(), s.cfg.StateFile, s.cfg.NATS.Replicas, s.log.With("component", "streams"))
	}
	var state streamStore
	if reg, err := openRegistry(); err != nil {
		s.log.Error("stream registry unavailable: the streams added over the API are watched again at the next start with it; changes fail until it is back", "error", err)
		state = &lateRegistry{open: openRegistry}
	} else {
		state = reg
	}
	deps := &streamDeps{cfg: &s.cfg, model: man, encoder: enc, sched: c.sched, pool: c.pool, hub: c.hub, log: s.log}
	c.streams = NewStreamManager(deps, state, s.log.With("component", "streams"))
	c.streams.releaseHook = s.releaseHook
	return c, nil
}

// stop stops the streams (their last events go out), stops the scheduler
// (its runs in flight end), and ends the subscriptions.
func (c *core) stop() {
	if c.leaveFleet != nil {
		// joinFleet runs only when leaveFleet is set: a core stopped before
		// it started (closed while loading, or a failed restore) has none
		// to wait for.
		c.leaveFleet()
		<-c.fleetJoined
	}
	if f := c.fleet.Load(); f != nil {
		f.Close() // each stream stops here before its lease is handed back
	}
	c.streams.watchers.Wait()
	c.streams.Close(c.sched.Close)
	c.hub.Close()
	c.events.close()
}

// closeModels frees the model's sessions.
func (c *core) closeModels() {
	c.classifier.Close()
	if c.features != nil {
		c.features.Close()
	}
	for _, s := range c.extra {
		s.Close()
	}
}

// Follow calls fn with every event that passes req's filter, on a goroutine
// of the server's, until the server shuts down: for in-process watchers
// such as the demo's terminal display. It needs the model loaded.
func (s *Server) Follow(req *actiondv1.SubscribeRequest, fn func(*actiondv1.Event)) error {
	c, err := s.ready()
	if err != nil {
		return err
	}
	f, err := newSubscriptionFilter(req, c.classifier.Manifest().Labels)
	if err != nil {
		return err
	}
	sub, err := c.hub.subscribe(f)
	if err != nil {
		return err
	}
	s.followers.Go(func() {
		_ = sendEvents(context.Background(), sub.queue, 0, func(r *actiondv1.SubscribeResponse) error {
			fn(r.GetEvent())
			return nil
		})
	})
	return nil
}

// Shutdown stops the server gracefully: health says NOT_SERVING, no new
// calls are taken, the streams stop (each subscriber gets their last
// StreamStatus, STOPPED, and then UNAVAILABLE), the scheduler finishes its
// windows, and the model is freed. When ctx ends first, connections are cut
// and it returns ErrShutdownForced.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeMu.Lock()
	if s.isClosed {
		s.closeMu.Unlock()
		return nil
	}
	s.isClosed = true
	c := s.core.Load()
	s.closeMu.Unlock()

	s.log.Info("shutting down")
	s.health.Shutdown()
	if c != nil {
		// A fleet node hands its streams over first, still answering
		// the API but NOT_SERVING, so that clients move elsewhere.
		s.drainFleet(ctx, c)
	}
	close(s.closing)
	grpcDone := make(chan struct{})
	go func() {
		s.grpc.GracefulStop() // stops accepting at once; waits for the calls
		close(grpcDone)
	}()
	coreDone := make(chan struct{})
	go func() {
		defer close(coreDone)
		// The sinks stop before the log closes; what they have not
		// delivered stays in the log for the next start.
		s.stopSinks()
		if c != nil {
			c.stop()
		} else {
			// Still loading: load stops the core it makes, and nothing it
			// started (the event log's files among them) outlives Shutdown.
			s.loading.Wait()
		}
		s.followers.Wait()
	}()
	forced := false
	select {
	case <-coreDone:
	case <-ctx.Done():
		forced = true
	}
	if !forced {
		select {
		case <-grpcDone:
		case <-ctx.Done():
			forced = true
		}
	}
	if forced {
		s.log.Warn("graceful shutdown did not finish in time: cutting connections")
		s.grpc.Stop()
	}
	<-grpcDone
	for _, hs := range []*http.Server{s.httpSrv, s.webSrv} {
		if hs != nil {
			hctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if hs.Shutdown(hctx) != nil {
				hs.Close() // a Subscribe over HTTP the gRPC server already ended
			}
			cancel()
		}
	}
	if forced {
		return ErrShutdownForced
	}
	s.served.Wait()
	if c != nil {
		c.closeModels()
	}
	s.log.Info("stopped")
	return nil
}

// Close shuts the server down within its shutdown_timeout.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// RunOptions tune Run.
type RunOptions struct {
	// Logger receives the server's logs; nil means a logger on stderr as
	// the configuration's log keys say.
	Logger *slog.Logger
	// Ready, if set, is called once the server listens.
	Ready func(*Server)
	// Loaded, if set, is called once the model is loaded and the server
	// is SERVING.
	Loaded func(*Server)
	// ConfigFile is the configuration file cfg was read from; SIGHUP
	// rereads its sinks (and the environment's). "" when none.
	ConfigFile string
	// Exit ends the process when a second signal finds the shutdown stuck;
	// it defaults to os.Exit.
	Exit func(code int)
}

// Run is `actiond serve`: it serves until ctx ends or SIGINT or SIGTERM
// comes, then shuts down gracefully within shutdown_timeout; a second
// signal cuts connections at once. SIGHUP rereads auth.tokens_file.
func Run(ctx context.Context, cfg Config, opts RunOptions) error {
	log := opts.Logger
	if log == nil {
		log = NewLogger(cfg.Log, os.Stderr)
	}
	exit := opts.Exit
	if exit == nil {
		exit = os.Exit
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	s, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready(s)
	}
	var failure error
	loaded := s.Loaded()
wait:
	for {
		select {
		case <-loaded:
			loaded = nil
			if s.loadErr == nil && opts.Loaded != nil {
				opts.Loaded(s)
			}
		case <-ctx.Done():
			log.Info("stopping", "reason", context.Cause(ctx))
			break wait
		case sig := <-sigs:
			log.Info("stopping: signal received; a second one stops at once", "signal", sig.String())
			break wait
		case <-hup:
			if err := s.ReloadTokens(); err != nil && !errors.Is(err, errNoTokenReload) {
				log.Error("SIGHUP: tokens not reloaded; the old ones still hold", "error", err)
			} else if err != nil {
				log.Info("SIGHUP: tokens not reloaded", "reason", err)
			}
			if opts.ConfigFile != "" {
				if err := reloadSinksFrom(s, opts.ConfigFile); err != nil {
					log.Error("SIGHUP: sinks not reloaded; the running ones go on", "error", err)
				}
			}
		case failure = <-s.Failed():
			break wait
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-sigs:
			log.Warn("second signal: stopping now", "signal", sig.String())
			cancel()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				log.Error("shutdown stuck: exiting")
				exit(1)
			}
		case <-done:
		}
	}()
	err = s.Shutdown(sctx)
	if failure != nil {
		return failure
	}
	return err
}

// NewLogger returns the server's logger as the log keys say.
func NewLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	ho := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// logUnary logs each call at debug level, and failures the server caused
// at warn.
func (s *Server) logUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	s.logCall(info.FullMethod, start, err)
	return resp, err
}

func (s *Server) logStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	s.logCall(info.FullMethod, start, err)
	return err
}

func (s *Server) logCall(method string, start time.Time, err error) {
	st := status.Convert(err)
	level := slog.LevelDebug
	if st.Code() == codes.Internal || st.Code() == codes.Unknown {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "call", "component", "grpc", "method", method,
		"code", st.Code().String(), "took", time.Since(start).Round(time.Microsecond), "error", st.Message())
}

// modelProto is the manifest as GetModel answers it.
func modelProto(m models.Manifest, params int64) *actiondv1.Model {
	out := &actiondv1.Model{
		Name:          m.Name,
		Description:   m.Description,
		Labels:        append([]string(nil), m.Labels...),
		Segments:      int32(m.Segments),
		InputSize:     int32(m.InputSize),
		ShortSide:     int32(m.ShortSide),
		Mean:          m.Mean[:],
		Std:           m.Std[:],
		Untrained:     m.Untrained,
		Params:        params,
		MacsPerClip:   m.MACsPerClip,
		Output:        actiondv1.OutputKind_OUTPUT_KIND_LOGITS,
		DefaultWindow: durationpb.New(defaultWindow(m)),
	}
	if m.Output == models.OutputProbabilities {
		out.Output = actiondv1.OutputKind_OUTPUT_KIND_PROBABILITIES
	}
	return out
}

// defaultWindow is the window streams of the model get unless they say.
func defaultWindow(m models.Manifest) time.Duration {
	if m.WindowSeconds > 0 {
		return time.Duration(m.WindowSeconds * float64(time.Second))
	}
	return 10 * time.Second
}
