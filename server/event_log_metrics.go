package server

import "github.com/prometheus/client_golang/prometheus"

// eventLogMetrics are the event log's metrics.
type eventLogMetrics struct {
	logged         prometheus.Counter
	unlogged       prometheus.Counter
	up             prometheus.Gauge
	bytes          prometheus.Gauge
	messages       prometheus.Gauge
	oldestPosition prometheus.Gauge
	lastPosition   prometheus.Gauge
	snapshots      prometheus.Counter
	snapshotBytes  prometheus.Gauge
}

func newEventLogMetrics(r *prometheus.Registry) *eventLogMetrics {
	m := &eventLogMetrics{
		logged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actiond_events_logged_total",
			Help: "Events stored in the event log (acknowledged before anyone saw them).",
		}),
		unlogged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actiond_events_unlogged_total",
			Help: "Events the event log could not store: they reached live subscribers with logged false, and cannot be replayed.",
		}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_event_log_up",
			Help: "1 while the event log stores events.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_event_log_bytes",
			Help: "Bytes the event log holds (events.max_bytes bounds it).",
		}),
		messages: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_event_log_events",
			Help: "Events the event log holds.",
		}),
		oldestPosition: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_event_log_oldest_position",
			Help: "The oldest position the event log keeps: resume_after older than it is OUT_OF_RANGE.",
		}),
		lastPosition: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_event_log_last_position",
			Help: "The newest position in the event log.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actiond_snapshots_stored_total",
			Help: "Action snapshots stored.",
		}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_snapshot_bytes",
			Help: "Bytes the snapshot store holds.",
		}),
	}
	r.MustRegister(m.logged, m.unlogged, m.up, m.bytes, m.messages, m.oldestPosition, m.lastPosition, m.snapshots, m.snapshotBytes)
	return m
}
