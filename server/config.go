package server

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/actiond/actiond/server/sink"
)

// Config is everything `actiond serve` can be told. The zero value of a
// field means its default, which the field's comment gives; Settle fills
// the defaults in and checks every key. Keys are the yaml tags, as the
// configuration file spells them; every scalar key also has an environment
// variable, ACTIOND_ and the key's path in upper case with "_" for "." (see
// ApplyEnv).
type Config struct {
	// Listen is the gRPC address. It defaults to 127.0.0.1:50051.
	Listen string `yaml:"listen"`
	// MetricsListen is the address of the Prometheus endpoint (/metrics).
	// It defaults to "": no metrics endpoint.
	MetricsListen string `yaml:"metrics_listen"`
	// HTTPListen is the address of the HTTP listener: the web console at /,
	// the whole API over HTTP/JSON (the Connect protocol, gRPC-Web and
	// REST-style routes under /v1/), the action snapshots
	// (/snapshots/<action_id>.jpg) and, unless MetricsListen sets it apart,
	// /metrics. It takes the same tokens and the same TLS as the gRPC
	// listener. It defaults to 127.0.0.1:8080, or to port 0 of that host
	// when Listen's port is 0 (test servers); "" turns it off. When left
	// to its default and the port is taken (a second server on the
	// machine), the server warns and runs without it.
	HTTPListen *string `yaml:"http_listen"`
	// httpDefault: HTTPListen was filled in by Settle.
	httpDefault bool
	// Model is the ONNX model file. It defaults to $ACTIOND_MODEL, else
	// classify.DefaultModelPath().
	Model string `yaml:"model"`
	// StateFile is the file where earlier versions kept the streams added
	// over the API. They are now kept in the stream registry (a KV bucket
	// beside the event log, in data_dir): an existing state file is
	// imported into it once, at the first start, and then left alone. It
	// defaults to "".
	StateFile string `yaml:"state_file"`
	// DataDir is where the server keeps what lasts: the embedded event log
	// (events, action history, snapshots, the stream registry). It
	// defaults to $XDG_STATE_HOME/actiond ($HOME/.local/state/actiond).
	// Only one server may use a data directory at a time.
	DataDir string `yaml:"data_dir"`
	// MaxStreams is the most streams the server watches, configured and
	// added together. It defaults to 64.
	MaxStreams int `yaml:"max_streams"`
	// Reflection turns gRPC server reflection (grpcurl list/describe) on.
	// It defaults to true.
	Reflection *bool `yaml:"reflection"`
	// ShutdownTimeout bounds a graceful shutdown; after it, connections are
	// cut. It defaults to 10s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxConcurrentStreams is the most gRPC calls one client connection
	// may have open at once (HTTP/2 streams; each open Subscribe holds
	// one); more wait until one ends. It defaults to 100, the least that
	// HTTP/2 recommends.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`

	Log         LogConfig         `yaml:"log"`
	Inference   InferenceConfig   `yaml:"inference"`
	Actions     ActionsConfig     `yaml:"actions"`
	Subscribers SubscribersConfig `yaml:"subscribers"`
	Classify    ClassifyConfig    `yaml:"classify"`
	Auth        AuthConfig        `yaml:"auth"`
	TLS         TLSConfig         `yaml:"tls"`
	Ingest      IngestConfig      `yaml:"ingest"`
	Sinks       SinksConfig       `yaml:"sinks"`
	NATS        NATSConfig        `yaml:"nats"`
	Events      EventsConfig      `yaml:"events"`
	Node        NodeConfig        `yaml:"node"`
	Fleet       FleetConfig       `yaml:"fleet"`

	// Version is the actiond release, shown to the other nodes of a fleet;
	// set by the program, not a key.
	Version string `yaml:"-"`

	// Streams are the cameras watched from the start. Streams added over
	// the API are kept in the stream registry instead.
	Streams []StreamSpec `yaml:"streams"`
}

// LogConfig says how the server logs.
type LogConfig struct {
	// Level is debug, info, warn or error. It defaults to info.
	Level string `yaml:"level"`
	// Format is text or json. It defaults to text.
	Format string `yaml:"format"`
}

// InferenceConfig tunes the one scheduler that runs every stream's windows
// through the model.
type InferenceConfig struct {
	// Threads is the number of ONNX Runtime intra-op threads, shared by
	// the sessions. It defaults to 0: all cores.
	Threads int `yaml:"threads"`
	// Sessions is how many model runs may be in flight at once, each on
	// its own engine session with Threads/Sessions intra-op threads (and,
	// with the feature cache, as many fronts). It defaults to 0:
	// DefaultSessions(Threads), one per 4 threads (1 on 2 and 4 cores, 2
	// on 8, 4 on 16, 16 on 64): one batch-1 run does not scale past about
	// 4 threads, because each of its many small layers ends at a barrier
	// where the threads wait for the slowest, so a many-core machine
	// fills its cores with runs side by side. Each session costs a copy
	// of the model's weights.
	Sessions int `yaml:"sessions"`
	// MaxBatch is the most windows run through the model at once, from
	// any streams. It defaults to 1: on CPUs a batch of B windows costs
	// about B windows' time (a window is already 16 frames), so batching
	// only adds latency (BENCHMARKS.md, "Batching").
	MaxBatch int `yaml:"max_batch"`
	// MaxWait is how long the first window of a batch waits for others
	// before the batch runs anyway. It defaults to 20ms.
	MaxWait time.Duration `yaml:"max_wait"`
	// FeatureCache, for a model that ships split in two (PP-TSMv2 built
	// by actiond: see models.FeatureCache), runs the per-frame front once
	// per kept frame as it arrives and keeps its output in the window, so
	// that each window runs only the back: consecutive windows share 14 of
	// their 16 frames at the default stride. It defaults to true; false
	// runs the whole model per window. Models without halves always do.
	FeatureCache *bool `yaml:"feature_cache"`
}

// ActionsConfig are the defaults of the stream options that turn window
// results into ActionStarted and ActionEnded events; each stream may
// override them.
type ActionsConfig struct {
	// OnThreshold is the score (0..1] at or above which a label on top of
	// a window counts towards starting an action. It defaults to 0.6:
	// above one half, so at most one label of a softmax can reach it.
	OnThreshold float32 `yaml:"on_threshold"`
	// OffThreshold is the score (0..1] below which a started action's
	// label counts towards ending it; at most OnThreshold. It defaults to
	// 0.4: the gap to OnThreshold keeps a label that wavers around one
	// value from starting and ending over and over.
	OffThreshold float32 `yaml:"off_threshold"`
	// MinConsecutiveWindows is how many windows in a row a label must be
	// on top at or above OnThreshold to start, and below OffThreshold to
	// end. It defaults to 2: one stray window neither starts nor ends an
	// action, and an action shows up one stride after the window that
	// could have started it.
	MinConsecutiveWindows int `yaml:"min_consecutive_windows"`
	// TopK is how many labels each WindowResult carries. It defaults to 5.
	TopK int `yaml:"top_k"`
}

// SubscribersConfig bounds what subscribers may hold.
type SubscribersConfig struct {
	// QueueSize is how many events wait for each subscriber; when it falls
	// further behind, its oldest events are dropped and it gets a Dropped
	// event. It defaults to 256.
	QueueSize int `yaml:"queue_size"`
	// MaxSubscribers is the most Subscribe calls open at once. It
	// defaults to 256.
	MaxSubscribers int `yaml:"max_subscribers"`
}

// ClassifyConfig bounds the Classify RPC.
type ClassifyConfig struct {
	// MaxContentSize is the largest clip a Classify request may carry,
	// e.g. "64MiB" or 1048576 (bytes). It defaults to 64MiB.
	MaxContentSize ByteSize `yaml:"max_content_size"`
	// AllowedDirs are the directories a Classify uri (file://) may name
	// files in, with their subdirectories. It defaults to none: every uri
	// is refused.
	AllowedDirs []string `yaml:"allowed_dirs"`
	// TempDir is where uploaded clips are written while they are
	// classified. It defaults to the system's temporary directory.
	TempDir string `yaml:"temp_dir"`
	// MaxConcurrent is how many Classify calls decode at once. As many
	// more wait for a place (until their deadline); beyond that, a call
	// is RESOURCE_EXHAUSTED at once. An upload is written to TempDir only
	// once its call has a place. It defaults to 2.
	MaxConcurrent int `yaml:"max_concurrent"`
}

// AuthConfig turns on bearer-token authentication.
type AuthConfig struct {
	// Tokens are the bearer tokens a client may send ("authorization:
	// Bearer <token>"); any one of them is accepted on every RPC but
	// grpc.health.v1. It defaults to none: no authentication.
	Tokens []string `yaml:"tokens"`
	// TokensFile names a file with more tokens, one per line (blank lines
	// and lines starting with # are skipped). It defaults to "".
	TokensFile string `yaml:"tokens_file"`
}

// TLSConfig turns on TLS for the gRPC listener.
type TLSConfig struct {
	// CertFile is the server's certificate chain (PEM). It defaults to "":
	// plaintext. Set both or neither of CertFile and KeyFile.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the certificate's private key (PEM).
	KeyFile string `yaml:"key_file"`
}

// IngestConfig tunes how every stream talks to its camera.
type IngestConfig struct {
	// ConnectTimeout bounds connecting, from dialling to the answer to
	// PLAY. It defaults to 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReadTimeout is how long a playing stream may deliver no video before
	// it counts as lost; also how long after connecting it may deliver
	// video with no key frame or recovery point to start decoding at
	// ("no decodable video"): keep it above the camera's key frame
	// interval. It defaults to 10s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// BackoffMin and BackoffMax bound the wait between reconnects, which
	// doubles with each failure, with jitter. They default to 1s and 30s.
	BackoffMin time.Duration `yaml:"backoff_min"`
	BackoffMax time.Duration `yaml:"backoff_max"`
	// MaxFramePixels is the largest frame, width times height, read from
	// a camera or a Classify clip; a larger one is refused before it is
	// decoded (the stream retries; Classify is INVALID_ARGUMENT). Spelt
	// as a count or as WIDTHxHEIGHT. It defaults to 8192x4320.
	MaxFramePixels Pixels `yaml:"max_frame_pixels"`
	// AllowedHosts, when not empty, are the only camera hosts streams may
	// connect to: host names, IP addresses and CIDR prefixes
	// ("cam-1.site", "10.20.0.0/16"). An IP in a URL must be in it; a
	// name must be listed, or resolve to a listed address when the stream
	// connects (checked on the dialled address, after DNS). Other hosts
	// are PERMISSION_DENIED on AddStream and UpdateStream. It defaults to
	// none: any host.
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// SinksConfig are the sinks: MQTT brokers and webhooks that get events
// from the event log, at least once (README: Sinks). In the configuration
// file `sinks:` is either the list of sinks itself or, to set
// allowed_hosts too, a mapping with allowed_hosts and list.
type SinksConfig struct {
	// AllowedHosts are the host names, IP addresses and CIDR ranges that
	// sinks may connect to, checked on the configuration and again on the
	// address dialled, after DNS resolution. It defaults to none: any
	// address.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// List are the sinks. A sink keeps its position (the last event its
	// receiver acknowledged) by name: removed and added again, or changed,
	// it resumes there.
	List []sink.Spec `yaml:"list"`
}

// NATSConfig says which NATS carries the event log. By default the server
// runs its own, in-process, on data_dir, with no network listener.
type NATSConfig struct {
	// Listen, when set (HOST:PORT), lets NATS clients (the nats CLI, other
	// tools) reach the embedded server there. It defaults to "": none.
	Listen string `yaml:"listen"`
	// URL is an external NATS (nats://host:4222; several, comma-separated,
	// for a cluster) with JetStream, used instead of the embedded server.
	// It defaults to "".
	URL string `yaml:"url"`
	// CredsFile is the credentials file (JWT and seed) for URL. It
	// defaults to "".
	CredsFile string `yaml:"creds_file"`
	// TLS to URL: a CA to trust and a client certificate. Each defaults
	// to "".
	TLS NATSTLSConfig `yaml:"tls"`
	// Replicas is how many copies JetStream keeps of the event log, the
	// stream registry and the fleet's buckets, with URL: 1 on a single
	// NATS server, 3 on a cluster of three. It defaults to 1.
	Replicas int `yaml:"replicas"`
}

// NodeConfig names this server in a fleet.
type NodeConfig struct {
	// Name is the node's name, unique in its fleet (node.name,
	// ACTIOND_NODE_NAME): 1 to 253 letters, digits, '.', '-' or '_'. A
	// second live node with the same name is refused at start. It
	// defaults to the host name. Only with nats.url.
	Name string `yaml:"name"`
}

// FleetConfig makes the servers that share one NATS (nats.url) a fleet:
// every stream is played by exactly one live node, and any node answers
// for all. Its keys are only accepted with nats.url.
type FleetConfig struct {
	// Name is the fleet's name: the nodes with the same name on one NATS
	// form one fleet. 1 to 64 letters, digits, '-' or '_'. It defaults
	// to "actiond".
	Name string `yaml:"name"`
	// Lease is how long a stream's lease and a node's heartbeat live
	// without renewal: a dead node's streams play elsewhere within two
	// leases. The same on every node (a node with another one is
	// refused). It defaults to 10s; at least 1s.
	Lease time.Duration `yaml:"lease"`
	// MaxStreamsPerNode caps the streams this node plays. It defaults to
	// 0: only the fair share plus one (ceil(streams/nodes)+1).
	MaxStreamsPerNode int `yaml:"max_streams_per_node"`
	// MovesPerMinute is how many streams a node gives away per minute
	// while it drains or is over its cap. It defaults to 30.
	MovesPerMinute int `yaml:"moves_per_minute"`
	// Address is where clients and other nodes reach this node's gRPC
	// API (HOST:PORT), shown by ListNodes. It defaults to listen when
	// listen names a host, else the host name with listen's port.
	Address string `yaml:"address"`
}

// InFleet reports whether the configuration makes the server a fleet node.
func (c Config) InFleet() bool { return c.NATS.URL != "" }

// NATSTLSConfig is TLS to an external NATS.
type NATSTLSConfig struct {
	// CAFile is the PEM certificates to verify the server with.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key (PEM).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// EventsConfig says how long the event log keeps what.
type EventsConfig struct {
	// WindowRetention is how long WindowResult events are kept. It
	// defaults to 24h.
	WindowRetention time.Duration `yaml:"window_retention"`
	// ActionRetention is how long ActionStarted, ActionEnded and
	// StreamStatus events, and the actions' snapshots, are kept. It
	// defaults to 720h (30 days).
	ActionRetention time.Duration `yaml:"action_retention"`
	// MaxBytes bounds the event log; past it the oldest events go first.
	// It defaults to 2GiB.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// SnapshotWidth is the most pixels wide an action's snapshot is
	// (smaller frames are kept as they are). It defaults to 640.
	SnapshotWidth int `yaml:"snapshot_width"`
}

// DefaultDataDir is data_dir's default: $XDG_STATE_HOME/actiond, where
// XDG_STATE_HOME defaults to ~/.local/state.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "actiond"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the default data_dir: set data_dir (%w)", err)
	}
	return filepath.Join(home, ".local", "state", "actiond"), nil
}

// Defaults of Config.
const (
	DefaultListen          = "127.0.0.1:50051"
	DefaultHTTPListen      = "127.0.0.1:8080"
	DefaultMaxStreams      = 64
	DefaultShutdownTimeout = 10 * time.Second
	DefaultMaxBatch        = 1
	DefaultMaxWait         = 20 * time.Millisecond
	DefaultOnThreshold     = 0.6
	DefaultOffThreshold    = 0.4
	DefaultMinConsecutive  = 2
	DefaultTopK            = 5
	DefaultQueueSize       = 256
	DefaultMaxSubscribers  = 256
	DefaultMaxContentSize  = 64 << 20
	DefaultMaxConcurrent   = 2
	// DefaultMaxConcurrentStreams is max_concurrent_streams' default.
	DefaultMaxConcurrentStreams = 100
	// DefaultMaxFramePixels is ingest.max_frame_pixels' default: 8K.
	DefaultMaxFramePixels  = ingest.DefaultMaxFramePixels
	DefaultWindowRetention = 24 * time.Hour
	DefaultActionRetention = 30 * 24 * time.Hour
	DefaultEventsMaxBytes  = 2 << 30
	DefaultSnapshotWidth   = 640
)

// threadsPerSession is how many intra-op threads the default rule of
// inference.sessions gives each run.
const threadsPerSession = 4

// DefaultSessions is inference.sessions for a number of intra-op threads
// (0: the number of cores): one session per 4 threads, at least one.
func DefaultSessions(threads int) int {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return max(1, threads/threadsPerSession)
}

// InferenceSplit returns how many sessions run and the intra-op threads of
// each, from inference.threads and inference.sessions (0: their defaults).
func InferenceSplit(threads, sessions int) (n, perSession int) {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if sessions <= 0 {
		sessions = DefaultSessions(threads)
	}
	return sessions, max(1, threads/sessions)
}

// Settle returns c with every default filled in, or every problem found,
// each naming its key. It reads the tokens file; it checks that the model,
// the certificate and the allowed directories exist. The model's labels are
// checked against the streams only once the model is loaded.
func (c Config) Settle() (Config, error) {
	var errs FieldErrors
	bad := func(key, format string, args ...any) { errs.add(key, fmt.Sprintf(format, args...)) }

	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "must be HOST:PORT, got %q", c.Listen)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "must be HOST:PORT, got %q", c.MetricsListen)
		}
	}
	if c.HTTPListen == nil {
		addr := DefaultHTTPListen
		if _, port, err := net.SplitHostPort(c.Listen); err == nil && port == "0" {
			addr = "127.0.0.1:0"
		}
		c.HTTPListen, c.httpDefault = &addr, true
	} else if *c.HTTPListen != "" {
		if _, _, err := net.SplitHostPort(*c.HTTPListen); err != nil {
			bad("http_listen", "must be HOST:PORT, or \"\" for no HTTP listener, got %q", *c.HTTPListen)
		}
	}
	if model, err := classify.ResolveModelPath(c.Model); err != nil {
		bad("model", "%v", err)
	} else {
		c.Model = model
	}
	if c.StateFile != "" {
		if st, err := os.Stat(filepath.Dir(c.StateFile)); err != nil || !st.IsDir() {
			bad("state_file", "the directory of %q does not exist", c.StateFile)
		}
	}
	count := func(key string, v *int, def, most int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 || *v > most:
			bad(key, "must be between 1 and %d, got %d", most, *v)
		}
	}
	positive := func(key string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad(key, "must be positive, got %v", *v)
		}
	}
	if c.DataDir == "" {
		if d, err := DefaultDataDir(); err != nil {
			bad("data_dir", "%v", err)
		} else {
			c.DataDir = d
		}
	} else if !filepath.IsAbs(c.DataDir) {
		if abs, err := filepath.Abs(c.DataDir); err == nil {
			c.DataDir = abs
		}
	}
	count("max_streams", &c.MaxStreams, DefaultMaxStreams, 100000)
	if c.Reflection == nil {
		c.Reflection = new(bool)
		*c.Reflection = true
	}
	positive("shutdown_timeout", &c.ShutdownTimeout, DefaultShutdownTimeout)
	count("max_concurrent_streams", &c.MaxConcurrentStreams, DefaultMaxConcurrentStreams, 1<<20)

	switch c.Log.Level = strings.ToLower(c.Log.Level); c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format = strings.ToLower(c.Log.Format); c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}

	if c.Inference.Threads < 0 {
		bad("inference.threads", "must be 0 (all cores) or more, got %d", c.Inference.Threads)
	}
	if c.Inference.Sessions < 0 || c.Inference.Sessions > 256 {
		bad("inference.sessions", "must be 0 (one per 4 threads) or between 1 and 256, got %d", c.Inference.Sessions)
	}
	count("inference.max_batch", &c.Inference.MaxBatch, DefaultMaxBatch, 256)
	positive("inference.max_wait", &c.Inference.MaxWait, DefaultMaxWait)
	if c.Inference.FeatureCache == nil {
		c.Inference.FeatureCache = new(bool)
		*c.Inference.FeatureCache = true
	}

	a := &c.Actions
	threshold := func(key string, v *float32, def float32) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 || *v > 1 || math.IsNaN(float64(*v)):
			bad(key, "must be in (0, 1], got %v", *v)
		}
	}
	threshold("actions.on_threshold", &a.OnThreshold, DefaultOnThreshold)
	threshold("actions.off_threshold", &a.OffThreshold, DefaultOffThreshold)
	if a.OffThreshold > a.OnThreshold {
		bad("actions.off_threshold", "(%v) must not be above actions.on_threshold (%v)", a.OffThreshold, a.OnThreshold)
	}
	count("actions.min_consecutive_windows", &a.MinConsecutiveWindows, DefaultMinConsecutive, maxConsecutive)
	count("actions.top_k", &a.TopK, DefaultTopK, 1000)

	count("subscribers.queue_size", &c.Subscribers.QueueSize, DefaultQueueSize, 1<<20)
	count("subscribers.max_subscribers", &c.Subscribers.MaxSubscribers, DefaultMaxSubscribers, 100000)

	switch {
	case c.Classify.MaxContentSize == 0:
		c.Classify.MaxContentSize = DefaultMaxContentSize
	case c.Classify.MaxContentSize < 0 || c.Classify.MaxContentSize > 2<<30:
		bad("classify.max_content_size", "must be between 1 byte and 2GiB, got %v", c.Classify.MaxContentSize)
	}
	for i, d := range c.Classify.AllowedDirs {
		key := fmt.Sprintf("classify.allowed_dirs[%d]", i)
		if !filepath.IsAbs(d) {
			bad(key, "must be an absolute path, got %q", d)
			continue
		}
		real, err := filepath.EvalSymlinks(d)
		if st, serr := os.Stat(real); err != nil || serr != nil || !st.IsDir() {
			bad(key, "%q is not a directory", d)
			continue
		}
		c.Classify.AllowedDirs[i] = real
	}
	if c.Classify.TempDir == "" {
		c.Classify.TempDir = os.TempDir()
	} else if st, err := os.Stat(c.Classify.TempDir); err != nil || !st.IsDir() {
		bad("classify.temp_dir", "%q is not a directory", c.Classify.TempDir)
	}
	count("classify.max_concurrent", &c.Classify.MaxConcurrent, DefaultMaxConcurrent, 1024)

	tokens := append([]string(nil), c.Auth.Tokens...)
	if c.Auth.TokensFile != "" {
		fromFile, err := readTokensFile(c.Auth.TokensFile)
		if err != nil {
			bad("auth.tokens_file", "%v", err)
		}
		tokens = append(tokens, fromFile...)
	}
	for i, t := range c.Auth.Tokens {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			bad(fmt.Sprintf("auth.tokens[%d]", i), "must be non-empty, without spaces")
		}
	}
	c.Auth.Tokens, c.Auth.TokensFile = tokens, ""

	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "set both tls.cert_file and tls.key_file, or neither")
	}
	for key, f := range map[string]string{"tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile} {
		if f != "" {
			if _, err := os.Stat(f); err != nil {
				bad(key, "%v", err)
			}
		}
	}

	in := &c.Ingest
	positive("ingest.connect_timeout", &in.ConnectTimeout, 10*time.Second)
	positive("ingest.read_timeout", &in.ReadTimeout, 10*time.Second)
	positive("ingest.backoff_min", &in.BackoffMin, time.Second)
	positive("ingest.backoff_max", &in.BackoffMax, 30*time.Second)
	if in.BackoffMax < in.BackoffMin {
		bad("ingest.backoff_max", "(%v) must not be less than ingest.backoff_min (%v)", in.BackoffMax, in.BackoffMin)
	}
	switch {
	case in.MaxFramePixels == 0:
		in.MaxFramePixels = DefaultMaxFramePixels
	case in.MaxFramePixels < 0 || in.MaxFramePixels > maxFramePixels:
		bad("ingest.max_frame_pixels", "must be between 1 and %d (16384x16384), got %d", maxFramePixels, in.MaxFramePixels)
	}
	hosts, err := hostlist.Parse("ingest.allowed_hosts", in.AllowedHosts)
	if err != nil {
		bad("ingest.allowed_hosts", "%v", err)
		hosts = nil // the streams' hosts are judged once the list is right
	}

	c.Sinks, errs = c.Sinks.settle(errs)

	if c.NATS.Listen != "" {
		if _, _, err := net.SplitHostPort(c.NATS.Listen); err != nil {
			bad("nats.listen", "must be HOST:PORT, got %q", c.NATS.Listen)
		}
		if c.NATS.URL != "" {
			bad("nats.listen", "is for the embedded NATS: leave it out with nats.url")
		}
	}
	if c.NATS.URL != "" {
		for i, u := range strings.Split(c.NATS.URL, ",") {
			if u = strings.TrimSpace(u); !strings.Contains(u, "://") {
				bad("nats.url", "URL %d (%q) must look like nats://host:4222", i+1, u)
			}
		}
	}
	for key, f := range map[string]string{"nats.creds_file": c.NATS.CredsFile, "nats.tls.ca_file": c.NATS.TLS.CAFile,
		"nats.tls.cert_file": c.NATS.TLS.CertFile, "nats.tls.key_file": c.NATS.TLS.KeyFile} {
		if f == "" {
			continue
		}
		if c.NATS.URL == "" {
			bad(key, "is for an external NATS: set nats.url too")
		} else if _, err := os.Stat(f); err != nil {
			bad(key, "%v", err)
		}
	}
	if (c.NATS.TLS.CertFile == "") != (c.NATS.TLS.KeyFile == "") {
		bad("nats.tls", "set both nats.tls.cert_file and nats.tls.key_file, or neither")
	}
	c.settleFleet(bad)
	ev := &c.Events
	retention := func(key string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < time.Second:
			bad(key, "must be at least 1s, got %v", *v)
		}
	}
	retention("events.window_retention", &ev.WindowRetention, DefaultWindowRetention)
	retention("events.action_retention", &ev.ActionRetention, DefaultActionRetention)
	switch {
	case ev.MaxBytes == 0:
		ev.MaxBytes = DefaultEventsMaxBytes
	case ev.MaxBytes < 1<<20:
		bad("events.max_bytes", "must be at least 1MiB, got %v", ev.MaxBytes)
	}
	count("events.snapshot_width", &ev.SnapshotWidth, DefaultSnapshotWidth, 7680)

	if len(c.Streams) > c.MaxStreams {
		bad("streams", "%d streams are more than max_streams (%d)", len(c.Streams), c.MaxStreams)
	}
	seen := map[string]int{}
	for i, s := range c.Streams {
		key := fmt.Sprintf("streams[%d].", i)
		errs = append(errs, s.checkStatic().prefixed(key)...)
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			bad(key+"name", "%q is also the name of streams[%d]", s.Name, j)
		}
		if u, err := url.Parse(s.URL); err == nil && u.Hostname() != "" {
			if err := hosts.Check(u.Hostname()); err != nil {
				bad(key+"url", "%v", err)
			}
		}
		seen[s.Name] = i
	}
	if err := errs.err(); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Defaults of the fleet keys.
const (
	DefaultFleetName      = "actiond"
	DefaultFleetLease     = 10 * time.Second
	DefaultMovesPerMinute = 30
)

var (
	fleetNameSafe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	nodeNameSafe  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,253}$`)
)

// settleFleet fills in and checks node.*, fleet.* and nats.replicas.
func (c *Config) settleFleet(bad func(key, format string, args ...any)) {
	if !c.InFleet() {
		// Their defaults may be spelt out (a full configuration file);
		// anything else is a mistake.
		for key, set := range map[string]bool{
			"node.name": c.Node.Name != "", "fleet.name": c.Fleet.Name != "" && c.Fleet.Name != DefaultFleetName,
			"fleet.lease": c.Fleet.Lease != 0 && c.Fleet.Lease != DefaultFleetLease, "fleet.max_streams_per_node": c.Fleet.MaxStreamsPerNode != 0,
			"fleet.moves_per_minute": c.Fleet.MovesPerMinute != 0 && c.Fleet.MovesPerMinute != DefaultMovesPerMinute,
			"fleet.address":          c.Fleet.Address != "", "nats.replicas": c.NATS.Replicas > 1 || c.NATS.Replicas < 0,
		} {
			if set {
				bad(key, "is for a fleet: set nats.url (ACTIOND_NATS_URL) too")
			}
		}
		return
	}
	if c.Node.Name == "" {
		if h, err := os.Hostname(); err != nil || h == "" {
			bad("node.name", "no host name to default to: set node.name (ACTIOND_NODE_NAME)")
		} else {
			c.Node.Name = h
		}
	}
	if c.Node.Name != "" && !nodeNameSafe.MatchString(c.Node.Name) {
		bad("node.name", "%q: use 1 to 253 letters, digits, '.', '-' or '_'", c.Node.Name)
	}
	if c.Fleet.Name == "" {
		c.Fleet.Name = DefaultFleetName
	}
	if !fleetNameSafe.MatchString(c.Fleet.Name) {
		bad("fleet.name", "%q: use 1 to 64 letters, digits, '-' or '_'", c.Fleet.Name)
	}
	switch {
	case c.Fleet.Lease == 0:
		c.Fleet.Lease = DefaultFleetLease
	case c.Fleet.Lease < time.Second:
		bad("fleet.lease", "must be at least 1s, got %v", c.Fleet.Lease)
	}
	if c.Fleet.MaxStreamsPerNode < 0 {
		bad("fleet.max_streams_per_node", "must be 0 (the fair share plus one) or more, got %d", c.Fleet.MaxStreamsPerNode)
	}
	switch {
	case c.Fleet.MovesPerMinute == 0:
		c.Fleet.MovesPerMinute = DefaultMovesPerMinute
	case c.Fleet.MovesPerMinute < 0 || c.Fleet.MovesPerMinute > 100000:
		bad("fleet.moves_per_minute", "must be between 1 and 100000, got %d", c.Fleet.MovesPerMinute)
	}
	switch {
	case c.NATS.Replicas == 0:
		c.NATS.Replicas = 1
	case c.NATS.Replicas < 0 || c.NATS.Replicas > 5:
		bad("nats.replicas", "must be between 1 and 5, got %d", c.NATS.Replicas)
	}
	if c.Fleet.Address == "" {
		host, port, err := net.SplitHostPort(c.Listen)
		if err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				if h, herr := os.Hostname(); herr == nil {
					host = h
				}
			}
			c.Fleet.Address = net.JoinHostPort(host, port)
		}
	} else if _, _, err := net.SplitHostPort(c.Fleet.Address); err != nil {
		bad("fleet.address", "must be HOST:PORT, got %q", c.Fleet.Address)
	}
}

// settle checks the sinks and fills in their defaults.
func (sc SinksConfig) settle(errs FieldErrors) (SinksConfig, FieldErrors) {
	hosts, err := hostlist.Parse("sinks.allowed_hosts", sc.AllowedHosts)
	var bad *hostlist.EntryError
	if errors.As(err, &bad) {
		errs.add(fmt.Sprintf("sinks.allowed_hosts[%d]", bad.Index), fmt.Sprintf("must be a host name, an IP address or a CIDR range, got %q", bad.Entry))
	}
	if len(sc.List) == 0 {
		return sc, errs
	}
	list := make([]sink.Spec, len(sc.List))
	seen := map[string]int{}
	for i, spec := range sc.List {
		key := fmt.Sprintf("sinks[%d].", i)
		settled, problems := spec.Settle(hosts)
		for _, p := range problems {
			errs.add(key+p.Key, p.Problem)
		}
		if j, dup := seen[spec.Name]; dup && spec.Name != "" {
			errs.add(key+"name", fmt.Sprintf("%q is also the name of sinks[%d]", spec.Name, j))
		}
		seen[spec.Name] = i
		list[i] = settled
	}
	sc.List = list
	return sc, errs
}

// maxConsecutive bounds min_consecutive_windows.
const maxConsecutive = 1000

// maxFramePixels bounds ingest.max_frame_pixels: 16384x16384.
const maxFramePixels = 1 << 28

// Pixels is a frame size as a pixel count, which the configuration may
// spell as WIDTHxHEIGHT: 35389440 or "8192x4320".
type Pixels int

// UnmarshalText parses a pixel count or WIDTHxHEIGHT.
func (p *Pixels) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if w, h, ok := strings.Cut(strings.ToLower(s), "x"); ok {
		wn, werr := strconv.Atoi(strings.TrimSpace(w))
		hn, herr := strconv.Atoi(strings.TrimSpace(h))
		if werr != nil || herr != nil || wn <= 0 || hn <= 0 || wn > 1<<20 || hn > 1<<20 {
			return fmt.Errorf("%q is not WIDTHxHEIGHT (such as 8192x4320)", s)
		}
		*p = Pixels(wn * hn)
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a pixel count or WIDTHxHEIGHT (such as 8192x4320)", s)
	}
	*p = Pixels(n)
	return nil
}

func readTokensFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tokens []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, line)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return tokens, nil
}

// ByteSize is a size in bytes that the configuration may spell with a unit:
// 1048576, "64MiB", "10MB", "512KiB".
type ByteSize int64

// UnmarshalText parses a size with an optional unit (B, KB, MB, GB, KiB,
// MiB, GiB).
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimSpace(s[len(num):])
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30}
	m, ok := mult[strings.ToUpper(unit)]
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n < 0 || strings.ContainsAny(num, "+-") || n > math.MaxInt64/m {
		return fmt.Errorf("a size is a number of bytes, optionally with a unit (KiB, MiB, GiB, KB, MB, GB), got %q", s)
	}
	*b = ByteSize(n * m)
	return nil
}

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", int64(b))
}
