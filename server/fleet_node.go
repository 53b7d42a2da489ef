package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/fleet"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// joinFleet makes this server a node of the fleet (nats.url): once NATS
// answers, it opens the shared stream registry (watching the changes other
// nodes make) and joins, and from then on the fleet starts and stops the
// streams (StreamManager.Acquire, Release). A duplicate node.name or a
// different fleet.lease ends the server; other failures are tried again
// every second. It runs on its own goroutine until it has joined or ctx
// ends.
func (s *Server) joinFleet(ctx context.Context, c *core) {
	defer close(c.fleetJoined)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		if !c.events.log.Connected() {
			continue
		}
		if c.events.stopFanout == nil {
			// Subscribers here see the streams other nodes play.
			if err := c.events.fanout(ctx, c.events.lastPos.Load(), func(ev *actiondv1.Event) { c.hub.remoteEvent(ev) }); err != nil {
				s.log.Warn("fleet: cannot follow the shared log yet", "error", err)
				continue
			}
		}
		reg, err := s.fleetRegistry(c)
		if err != nil {
			s.log.Warn("fleet: stream registry not open yet", "error", err)
			continue
		}
		if err := c.streams.watchRegistry(ctx, reg); err != nil {
			s.log.Warn("fleet: cannot watch the stream registry yet", "error", err)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*s.cfg.Fleet.Lease)
		f, err := fleet.Start(sctx, fleet.Config{
			Conn:           c.events.log.Conn(),
			Fleet:          s.cfg.Fleet.Name,
			Node:           s.cfg.Node.Name,
			Address:        s.fleetAddress(),
			ServerVersion:  s.cfg.Version,
			Lease:          s.cfg.Fleet.Lease,
			MaxStreams:     s.cfg.Fleet.MaxStreamsPerNode,
			MovesPerMinute: s.cfg.Fleet.MovesPerMinute,
			Replicas:       s.cfg.NATS.Replicas,
			Handler:        c.streams,
			Status:         c.streams.fleetStatus,
			Load:           newLoadMeter(c.sched).load,
			Logger:         s.log,
			Previous:       s.fleetPrevious,
		})
		cancel()
		if errors.Is(err, fleet.ErrDuplicateNode) || errors.Is(err, fleet.ErrLeaseMismatch) {
			s.log.Error("cannot join the fleet", "error", err)
			s.fail(fmt.Errorf("fleet: %w", err))
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("fleet: cannot join yet; trying again", "error", err)
			continue
		}
		// Joined (the name is this node's): its file's streams become the
		// fleet's before it places any.
		c.streams.shareConfig(reg)
		c.fleet.Store(f)
		c.streams.setFleet(f)
		for _, name := range append(healthServices, actiondv1.FleetService_ServiceDesc.ServiceName) {
			s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
		return
	}
}

// fleetRegistry returns the open stream registry; a registry that was
// down at start is opened now and its streams are restored.
func (s *Server) fleetRegistry(c *core) (*streamRegistry, error) {
	sm := c.streams
	sm.change.Lock()
	defer sm.change.Unlock()
	switch st := sm.state.(type) {
	case *streamRegistry:
		return st, nil
	case *lateRegistry:
		reg, fresh, err := st.opened()
		if err != nil || !fresh {
			return reg, err
		}
		specs, err := reg.Load()
		if err != nil {
			return nil, err
		}
		for _, spec := range specs {
			if sm.sharedFromConfig(spec.Name) {
				continue
			}
			if reason := sm.restore(spec); reason != "" {
				sm.held = append(sm.held, heldStream{spec: spec, reason: reason})
				sm.log.Warn("saved stream not restored", "stream", spec.Name, "reason", reason)
			}
		}
		return reg, nil
	}
	return nil, errors.New("no stream registry")
}

// fleetAddress is fleet.address, with the port the listener got when it
// was 0.
func (s *Server) fleetAddress() string {
	host, port, err := net.SplitHostPort(s.cfg.Fleet.Address)
	if err != nil || port != "0" {
		return s.cfg.Fleet.Address
	}
	if _, p, err := net.SplitHostPort(s.Addr()); err == nil {
		return net.JoinHostPort(host, p)
	}
	return s.cfg.Fleet.Address
}

// drainFleet hands this node's streams to the other nodes before it stops
// (SIGTERM on a fleet node), within half of what is left of ctx.
func (s *Server) drainFleet(ctx context.Context, c *core) {
	f := c.fleet.Load()
	if f == nil || len(f.Owned()) == 0 {
		return
	}
	if !c.events.log.Connected() {
		s.log.Warn("fleet: not connected to NATS: no drain; the streams' leases expire and other nodes take them")
		return
	}
	bound := s.cfg.ShutdownTimeout / 2
	if dl, ok := ctx.Deadline(); ok {
		bound = time.Until(dl) / 2
	}
	dctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	start := time.Now()
	n := len(f.Owned())
	if err := f.Drain(dctx); err != nil {
		s.log.Warn("fleet: drain cut short; the streams left are handed back at once", "error", err)
		return
	}
	s.log.Info("fleet: drained: every stream plays on another node", "streams", n, "took", time.Since(start).Round(time.Millisecond))
}

// loadMeter measures the node's load between two heartbeats: the
// process's CPU time over the cores it may use, and the share of the
// model sessions' time spent running.
type loadMeter struct {
	sched         *Scheduler
	at            time.Time
	cpu, busy     time.Duration
	cores, sessns int
}

func newLoadMeter(sched *Scheduler) *loadMeter {
	m := &loadMeter{sched: sched, cores: runtime.GOMAXPROCS(0), sessns: max(1, len(sched.sessions))}
	m.at, m.cpu, m.busy = time.Now(), processCPU(), time.Duration(sched.busy.Load())
	return m
}

// load is fleet.Config.Load; it runs on the fleet's goroutine only.
func (m *loadMeter) load() fleet.Load {
	now, cpu, busy := time.Now(), processCPU(), time.Duration(m.sched.busy.Load())
	wall := now.Sub(m.at)
	var l fleet.Load
	if wall > 0 {
		l.CPU = min(1, float64(cpu-m.cpu)/float64(wall)/float64(m.cores))
		l.Inference = min(1, float64(busy-m.busy)/float64(wall)/float64(m.sessns))
	}
	m.at, m.cpu, m.busy = now, cpu, busy
	return l
}

// processCPU is the CPU time the process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
