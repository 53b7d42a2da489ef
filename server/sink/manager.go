package sink

import (
	"log/slog"
	"reflect"
	"sync"

	"github.com/actiond/actiond/ingest/hostlist"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Manager runs the configured sinks. Apply replaces the set (at start and
// on a configuration reload): a sink whose spec is unchanged keeps
// running, a changed one restarts, a removed one stops; none loses its
// position, which its durable consumer in the log keeps by name.
type Manager struct {
	js  jetstream.JetStream
	log *slog.Logger
	// fleet and node, in a fleet (SetFleet): every node runs the same
	// sinks on one consumer each, shared by the fleet.
	fleet, node string

	mu      sync.Mutex
	runners []*runner         // configuration order
	stats   map[string]*stats // by name; kept across Apply
	closed  bool
}

// NewManager returns a Manager reading the event log through js; it runs
// nothing until Apply.
func NewManager(js jetstream.JetStream, log *slog.Logger) *Manager {
	if log == nil {
		log = slog.Default()
	}
	return &Manager{js: js, log: log, stats: map[string]*stats{}}
}

// SetFleet makes this node's sinks those of fleet (call it before Apply):
// each sink's durable consumer and position are the fleet's, named
// "<fleet>_<sink>", shared by the nodes that run it, so that the fleet
// delivers each event once (the consumer hands one event at a time to
// whichever node asks); a default MQTT client id gets "-<node>", as
// brokers allow one connection per client id.
func (m *Manager) SetFleet(fleet, node string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fleet, m.node = fleet, node
}

// Apply makes specs (settled: see Spec.Settle) the running sinks.
func (m *Manager) Apply(specs []Spec, allowed *hostlist.List) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	old := map[string]*runner{}
	for _, r := range m.runners {
		old[r.spec.Name] = r
	}
	var next []*runner
	var firstErr error
	for _, spec := range specs {
		if r := old[spec.Name]; r != nil && reflect.DeepEqual(r.spec, spec) {
			next = append(next, r)
			delete(old, spec.Name)
			continue
		}
		if r := old[spec.Name]; r != nil {
			r.close()
			delete(old, spec.Name)
			m.log.Info("sink changed: restarting it", "sink", spec.Name)
		}
		st := m.stats[spec.Name]
		if st == nil {
			st = new(stats)
			m.stats[spec.Name] = st
		}
		r, err := newRunner(spec, allowed, m.js, st, m.log, m.fleet, m.node)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		r.start()
		next = append(next, r)
	}
	for name, r := range old {
		r.close()
		delete(m.stats, name)
		m.log.Info("sink removed; its position stays in the event log", "sink", name)
	}
	m.runners = next
	return firstErr
}

// List returns every sink with its figures, in configuration order.
func (m *Manager) List() []*actiondv1.Sink {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*actiondv1.Sink, 0, len(m.runners))
	for _, r := range m.runners {
		out = append(out, r.info())
	}
	return out
}

// Close stops every sink and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	var wg sync.WaitGroup
	for _, r := range m.runners {
		wg.Go(r.close)
	}
	wg.Wait()
	m.runners = nil
}

var (
	descDelivered = prometheus.NewDesc("actiond_sink_delivered_total",
		"Events the sink's receiver acknowledged (MQTT PUBACK, HTTP 2xx).", []string{"sink"}, nil)
	descPending = prometheus.NewDesc("actiond_sink_pending",
		"Events in the log for the sink that its receiver has not acknowledged yet.", []string{"sink"}, nil)
	descRetries = prometheus.NewDesc("actiond_sink_retries_total",
		"Deliveries that failed and were retried.", []string{"sink"}, nil)
	descDeadLetters = prometheus.NewDesc("actiond_sink_dead_letters_total",
		"Events given up on: the receiver refused them for good (a webhook's 4xx other than 408 and 429).", []string{"sink"}, nil)
	descUp = prometheus.NewDesc("actiond_sink_up",
		"1 while the sink's receiver is reachable (broker connected, last request answered).", []string{"sink"}, nil)
)

// Collector returns the sinks' metrics, read at scrape time.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) { Describe(ch) }

// Describe sends the descriptions of the sinks' metrics.
func Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descPending, descRetries, descDeadLetters, descUp} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.m.List() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(s.Delivered), s.Name)
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending), s.Name)
		ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(s.Retries), s.Name)
		ch <- prometheus.MustNewConstMetric(descDeadLetters, prometheus.CounterValue, float64(s.DeadLetters), s.Name)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, s.Name)
	}
}
