package eventlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// ErrUnavailable: the log cannot store or read events now (the external
// NATS is down, the disk is full, ...). Live events still flow, unlogged.
var ErrUnavailable = errors.New("event log unavailable")

// ErrOutOfRange: a position is older than the oldest the log keeps.
var ErrOutOfRange = errors.New("position no longer in the event log")

// Config says where the log lives and how long it keeps what.
type Config struct {
	// DataDir holds the embedded server's JetStream file store (in
	// DataDir/jetstream). Required unless URL is set.
	DataDir string
	// Listen, when set (host:port), makes the embedded server accept NATS
	// clients there too; by default it has no listener at all.
	Listen string
	// URL of an external NATS (nats://host:4222, comma-separated for a
	// cluster) to use instead of the embedded server.
	URL string
	// CredsFile is the NATS credentials file for URL.
	CredsFile string
	// CAFile, CertFile and KeyFile: TLS to URL (a CA to trust, a client
	// certificate).
	CAFile, CertFile, KeyFile string
	// WindowRetention is how long WindowResult events are kept. It
	// defaults to 24h.
	WindowRetention time.Duration
	// ActionRetention is how long ActionStarted, ActionEnded and
	// StreamStatus events (and snapshots) are kept. It defaults to 30 days.
	ActionRetention time.Duration
	// MaxBytes bounds the log; the oldest events go first. It defaults to
	// 2 GiB.
	MaxBytes int64
	// Replicas is how many copies JetStream keeps of the event stream
	// (3 on a three-server cluster). It defaults to 1.
	Replicas int
	// AppendTimeout bounds one append. It defaults to 2s.
	AppendTimeout time.Duration
	// Log receives the log's (and the embedded server's) messages.
	Log *slog.Logger
}

func (c *Config) fill() {
	if c.WindowRetention == 0 {
		c.WindowRetention = 24 * time.Hour
	}
	if c.ActionRetention == 0 {
		c.ActionRetention = 30 * 24 * time.Hour
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 2 << 30
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.AppendTimeout == 0 {
		c.AppendTimeout = 2 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Log is an open event log.
type Log struct {
	cfg    Config
	log    *slog.Logger
	ns     *natsserver.Server // nil with an external NATS
	nc     *nats.Conn
	js     jetstream.JetStream
	stream atomic.Pointer[jetstream.Stream] // nil until the stream exists
}

// Open starts (or connects to) NATS and makes sure the event stream exists
// with cfg's limits. With an external NATS that cannot be reached, Open
// still returns a Log: it connects in the background, and until then
// appends fail with ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	cfg.fill()
	l := &Log{cfg: cfg, log: cfg.Log}
	if cfg.URL == "" {
		if err := l.startEmbedded(); err != nil {
			return nil, err
		}
	}
	opts := []nats.Option{
		nats.Name("actiond"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				l.log.Warn("event log: disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { l.log.Info("event log: reconnected to NATS") }),
	}
	url := cfg.URL
	if l.ns != nil {
		opts = append(opts, nats.InProcessServer(l.ns))
		url = ""
	} else {
		opts = append(opts, nats.RetryOnFailedConnect(true))
		if cfg.CredsFile != "" {
			opts = append(opts, nats.UserCredentials(cfg.CredsFile))
		}
		if cfg.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.CAFile))
		}
		if cfg.CertFile != "" {
			opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		l.shutdownEmbedded()
		return nil, fmt.Errorf("event log: connect to NATS: %w", err)
	}
	l.nc = nc
	if l.js, err = jetstream.New(nc); err != nil {
		l.Close()
		return nil, fmt.Errorf("event log: %w", err)
	}
	if err := l.ensureStream(ctx); err != nil {
		if l.ns != nil {
			l.Close()
			return nil, err
		}
		l.log.Warn("event log: not ready yet; events flow unlogged until it is", "err", err)
	}
	return l, nil
}

// startEmbedded runs the in-process NATS server on DataDir.
func (l *Log) startEmbedded() error {
	if l.cfg.DataDir == "" {
		return errors.New("event log: data_dir is not set")
	}
	dir := filepath.Join(l.cfg.DataDir, "nats")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("event log: data_dir: %w", err)
	}
	opts := &natsserver.Options{
		ServerName:             "actiond",
		JetStream:              true,
		StoreDir:               dir,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
		DontListen:             l.cfg.Listen == "",
	}
	if l.cfg.Listen != "" {
		host, port, err := net.SplitHostPort(l.cfg.Listen)
		if err != nil {
			return fmt.Errorf("event log: nats.listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return fmt.Errorf("event log: nats.listen: port %q: %w", port, err)
		}
		if p == 0 {
			p = -1 // the server's "any free port"
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		return fmt.Errorf("event log: start NATS: %w", err)
	}
	ns.SetLoggerV2(&natsLogger{l.log.With("component", "nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return errors.New("event log: the embedded NATS server did not start in 30s (is another actiond using the same data_dir?)")
	}
	l.ns = ns
	return nil
}

func (l *Log) shutdownEmbedded() {
	if l.ns != nil {
		l.ns.Shutdown()
		l.ns.WaitForShutdown()
	}
}

// ensureStream creates or updates the event stream.
func (l *Log) ensureStream(ctx context.Context) error {
	if l.stream.Load() != nil {
		return nil
	}
	if !l.nc.IsConnected() {
		return fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	s, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "actiond events, by position",
		Subjects:    []string{SubjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxBytes:    l.cfg.MaxBytes,
		AllowMsgTTL: true,
		Replicas:    l.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("event log: create stream %s: %w", StreamName, err)
	}
	l.stream.Store(&s)
	return nil
}

// Close closes the connection and stops the embedded server (after its
// store is flushed).
func (l *Log) Close() {
	if l.nc != nil {
		l.nc.Close()
	}
	l.shutdownEmbedded()
}

// Connected says whether the connection to NATS is up now.
func (l *Log) Connected() bool { return l.nc.IsConnected() }

// JetStream returns the log's JetStream context (for KV and object
// stores, consumers of the log).
func (l *Log) JetStream() jetstream.JetStream { return l.js }

// Conn returns the NATS connection.
func (l *Log) Conn() *nats.Conn { return l.nc }

// Embedded returns the in-process NATS server; nil with an external NATS.
func (l *Log) Embedded() *natsserver.Server { return l.ns }

// ClientURL returns where NATS clients reach the embedded server when it
// listens (nats.listen); "" otherwise.
func (l *Log) ClientURL() string {
	if l.ns == nil || l.cfg.Listen == "" {
		return ""
	}
	return l.ns.ClientURL()
}

// Config returns the log's configuration, defaults filled in.
func (l *Log) Config() Config { return l.cfg }

// Retention returns how long events of kind are kept.
func (l *Log) Retention(kind string) time.Duration {
	if kind == KindWindow {
		return l.cfg.WindowRetention
	}
	return l.cfg.ActionRetention
}

// Append stores ev and returns its position once JetStream acknowledged
// it. ev is not changed. Errors wrap ErrUnavailable when the log cannot
// take events now.
func (l *Log) Append(ctx context.Context, ev *actiondv1.Event) (uint64, error) {
	kind := KindOf(ev)
	if kind == "" {
		return 0, fmt.Errorf("event log: %T events are not logged", ev.GetKind())
	}
	if !l.nc.IsConnected() {
		return 0, fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.AppendTimeout)
	defer cancel()
	if err := l.ensureStream(ctx); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	data, err := Encode(ev)
	if err != nil {
		return 0, err
	}
	ack, err := l.js.Publish(ctx, Subject(ev.GetStream(), kind), data,
		jetstream.WithExpectStream(StreamName), jetstream.WithMsgTTL(l.Retention(kind)))
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return ack.Sequence, nil
}

// State is what the log holds now.
type State struct {
	// Messages and Bytes stored.
	Messages, Bytes uint64
	// First and Last are the oldest and newest positions kept (0, 0 when
	// empty; First is then Last+1 of what was ever stored).
	First, Last uint64
}

// State asks JetStream what the log holds.
func (l *Log) State(ctx context.Context) (State, error) {
	if !l.nc.IsConnected() {
		return State{}, fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	sp := l.stream.Load()
	if sp == nil {
		if err := l.ensureStream(ctx); err != nil {
			return State{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		sp = l.stream.Load()
	}
	info, err := (*sp).Info(ctx)
	if err != nil {
		return State{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	st := info.State
	return State{Messages: st.Msgs, Bytes: st.Bytes, First: st.FirstSeq, Last: st.LastSeq}, nil
}

// Encode returns the bytes the log stores for ev: its protobuf, without
// position and logged (those come from where it is stored).
func Encode(ev *actiondv1.Event) ([]byte, error) {
	pos, logged := ev.Position, ev.Logged
	if pos != 0 || logged {
		ev = proto.CloneOf(ev)
		ev.Position, ev.Logged = 0, false
	}
	return proto.Marshal(ev)
}

// Decode returns the event a message of the log carries, with its position
// (the stream sequence) and logged set.
func Decode(msg jetstream.Msg) (*actiondv1.Event, error) {
	md, err := msg.Metadata()
	if err != nil {
		return nil, fmt.Errorf("event log: message metadata: %w", err)
	}
	return decode(msg.Data(), md.Sequence.Stream)
}

// DecodeRaw is Decode for a message read directly (Stream.GetMsg).
func DecodeRaw(msg *jetstream.RawStreamMsg) (*actiondv1.Event, error) {
	return decode(msg.Data, msg.Sequence)
}

func decode(data []byte, seq uint64) (*actiondv1.Event, error) {
	ev := &actiondv1.Event{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, fmt.Errorf("event log: event at %d: %w", seq, err)
	}
	ev.Position, ev.Logged = seq, true
	return ev, nil
}

// natsLogger routes the embedded server's messages to slog.
type natsLogger struct{ log *slog.Logger }

func (n *natsLogger) Noticef(format string, v ...any) { n.log.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.log.Warn(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Fatalf(format string, v ...any)  { n.log.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Errorf(format string, v ...any)  { n.log.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Debugf(format string, v ...any)  { n.log.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Tracef(format string, v ...any)  { n.log.Debug(fmt.Sprintf(format, v...)) }
