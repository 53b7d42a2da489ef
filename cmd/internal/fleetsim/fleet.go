// Package fleetsim measures the fleet's coordination at a scale this machine
// cannot run for real: many fleet members in one process, each with its
// own NATS connection to one embedded JetStream server, placing stand-in
// streams (no camera, no decoding: owning a stream costs nothing but its
// lease). It measures what the fleet package costs and how fast it moves,
// not what actiond does with a stream.
package fleetsim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/actiond/actiond/server/fleet"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Config is one simulated fleet.
type Config struct {
	Nodes   int
	Streams int
	// Lease is fleet.lease, shortened so that a run takes seconds.
	Lease time.Duration
	// Steady is how long the steady state is measured; best a whole
	// number of renewal rounds (Lease/3).
	Steady   time.Duration
	Progress io.Writer
}

// Result is what one run measured.
type Result struct {
	Config
	// Place is the time from handing every node the stream list to every
	// stream playing, with all nodes already joined.
	Place time.Duration
	// MinPerNode and MaxPerNode are the streams per node once placed.
	MinPerNode, MaxPerNode int
	// OpsPerNode is KV operations per second per node at steady state
	// (heartbeats and renewals; watch deliveries are not operations).
	OpsPerNode float64
	// CPU is the cores the whole process (NATS server and every node) used
	// at steady state.
	CPU float64
	// Moved is how many streams the killed node owned.
	Moved int
	// Converge is the time from the node losing NATS to all its streams
	// playing elsewhere.
	Converge time.Duration
	// Doubles counts moments a stream had two owners; it must be 0.
	Doubles int
}

// ledger records who plays what, as the stream manager would.
type ledger struct {
	mu      sync.Mutex
	owner   map[string]string
	doubles int
	changed chan struct{}
}

type handler struct {
	l    *ledger
	node string
}

func (h handler) Acquire(stream string, fence uint64) {
	h.l.mu.Lock()
	if _, ok := h.l.owner[stream]; ok {
		h.l.doubles++
	}
	h.l.owner[stream] = h.node
	if os.Getenv("FLEETSIM_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "%s acquire %s %s\n", time.Now().Format("05.000"), h.node, stream)
	}
	h.l.mu.Unlock()
	h.l.poke()
}

func (h handler) Release(stream string) {
	h.l.mu.Lock()
	if h.l.owner[stream] == h.node {
		delete(h.l.owner, stream)
	}
	h.l.mu.Unlock()
	h.l.poke()
}

// Cut hangs up at once: a stand-in has no camera to hang up.
func (h handler) Cut(string) {}

func (l *ledger) poke() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// waitAll waits until every stream has an owner (none of them dead).
func (l *ledger) waitAll(ctx context.Context, streams int, dead string) error {
	for {
		l.mu.Lock()
		n := len(l.owner)
		for _, o := range l.owner {
			if o == dead {
				n--
			}
		}
		l.mu.Unlock()
		if n == streams {
			return nil
		}
		if os.Getenv("FLEETSIM_DEBUG") != "" {
			fmt.Fprintf(os.Stderr, "%s placed %d\n", time.Now().Format("05.000"), n)
		}
		select {
		case <-l.changed:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("%d of %d streams placed: %w", n, streams, ctx.Err())
		}
	}
}

// Run runs one simulated fleet: place, hold, kill one node, converge.
func Run(ctx context.Context, cfg Config) (Result, error) {
	r := Result{Config: cfg}
	logf := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "fleetsim %d nodes %d streams: "+format+"\n", append([]any{cfg.Nodes, cfg.Streams}, args...)...)
		}
	}
	dir, err := os.MkdirTemp("", "fleetsim-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return r, err
	}
	go ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		return r, fmt.Errorf("nats server not ready")
	}

	l := &ledger{owner: map[string]string{}, changed: make(chan struct{}, 1)}
	type member struct {
		f  *fleet.Fleet
		nc *nats.Conn
	}
	members := make([]member, cfg.Nodes)
	defer func() {
		// The whole fleet stops at once: connections first, so that no
		// node claims what the one closing before it hands back.
		for _, m := range members {
			if m.nc != nil {
				m.nc.Close()
			}
		}
		for _, m := range members {
			if m.f != nil {
				m.f.Close()
			}
		}
	}()
	quiet := slog.New(slog.DiscardHandler)
	if os.Getenv("FLEETSIM_DEBUG") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for i := range members {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			return r, err
		}
		members[i].nc = nc
		name := fmt.Sprintf("node-%02d", i)
		f, err := fleet.Start(ctx, fleet.Config{
			Conn: nc, Fleet: "sim", Node: name, Lease: cfg.Lease,
			Handler: handler{l: l, node: name}, Logger: quiet,
		})
		if err != nil {
			return r, fmt.Errorf("start %s: %w", name, err)
		}
		members[i].f = f
	}
	// Every node sees every other before the streams arrive.
	for _, m := range members {
		for len(m.f.Nodes()) < cfg.Nodes {
			select {
			case <-ctx.Done():
				return r, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	logf("%d nodes joined", cfg.Nodes)

	streams := make([]string, cfg.Streams)
	for i := range streams {
		streams[i] = fmt.Sprintf("cam-%04d", i)
	}
	start := time.Now()
	for _, m := range members {
		m.f.SetStreams(streams)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*cfg.Lease+10*time.Second)
	defer cancel()
	if err := l.waitAll(wctx, cfg.Streams, ""); err != nil {
		if os.Getenv("FLEETSIM_DEBUG") != "" {
			for _, m := range members {
				seen := 0
				for _, s := range streams {
					if _, ok := m.f.Owner(s); ok {
						seen++
					}
				}
				fmt.Fprintf(os.Stderr, "%s owns %d, sees %d nodes, %d leases\n", m.f.Name(), len(m.f.Owned()), len(m.f.Nodes()), seen)
			}
		}
		return r, fmt.Errorf("place: %w", err)
	}
	r.Place = time.Since(start)
	counts := make([]int, 0, cfg.Nodes)
	for _, m := range members {
		counts = append(counts, len(m.f.Owned()))
	}
	r.MinPerNode, r.MaxPerNode = slices.Min(counts), slices.Max(counts)
	logf("placed in %s (%d to %d per node)", r.Place.Round(time.Millisecond), r.MinPerNode, r.MaxPerNode)

	// Steady state: after half a lease of settling, count operations.
	sleep(ctx, cfg.Lease/2)
	ops0 := make([]uint64, cfg.Nodes)
	for i, m := range members {
		ops0[i] = m.f.KVOps()
	}
	cpu0, t0 := cpuTime(), time.Now()
	sleep(ctx, cfg.Steady)
	el := time.Since(t0)
	r.CPU = (cpuTime() - cpu0).Seconds() / el.Seconds()
	var ops uint64
	for i, m := range members {
		ops += m.f.KVOps() - ops0[i]
	}
	r.OpsPerNode = float64(ops) / el.Seconds() / float64(cfg.Nodes)
	logf("steady: %.1f KV ops/s per node, %.2f cores", r.OpsPerNode, r.CPU)

	// A node dies: its connection closes, as when its process is killed.
	victim := members[cfg.Nodes/2]
	r.Moved = len(victim.f.Owned())
	start = time.Now()
	logf("kill %s at %s", victim.f.Name(), start.Format("05.000"))
	victim.nc.Close()
	if err := l.waitAll(wctx, cfg.Streams, victim.f.Name()); err != nil {
		return r, fmt.Errorf("converge: %w", err)
	}
	r.Converge = time.Since(start)
	l.mu.Lock()
	r.Doubles = l.doubles
	l.mu.Unlock()
	logf("%d streams of the dead node placed again in %s", r.Moved, r.Converge.Round(time.Millisecond))
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
