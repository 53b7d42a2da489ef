package camsim

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/rtcpsender"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// SimPathStats describes one path of a Simulator, for tests.
type SimPathStats struct {
	// Readers is the number of sessions playing the path now.
	Readers int
	// PacketsSent counts RTP packets handed to the path's readers (once
	// per packet, whatever the number of readers).
	PacketsSent uint64
	// PacketsDropped counts RTP packets held back on purpose: by
	// SetPacketLoss, and while stalled.
	PacketsDropped uint64
	// Loops counts how many times a served clip has wrapped around.
	Loops int
	// Published is true for a path that a client publishes.
	Published bool
	// AuthFailures counts DESCRIBE and SETUP requests for the path that
	// carried wrong credentials: one per connection attempt of a client
	// with a wrong password (its first request, without credentials, only
	// fetches the challenge and is not counted).
	AuthFailures uint64
	// Bitrate is a served clip's H.264 size over its duration, in bits
	// per second (RTP and RTSP overhead not counted); 0 when published.
	Bitrate float64
}

// simPath is one RTSP path of the Simulator: a served clip, looped by its
// own player goroutine, or a stream that a client publishes and the
// simulator relays. Faults are fields under mu that the sending side (the
// player, or the publisher's read callback) consults for every packet; they
// never block it for longer than a map lookup.
type simPath struct {
	name string
	log  *slog.Logger

	clip      *simClip                 // served paths; nil when published
	publisher *gortsplib.ServerSession // published paths; nil when served

	// Set once by open, before the path is visible to readers; read-only
	// afterwards.
	stream  *gortsplib.ServerStream
	formats map[format.Format]*simFormat

	closeOnce sync.Once

	mu         sync.Mutex
	readers    map[*gortsplib.ServerSession]bool // true once playing
	stallUntil time.Time
	loss       float64
	rng        *rand.Rand // seeded per path: the same losses on every run
	jumpTo     time.Duration
	jumpGen    uint64   // incremented by each JumpTimestamps
	nextClip   *simClip // served paths: the clip the player switches to at its next frame
	authFails  uint64
	sent       uint64
	dropped    uint64
	loops      int
}

// simFormat is one format of a path's stream, with its RTCP sender and,
// for relays, what JumpTimestamps needs.
type simFormat struct {
	media  *description.Media
	format format.Format
	sender *rtcpsender.RTCPSender // nil when sender reports are off

	// Relays only, under simPath.mu: the publisher's first timestamp, and
	// the offset added to its timestamps since the last jump.
	started bool
	first   uint32
	gen     uint64
	offset  uint32
}

func newSimPath(name string, log *slog.Logger) *simPath {
	h := fnv.New64a()
	h.Write([]byte(name))
	return &simPath{
		name:    name,
		log:     log.With("path", name),
		readers: make(map[*gortsplib.ServerSession]bool),
		rng:     rand.New(rand.NewPCG(h.Sum64(), 0x5eed)),
	}
}

// open creates the path's stream on server, with an RTCP sender per format
// when srPeriod is positive.
func (p *simPath) open(server *gortsplib.Server, desc *description.Session, srPeriod time.Duration) error {
	st := &gortsplib.ServerStream{Server: server, Desc: desc}
	if err := st.Initialize(); err != nil {
		return fmt.Errorf("path %q: create stream: %w", p.name, err)
	}
	p.stream = st
	p.formats = make(map[format.Format]*simFormat)
	for _, medi := range desc.Medias {
		for _, forma := range medi.Formats {
			sf := &simFormat{media: medi, format: forma}
			if srPeriod > 0 {
				// gortsplib's own reports come every 10 s, which leaves
				// a new reader without absolute time for that long;
				// ours follow the configured period, and pause with a
				// stall.
				sf.sender = &rtcpsender.RTCPSender{
					ClockRate: forma.ClockRate(),
					Period:    srPeriod,
					WritePacketRTCP: func(pkt rtcp.Packet) {
						if !p.stalled() {
							st.WritePacketRTCP(medi, pkt) //nolint:errcheck // closed stream: nobody to tell
						}
					},
				}
				sf.sender.Initialize()
			}
			p.formats[forma] = sf
		}
	}
	return nil
}

// close stops the path's RTCP senders and closes its stream, which
// disconnects its readers. It is safe to call more than once.
func (p *simPath) close() {
	p.closeOnce.Do(func() {
		for _, sf := range p.formats {
			if sf.sender != nil {
				sf.sender.Close()
			}
		}
		if p.stream != nil {
			p.stream.Close()
		}
	})
}

// stalled reports whether a Stall is in force.
func (p *simPath) stalled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Before(p.stallUntil)
}

// admit decides whether one RTP packet goes out, applying the stall and the
// packet loss, and counts the decision.
func (p *simPath) admit() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Now().Before(p.stallUntil) || (p.loss > 0 && p.rng.Float64() < p.loss) {
		p.dropped++
		return false
	}
	p.sent++
	return true
}

// send writes one RTP packet to every reader of the path unless a fault
// holds it back. ntp is the packet's capture time, which the next sender
// report pairs with its timestamp.
func (p *simPath) send(sf *simFormat, pkt *rtp.Packet, ntp time.Time, ptsEqualsDTS bool) {
	if !p.admit() {
		return
	}
	// Readers have queues of their own: this never waits for a slow one.
	if err := p.stream.WritePacketRTPWithNTP(sf.media, pkt, ntp); err != nil {
		return // closed: the path is going away
	}
	if sf.sender != nil {
		sf.sender.ProcessPacket(pkt, ntp, ptsEqualsDTS)
	}
}

// relay forwards a packet from the publisher. It runs on the publisher's
// read path, so it does no more than send does.
func (p *simPath) relay(medi *description.Media, forma format.Format, pkt *rtp.Packet) {
	sf, ok := p.formats[forma]
	if !ok {
		return
	}
	// The publisher's own sender reports give the capture time when it
	// sends them (ffmpeg does); otherwise it is now.
	ntp, ok := p.publisher.PacketNTP(medi, pkt)
	if !ok {
		ntp = time.Now()
	}
	p.mu.Lock()
	if !sf.started {
		sf.started, sf.first, sf.gen = true, pkt.Timestamp, p.jumpGen
	}
	if sf.gen != p.jumpGen {
		// From this packet on, media time continues from jumpTo: the
		// timestamp the publisher's stream had at its start, plus jumpTo.
		sf.gen = p.jumpGen
		sf.offset = sf.first + uint32(durationTicks(p.jumpTo, forma.ClockRate())) - pkt.Timestamp
	}
	pkt.Timestamp += sf.offset
	p.mu.Unlock()
	p.send(sf, pkt, ntp, forma.PTSEqualsDTS(pkt))
}

// jumpSince returns the target of the last JumpTimestamps if there has been
// one since generation gen.
func (p *simPath) jumpSince(gen uint64) (to time.Duration, now uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jumpTo, p.jumpGen, p.jumpGen != gen
}

// play loops the clip in real time until ctx ends: frame f of the schedule
// goes out at start + f/fps, with RTP timestamp base + its media time at
// 90 kHz. Media time runs on across loops, so a reader sees one endless
// stream; JumpTimestamps moves it (and only it: the schedule, and so the
// capture times in the sender reports, go on).
func (p *simPath) play(ctx context.Context) {
	clip := p.clip
	var sf *simFormat
	for _, f := range p.formats {
		sf = f
	}
	packetize, err := newPacketizer(sf.format)
	if err != nil {
		p.log.Error("cannot packetise; the path sends nothing", "codec", sf.format.Codec(), "error", err)
		return
	}
	const clock = 90000
	var (
		base        = rand.Uint32() // like a camera: a random first timestamp
		n           = int64(len(clip.aus))
		start       = time.Now()
		f           int64 // frames of the schedule so far
		originFrame int64 // frame from which media time counts from originTick
		originTick  int64
		gen         uint64
	)
	at := func(f int64) time.Duration {
		return time.Duration(math.Round(float64(f) * float64(time.Second) / clip.fps))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		due := start.Add(at(f))
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if wait < -time.Second {
			// Far behind (the machine was suspended, say): a camera
			// would not send the backlog in a burst. Carry on from now.
			start = time.Now().Add(-at(f))
			due = start.Add(at(f))
		}
		if ctx.Err() != nil {
			return
		}
		if next := p.takeNextClip(); next != nil {
			// A new clip (SwitchSceneSequence) starts at its first
			// frame, now; media time runs on from this frame's.
			originTick += int64(math.Round(float64(f-originFrame) * clock / clip.fps))
			clip, n, start, f, originFrame = next, int64(len(next.aus)), due, 0, 0
		}
		if to, g, ok := p.jumpSince(gen); ok {
			gen, originFrame, originTick = g, f, durationTicks(to, clock)
		}
		tick := originTick + int64(math.Round(float64(f-originFrame)*clock/clip.fps))
		ts := base + uint32(tick)

		i := f % n
		pkts, err := packetize(clip.aus[i])
		if err != nil {
			p.log.Error("cannot packetise frame", "frame", i, "error", err)
		}
		for _, pkt := range pkts {
			pkt.Timestamp = ts
			// No B-frames: every packet's timestamp is a presentation
			// and a decoding time.
			p.send(sf, pkt, due, true)
		}
		if i == n-1 {
			p.mu.Lock()
			p.loops++
			p.mu.Unlock()
		}
		f++
	}
}

// durationTicks converts d to ticks of a clock of rate hz. It goes through
// seconds as a float: d * hz in nanoseconds would overflow int64 within
// hours.
func durationTicks(d time.Duration, hz int) int64 {
	return int64(math.Round(d.Seconds() * float64(hz)))
}

// addReader records a session that has set up the path.
func (p *simPath) addReader(ss *gortsplib.ServerSession) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.readers[ss]; !ok {
		p.readers[ss] = false
	}
}

// setPlaying marks a reader as playing.
func (p *simPath) setPlaying(ss *gortsplib.ServerSession) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readers[ss] = true
}

// removeReader forgets a reader whose session has closed.
func (p *simPath) removeReader(ss *gortsplib.ServerSession) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.readers, ss)
}

// dropReaders closes every reader's session, which closes its connections,
// and returns how many there were.
func (p *simPath) dropReaders() int {
	p.mu.Lock()
	sessions := make([]*gortsplib.ServerSession, 0, len(p.readers))
	for ss := range p.readers {
		sessions = append(sessions, ss)
	}
	p.mu.Unlock()
	for _, ss := range sessions {
		ss.Close() // asynchronous: OnSessionClose removes the reader
	}
	return len(sessions)
}

func (p *simPath) stats() SimPathStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := SimPathStats{
		PacketsSent:    p.sent,
		PacketsDropped: p.dropped,
		Loops:          p.loops,
		Published:      p.publisher != nil,
		AuthFailures:   p.authFails,
	}
	if c := p.clip; c != nil && len(c.aus) > 0 {
		st.Bitrate = float64(c.bytes) * 8 * c.fps / float64(len(c.aus))
	}
	for _, playing := range p.readers {
		if playing {
			st.Readers++
		}
	}
	return st
}
