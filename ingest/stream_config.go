package ingest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/actiond/actiond/ingest/hostlist"
	"github.com/actiond/actiond/models"
)

// StreamConfig configures one live stream. The zero value of every field but
// Name and URL means its default; the keys in error messages are the
// fields' names in snake case, as config files spell them.
type StreamConfig struct {
	// Name identifies the stream in status, windows and logs. Required.
	Name string
	// URL is the camera's rtsp:// or rtsps:// URL. Credentials may be in
	// it (rtsp://user:pass@cam/x; basic and digest authentication both
	// work); they are never logged or reported.
	URL string
	// Transport is "auto", "udp" or "tcp". auto tries UDP and falls back
	// to TCP. It defaults to auto.
	Transport Transport
	// Window is the duration the model sees: Segments slots of
	// Window/Segments each. It defaults to the model's window_seconds,
	// else 10s.
	Window time.Duration
	// Stride is the time between the ends of two windows, rounded up to
	// whole slots (the effective value is in Status). It defaults to 2
	// slots (1.25s for a 10s window of 16 slots).
	Stride time.Duration
	// ConnectTimeout bounds connecting: from dialling to the answer to
	// PLAY. It defaults to 10s.
	ConnectTimeout time.Duration
	// ReadTimeout is how long a playing stream may deliver no video
	// before it counts as lost, even if the connection stays open. It
	// also bounds the wait for a place to start decoding (a key frame or
	// a recovery point) after connecting, four times it after a loss: a
	// camera that sends none is lost with "no decodable video". Keep it
	// above the camera's key frame interval. It defaults to 10s.
	ReadTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between reconnects, which
	// doubles with each failure, with full jitter (a random wait between
	// 0 and the bound). They default to 1s and 30s.
	BackoffMin, BackoffMax time.Duration
	// StableAfter is how long a connection must play before the backoff
	// starts again from BackoffMin. It defaults to 1m.
	StableAfter time.Duration
	// MaxTimestampJump is the largest forward jump in presentation time
	// taken as a gap in the same stream; a larger one (or any jump back)
	// starts a new epoch. It defaults to 2 windows.
	MaxTimestampJump time.Duration
	// QueueSize is how many access units wait between the network and the
	// decoder; more are dropped and counted. It defaults to 64 (2s at
	// 30 fps).
	QueueSize int
	// WindowQueue is how many windows wait for a slow consumer; more
	// drop the oldest, counted. It defaults to 4.
	WindowQueue int
	// TLSFingerprint, for rtsps://, is the hex SHA-256 fingerprint of the
	// camera's certificate: set, it is trusted instead of a CA (as for
	// self-signed certificates). It defaults to CA verification.
	TLSFingerprint string
	// MaxFramePixels is the largest frame, width times height, the
	// camera may send: a larger one ends the connection with
	// ErrFrameTooLarge before it is decoded. It defaults to
	// DefaultMaxFramePixels (8192×4320).
	MaxFramePixels int
	// AllowedHosts, when not empty, are the only hosts the stream may
	// connect to (see hostlist.List); checked again on the address that each
	// connection dials, after DNS. It defaults to any host.
	AllowedHosts []string
	// SnapshotWidth, when positive, has every Window carry the decoded
	// frame at its centre (Window.Snapshot), scaled to at most this many
	// pixels wide. It defaults to 0: none.
	SnapshotWidth int
}

// Defaults of StreamConfig.
const (
	DefaultWindow         = 10 * time.Second
	DefaultStrideSlots    = 2
	DefaultConnectTimeout = 10 * time.Second
	DefaultReadTimeout    = 10 * time.Second
	DefaultBackoffMin     = time.Second
	DefaultBackoffMax     = 30 * time.Second
	DefaultStableAfter    = time.Minute
	DefaultQueueSize      = 64
	DefaultWindowQueue    = 4
)

// streamSettings is a validated StreamConfig with its defaults filled in,
// and what follows from it and the model.
type streamSettings struct {
	StreamConfig
	url   *url.URL
	grid  windowGrid
	hosts *hostlist.List
}

// Settle returns cfg with its defaults filled in and the stride rounded up
// to whole slots, as a stream made from it would use them, or every problem,
// each naming its key. It connects to nothing.
func (cfg StreamConfig) Settle(model models.Manifest) (StreamConfig, error) {
	set, err := cfg.settle(model)
	return set.StreamConfig, err
}

// settle fills in cfg's defaults and checks it against the model. Every
// problem is reported, each naming its key.
func (cfg StreamConfig) settle(model models.Manifest) (streamSettings, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(cfg.Name) == "" {
		bad("'name' must not be empty")
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case cfg.URL == "":
		bad("'url' must not be empty")
	case err != nil:
		bad("'url' %s does not parse", RedactURL(cfg.URL))
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		bad("'url' must start with rtsp:// or rtsps://, got %s", RedactURL(cfg.URL))
	case u.Hostname() == "":
		bad("'url' %s has no host", RedactURL(cfg.URL))
	}
	switch strings.ToLower(string(cfg.Transport)) {
	case "", string(TransportAuto):
		cfg.Transport = TransportAuto
	case string(TransportUDP), string(TransportTCP):
		cfg.Transport = Transport(strings.ToLower(string(cfg.Transport)))
	default:
		bad("'transport' must be auto, udp or tcp, got %q", cfg.Transport)
	}

	segments := model.Segments
	if segments < 1 {
		bad("the model's 'segments' must be at least 1, got %d", segments)
		segments = 16
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
		if model.WindowSeconds > 0 {
			cfg.Window = time.Duration(model.WindowSeconds * float64(time.Second))
		}
	}
	if cfg.Window < time.Second || cfg.Window > 10*time.Minute {
		bad("'window' must be between 1s and 10m, got %v", cfg.Window)
		cfg.Window = DefaultWindow
	}
	slot := cfg.Window / time.Duration(segments)
	strideSlots := DefaultStrideSlots
	switch {
	case cfg.Stride < 0:
		bad("'stride' must be positive, got %v", cfg.Stride)
	case cfg.Stride > 0:
		// Divide before rounding up: cfg.Stride+slot-1 overflows for a
		// stride near the largest duration (FuzzStreamRequest found it).
		strideSlots = int(cfg.Stride / slot)
		if cfg.Stride%slot != 0 {
			strideSlots++
		}
		if strideSlots > 100*segments {
			bad("'stride' must be at most 100 windows, got %v", cfg.Stride)
			strideSlots = DefaultStrideSlots
		}
	}
	cfg.Stride = time.Duration(strideSlots) * slot

	positive := func(key string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad("'%s' must be positive, got %v", key, *v)
		}
	}
	positive("connect_timeout", &cfg.ConnectTimeout, DefaultConnectTimeout)
	positive("read_timeout", &cfg.ReadTimeout, DefaultReadTimeout)
	positive("backoff_min", &cfg.BackoffMin, DefaultBackoffMin)
	positive("backoff_max", &cfg.BackoffMax, DefaultBackoffMax)
	positive("stable_after", &cfg.StableAfter, DefaultStableAfter)
	positive("max_timestamp_jump", &cfg.MaxTimestampJump, 2*cfg.Window)
	if cfg.BackoffMax < cfg.BackoffMin {
		bad("'backoff_max' (%v) must not be less than 'backoff_min' (%v)", cfg.BackoffMax, cfg.BackoffMin)
	}
	if cfg.MaxTimestampJump < slot {
		bad("'max_timestamp_jump' must be at least a slot (%v), got %v", slot, cfg.MaxTimestampJump)
	}
	count := func(key string, v *int, def, most int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0 || *v > most:
			bad("'%s' must be between 1 and %d, got %d", key, most, *v)
		}
	}
	count("queue_size", &cfg.QueueSize, DefaultQueueSize, 4096)
	count("window_queue", &cfg.WindowQueue, DefaultWindowQueue, 1024)
	if fp := strings.ReplaceAll(cfg.TLSFingerprint, ":", ""); fp != "" {
		if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 {
			bad("'tls_fingerprint' must be a hex SHA-256 (64 digits, colons allowed), got %q", cfg.TLSFingerprint)
		}
	}
	switch {
	case cfg.MaxFramePixels == 0:
		cfg.MaxFramePixels = DefaultMaxFramePixels
	case cfg.MaxFramePixels < 0:
		bad("'max_frame_pixels' must be positive, got %d", cfg.MaxFramePixels)
	}
	hosts, err := hostlist.Parse("ingest.allowed_hosts", cfg.AllowedHosts)
	if err != nil {
		bad("'allowed_hosts'%v", err)
	} else if u != nil && u.Hostname() != "" {
		if err := hosts.Check(u.Hostname()); err != nil {
			errs = append(errs, err)
		}
	}
	pre := NewPreprocessor(model)
	if pre.ShortSide <= 0 || pre.CropSize <= 0 {
		bad("the model's 'short_side' and 'input_size' must be positive, got %d and %d", pre.ShortSide, pre.CropSize)
	}

	if err := errors.Join(errs...); err != nil {
		name := strings.TrimSpace(cfg.Name)
		if name == "" {
			return streamSettings{}, fmt.Errorf("stream: %w", err)
		}
		return streamSettings{}, fmt.Errorf("stream %q: %w", name, err)
	}
	return streamSettings{
		StreamConfig: cfg,
		url:          u,
		hosts:        hosts,
		grid: windowGrid{
			segments:    segments,
			slot:        slot,
			strideSlots: strideSlots,
			maxJump:     cfg.MaxTimestampJump,
			pre:         pre,

			snapshotWidth: cfg.SnapshotWidth,
		},
	}, nil
}
