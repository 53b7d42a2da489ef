package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/actiond/actiond/models"
)

// State is where a stream's supervisor is.
type State string

// States of a stream: connecting → playing → retrying → connecting → ...,
// and stopped once closed.
const (
	StateConnecting State = "connecting"
	StatePlaying    State = "playing"
	StateRetrying   State = "retrying"
	StateStopped    State = "stopped"
)

// Status is a snapshot of a stream: its state and its counters since it
// started (over all connections).
type Status struct {
	Stream string
	URL    string // redacted
	State  State
	// Since is when the stream entered State.
	Since time.Time
	// LastError says why the last connection failed or ended (redacted);
	// empty until one has.
	LastError string
	// NextAttempt is when a retrying stream connects again.
	NextAttempt time.Time
	// Reconnects counts connection attempts after the first.
	Reconnects uint64
	// Codec, Transport and the frame size of the current (or last)
	// connection.
	Codec         Codec
	Transport     string
	Width, Height int
	// Epoch is the current epoch (see Window.Epoch) and EpochReason why
	// it started: "first frame", "reconnected", "timestamp jumped back
	// 3s" ...
	Epoch       uint64
	EpochReason string
	// InputFPS is the frame rate of the last window (frames decoded per
	// second of media time).
	InputFPS float64
	// Counters.
	AccessUnits       uint64 // arrived
	DroppedAUs        uint64 // dropped: the decoder queue was full
	SkippedAUs        uint64 // skipped waiting for a random access point
	PacketsLost       uint64 // RTP packets lost
	DepacketizeErrors uint64 // RTP packets that could not be depacketized
	DecodeErrors      uint64 // packets or frames the decoder rejected
	FramesDecoded     uint64
	FramesConverted   uint64 // converted and preprocessed: about one per slot
	Windows           uint64 // windows made
	DroppedWindows    uint64 // dropped because the consumer was slow
	// LostWindows counts windows never made: a frame they needed could
	// not be converted (or encoded) and no later one took its slots in
	// time. The log says why, at each.
	LostWindows uint64
	// LastWindowEnd is the media time at which the last window ended.
	LastWindowEnd time.Duration
	// Window and Stride are the effective durations, Slot = Window/segments.
	Window, Stride, Slot time.Duration
}

// Stream is a supervisor for one camera: it owns the pipeline source →
// decoder → window, runs it until it fails, reports why, backs off and
// reconnects, until closed. Windows and status changes come out on bounded
// channels that never block it: when the consumer is slow, the oldest entry
// is dropped and counted.
type Stream struct {
	set streamSettings
	log *slog.Logger

	windows chan Window
	changes chan Status

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	start  sync.Once

	srcCtr sourceCounters
	ctr    streamCounters
	conns  connSet // the camera connections, for Cut

	mu     sync.Mutex
	status Status // the parts the counters do not hold
}

// streamCounters are what the stream's goroutine counts; Status reads them
// from other goroutines.
type streamCounters struct {
	decodeErrors, frames, converted, windows, droppedWindows, lostWindows atomic.Uint64
}

// NewStream checks cfg (filling in its defaults) against the model whose
// input the windows are. Nothing connects until Start. log may be nil
// (slog.Default()); the stream logs with stream=<name>.
func NewStream(cfg StreamConfig, model models.Manifest, log *slog.Logger) (*Stream, error) {
	set, err := cfg.settle(model)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{
		set:     set,
		log:     log.With("stream", set.Name),
		windows: make(chan Window, set.WindowQueue),
		changes: make(chan Status, 16),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	s.status = Status{
		Stream: set.Name,
		URL:    RedactURL(set.URL),
		State:  StateConnecting,
		Since:  time.Now(),
		Window: set.Window,
		Stride: set.Stride,
		Slot:   set.grid.slot,
	}
	return s, nil
}

// Name returns the stream's name.
func (s *Stream) Name() string { return s.set.Name }

// Config returns the stream's configuration with defaults filled in and
// the stride rounded to whole slots. Its URL still holds the credentials:
// show RedactURL(URL), or Status().URL.
func (s *Stream) Config() StreamConfig { return s.set.StreamConfig }

// Start starts the stream's goroutine; calling it again does nothing.
func (s *Stream) Start() {
	s.start.Do(func() { go s.run() })
}

// Close stops the stream and waits for it: the connection is closed, every
// C object freed, and Windows and StatusChanges are closed after a last
// "stopped" status. It is safe to call more than once, and without Start.
func (s *Stream) Close() {
	s.cancel()
	s.start.Do(func() { go s.run() }) // a stream never started still ends
	<-s.done
}

// Cut hangs up the camera at once: it closes the stream's connection to
// it without the RTSP goodbye (TEARDOWN) and without waiting for the
// stream's goroutine, and makes the stream stop (no reconnection). It is
// for a stream that must let go of its camera now, whatever the load (its
// fleet lease is about to expire); Close still waits for the rest. Over
// TCP the camera ends the session when the connection closes; a camera
// sending over UDP ends it at its own session timeout, as when the client
// dies.
func (s *Stream) Cut() {
	s.conns.closeAll()
	s.cancel()
}

// Wait waits until the stream has stopped (after Close).
func (s *Stream) Wait() { <-s.done }

// Windows returns the channel of the stream's windows. It is closed when
// the stream stops.
func (s *Stream) Windows() <-chan Window { return s.windows }

// StatusChanges returns the channel of status changes: state changes and
// new epochs (not every counter update; Status has those). It is closed
// after the "stopped" status.
func (s *Stream) StatusChanges() <-chan Status { return s.changes }

// Status returns the stream's current status.
func (s *Stream) Status() Status {
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	st.AccessUnits = s.srcCtr.received.Load()
	st.DroppedAUs = s.srcCtr.dropped.Load()
	st.SkippedAUs = s.srcCtr.skipped.Load()
	st.PacketsLost = s.srcCtr.lost.Load()
	st.DepacketizeErrors = s.srcCtr.depacketizeErrors.Load()
	st.DecodeErrors = s.ctr.decodeErrors.Load()
	st.FramesDecoded = s.ctr.frames.Load()
	st.FramesConverted = s.ctr.converted.Load()
	st.Windows = s.ctr.windows.Load()
	st.DroppedWindows = s.ctr.droppedWindows.Load()
	st.LostWindows = s.ctr.lostWindows.Load()
	return st
}

// update changes the status under the lock and, when notify is set,
// publishes the new status on the changes channel.
func (s *Stream) update(notify bool, fn func(*Status)) {
	s.mu.Lock()
	fn(&s.status)
	s.mu.Unlock()
	if notify {
		sendDropOldest(s.changes, s.Status(), nil)
	}
}

// setState moves the stream to state.
func (s *Stream) setState(state State, fn func(*Status)) {
	s.update(true, func(st *Status) {
		st.State, st.Since = state, time.Now()
		if fn != nil {
			fn(st)
		}
	})
}

// sendDropOldest sends v on ch without blocking: when ch is full, it drops
// the oldest value (counting it in dropped, if not nil) to make room. It
// must be the only sender on ch.
func sendDropOldest[T any](ch chan T, v T, dropped *atomic.Uint64) {
	for {
		select {
		case ch <- v:
			return
		default:
		}
		select {
		case <-ch:
			if dropped != nil {
				dropped.Add(1)
			}
		default:
		}
	}
}

// pipeline runs connections for a stream (or a one-shot capture): source,
// decoder and window, on the caller's goroutine. The window and the
// converter outlive connections; source and decoder do not.
type pipeline struct {
	set      streamSettings
	redacted string
	log      *slog.Logger
	srcCtr   *sourceCounters
	ctr      *streamCounters

	conv  rgbConverter
	win   *window
	conns uint64
	// open tracks the camera connections for Stream.Cut; nil: not tracked.
	open *connSet

	// Trouble is logged as a summary at most once a second.
	troubleAt   time.Time
	troubleLast [6]uint64
	failedAt    time.Time // when a failed frame was last logged
	// When the last frame decoded, and the source's counters then.
	lastFrame                       time.Time
	decodedInConn                   bool // a frame has decoded on this connection
	skippedAtFrame, receivedAtFrame uint64
	lost                            uint64 // the window's lost windows, counted so far

	// Hooks, called on the pipeline's goroutine.
	onPlaying func(codec Codec, transport string)
	onWindow  func(Window)
	onEpoch   func(epochChange)
	onFrame   func(frameMeta) // every decoded frame
}

func newPipeline(set streamSettings, log *slog.Logger, srcCtr *sourceCounters, ctr *streamCounters) *pipeline {
	return &pipeline{
		set:      set,
		redacted: RedactURL(set.URL),
		log:      log,
		srcCtr:   srcCtr,
		ctr:      ctr,
		win:      newWindow(set.Name, set.grid),
	}
}

// close frees what outlives connections.
func (p *pipeline) close() {
	p.win.close()
	p.conv.close()
}

// runSession connects once and plays until the connection fails, the read
// timeout passes or ctx ends. playing is the time PLAY succeeded, zero if
// it never did. The error never contains credentials.
func (p *pipeline) runSession(ctx context.Context) (playing time.Time, err error) {
	p.conns++
	src, err := openSource(ctx, sourceConfig{
		url:            p.set.url,
		transport:      p.set.Transport,
		connectTimeout: p.set.ConnectTimeout,
		readTimeout:    p.set.ReadTimeout,
		queueSize:      p.set.QueueSize,
		tlsFingerprint: p.set.TLSFingerprint,
		hosts:          p.set.hosts,
		conns:          p.open,
		conn:           p.conns,
	}, p.srcCtr, p.log)
	if err != nil {
		return time.Time{}, err
	}
	defer src.close()
	playing = time.Now()
	dec, err := newDecoderMax(src.track.codec, &p.conv, p.set.MaxFramePixels)
	if err != nil {
		return playing, fmt.Errorf("play %s: %w", p.redacted, err)
	}
	defer dec.close()
	// The window's held frame refers to this decoder's buffers, and the
	// next connection's timeline is another: end the epoch with it.
	defer p.endEpoch("reconnected")
	if p.onPlaying != nil {
		p.onPlaying(src.track.codec, src.client.transport())
	}

	p.frameSeen(playing, false)
	check := min(max(p.set.ReadTimeout/4, 10*time.Millisecond), time.Second)
	tick := time.NewTicker(check)
	defer tick.Stop()
	lastCheck := time.Now()
	for {
		select {
		case <-ctx.Done():
			return playing, ctx.Err()
		case <-src.client.done():
			err := src.client.err()
			if err == nil {
				err = fmt.Errorf("connection closed")
			}
			return playing, fmt.Errorf("read %s: %w", p.redacted, redactErr(err, p.set.url))
		case au := <-src.aus:
			if err := p.decode(dec, au); err != nil {
				return playing, fmt.Errorf("play %s: %w", p.redacted, err)
			}
		case <-tick.C:
			p.logTrouble()
			now := time.Now()
			late := now.Sub(lastCheck) > check+p.set.ReadTimeout/2
			lastCheck = now
			if late {
				// This goroutine did not run for much of the read
				// timeout (an overloaded host, a suspended machine):
				// what the network brought meanwhile may still be
				// unread; judge at the next tick.
				continue
			}
			if _, err := src.silence(p.set.ReadTimeout); err != nil {
				return playing, fmt.Errorf("read %s: %w", p.redacted, err)
			}
			if err := p.undecodable(dec); err != nil {
				return playing, fmt.Errorf("read %s: %w", p.redacted, err)
			}
		}
	}
}

// decode runs one access unit through the decoder and the window. Its
// error (frames over the size limit) ends the connection.
func (p *pipeline) decode(dec *decoder, au accessUnit) error {
	errs0, frames0 := dec.errors, dec.frames
	err := dec.decode(au, func(m frameMeta, pic picture) error {
		if p.onFrame != nil {
			p.onFrame(m)
		}
		conv0 := p.win.converted
		wins, change, err := p.win.push(m, pic)
		p.ctr.converted.Add(p.win.converted - conv0)
		if change != nil && p.onEpoch != nil {
			p.onEpoch(*change)
		}
		p.emit(wins)
		if err != nil {
			// A frame that does not convert (a pixel format swscale
			// cannot take, an encoder error) leaves its slots to the
			// next frame; the epoch goes on.
			p.ctr.decodeErrors.Add(1)
			p.frameFailed(err)
		}
		return nil
	})
	p.ctr.decodeErrors.Add(dec.errors - errs0)
	p.ctr.frames.Add(dec.frames - frames0)
	if dec.frames > frames0 {
		p.frameSeen(time.Now(), true)
	}
	return err
}

// frameSeen notes that a frame decoded at now (decoded), or that the
// connection starts, with the source's counters then, for undecodable.
func (p *pipeline) frameSeen(now time.Time, decoded bool) {
	p.lastFrame, p.decodedInConn = now, decoded
	p.skippedAtFrame, p.receivedAtFrame = p.srcCtr.skipped.Load(), p.srcCtr.received.Load()
}

// undecodable tells whether video arrives that makes no picture: access
// units have come since the connection started, for the read timeout,
// and none of them decoded. A camera that never sends a key frame or a
// recovery point (or sent its only IDR before this reader joined) would
// stay connected and silent otherwise; reconnecting is worth a try, and
// the status says why. Once frames have decoded on the connection, the
// wait for the next key frame after a loss is allowed four times as long,
// as silence allows packets without video: over UDP a loss can hold back
// whole seconds of what follows it.
func (p *pipeline) undecodable(dec *decoder) error {
	limit := p.set.ReadTimeout
	if p.decodedInConn {
		limit *= 4
	}
	received := p.srcCtr.received.Load() - p.receivedAtFrame
	if time.Since(p.lastFrame) < limit || received == 0 {
		return nil
	}
	if p.srcCtr.skipped.Load() > p.skippedAtFrame {
		return fmt.Errorf("%w: no key frame or recovery point in %v", ErrNoDecodableVideo, limit)
	}
	msg := fmt.Sprintf("%d access units in %v made no picture", received, limit)
	if dec.lastErr != nil {
		msg += fmt.Sprintf(" (last decode error: %v)", dec.lastErr)
	}
	return fmt.Errorf("%w: %s", ErrNoDecodableVideo, msg)
}

// logTrouble logs what went wrong since it last did, if it has not in the
// last second: packet loss and the like come in bursts, one line per packet
// would drown the log.
func (p *pipeline) logTrouble() {
	now := time.Now()
	if now.Sub(p.troubleAt) < time.Second {
		return
	}
	p.troubleAt = now
	keys := [...]string{"packets_lost", "dropped_access_units", "depacketize_errors", "decode_errors", "dropped_windows", "lost_windows"}
	counts := [...]uint64{p.srcCtr.lost.Load(), p.srcCtr.dropped.Load(), p.srcCtr.depacketizeErrors.Load(),
		p.ctr.decodeErrors.Load(), p.ctr.droppedWindows.Load(), p.ctr.lostWindows.Load()}
	var attrs []any
	for i, n := range counts {
		if n > p.troubleLast[i] {
			attrs = append(attrs, keys[i], n-p.troubleLast[i])
		}
	}
	p.troubleLast = counts
	if len(attrs) > 0 {
		p.log.Warn("stream trouble in the last second", attrs...)
	}
}

// endEpoch ends the window's epoch, passing on what that completes.
func (p *pipeline) endEpoch(reason string) {
	wins, err := p.win.endEpoch(reason)
	p.emit(wins)
	if err != nil {
		p.ctr.decodeErrors.Add(1)
		p.frameFailed(err)
	}
}

// frameFailed logs a frame that could not be converted, at most once a
// second (a pixel format that never converts fails every frame); the
// trouble summary counts them all.
func (p *pipeline) frameFailed(err error) {
	if now := time.Now(); now.Sub(p.failedAt) >= time.Second {
		p.failedAt = now
		p.log.Warn("frame not converted; its slots go to the next frame", "error", err)
	}
}

// emit counts the windows the grid completed and passes them on, and the
// windows it had to skip.
func (p *pipeline) emit(wins []Window) {
	if n := p.win.lost; n > p.lost {
		p.ctr.lostWindows.Add(n - p.lost)
		p.log.Warn("window skipped", "windows", n-p.lost, "reason", p.win.lostReason)
		p.lost = n
	}
	for _, w := range wins {
		p.ctr.windows.Add(1)
		if p.onWindow != nil {
			p.onWindow(w)
		}
	}
}
