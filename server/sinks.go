package server

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/actiond/actiond/ingest/hostlist"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/actiond/actiond/server/sink"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// sinks runs the configured sinks once the event log is open. Its
// manager is nil until then (and with no sinks configured it still runs,
// empty, so that a reload can add some).
type sinks struct {
	mu       sync.Mutex // orders start, reload and stop
	manager  atomic.Pointer[sink.Manager]
	cfg      SinksConfig // the sinks running or to run, once reloaded
	reloaded bool        // cfg was set by a reload
	stopped  bool
}

// StartSinks runs the configured sinks, each a durable consumer of the
// event log that js reaches. The server stops them on Shutdown, before the
// log closes.
func (s *Server) StartSinks(js jetstream.JetStream) error {
	s.sinks.mu.Lock()
	defer s.sinks.mu.Unlock()
	if s.sinks.stopped || s.sinks.manager.Load() != nil {
		return nil
	}
	m := sink.NewManager(js, s.log.With("component", "sinks"))
	if s.cfg.InFleet() {
		m.SetFleet(s.cfg.Fleet.Name, s.cfg.Node.Name)
	}
	s.sinks.manager.Store(m)
	if !s.sinks.reloaded {
		s.sinks.cfg = s.cfg.Sinks
	}
	return s.applySinks()
}

func (s *Server) applySinks() error {
	m := s.sinks.manager.Load()
	if m == nil {
		return nil
	}
	hosts, _ := hostlist.Parse("sinks.allowed_hosts", s.sinks.cfg.AllowedHosts)
	return m.Apply(s.sinks.cfg.List, hosts)
}

// ReloadSinks makes cfg's sinks the running ones (SIGHUP rereads the
// configuration file): new ones start at the log's end, removed ones stop,
// changed ones restart; each keeps its position by name.
func (s *Server) ReloadSinks(cfg Config) error {
	settled, errs := cfg.Sinks.settle(nil)
	if err := errs.err(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	s.sinks.mu.Lock()
	defer s.sinks.mu.Unlock()
	if s.sinks.stopped {
		return nil
	}
	s.sinks.cfg, s.sinks.reloaded = settled, true
	s.log.Info("sinks reloaded", "sinks", len(settled.List))
	return s.applySinks()
}

// stopSinks stops the sinks; what they had not delivered stays in the log.
func (s *Server) stopSinks() {
	s.sinks.mu.Lock()
	defer s.sinks.mu.Unlock()
	s.sinks.stopped = true
	if m := s.sinks.manager.Load(); m != nil {
		m.Close()
	}
}

// listSinks is every sink with its figures; before the log is open, the
// configured sinks with none.
func (s *Server) listSinks() []*actiondv1.Sink {
	if m := s.sinks.manager.Load(); m != nil {
		return m.List()
	}
	s.sinks.mu.Lock()
	cfg := s.cfg.Sinks
	if s.sinks.reloaded {
		cfg = s.sinks.cfg
	}
	s.sinks.mu.Unlock()
	var out []*actiondv1.Sink
	for _, spec := range cfg.List {
		out = append(out, &actiondv1.Sink{Name: spec.Name, Type: spec.Type, Target: spec.Target()})
	}
	return out
}

// sinkService is actiond.v1.SinkService.
type sinkService struct {
	actiondv1.UnimplementedSinkServiceServer
	srv *Server
}

func (ss *sinkService) ListSinks(context.Context, *actiondv1.ListSinksRequest) (*actiondv1.ListSinksResponse, error) {
	return &actiondv1.ListSinksResponse{Sinks: ss.srv.listSinks()}, nil
}

// sinkCollector exports the sinks' metrics once they run.
type sinkCollector struct{ s *Server }

func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) { sink.Describe(ch) }

func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	if m := c.s.sinks.manager.Load(); m != nil {
		m.Collector().Collect(ch)
	}
}

// reloadSinksFrom rereads the sinks of the configuration file at path
// (then the environment, as at start) and applies them.
func reloadSinksFrom(s *Server, path string) error {
	cfg, _, err := LoadConfig(path, os.Environ())
	if err != nil {
		return err
	}
	return s.ReloadSinks(cfg)
}
