package server

import (
	"net/http"
	"strings"
	"sync/atomic"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, on a registry of its own (so
// that several servers can live in one test process). Stream labels are
// stream names, never URLs.
type Metrics struct {
	registry *prometheus.Registry

	windowToEvent    *prometheus.HistogramVec
	inferenceSeconds prometheus.Histogram
	batchSize        prometheus.Histogram
	inferenceErrors  prometheus.Counter
	runsInFlight     prometheus.Gauge
	subscribers      prometheus.Gauge
	eventsSent       prometheus.Counter
	eventsDropped    prometheus.Counter
	classifyRequests *prometheus.CounterVec
	modelLoaded      prometheus.Gauge

	// log is the event log's.
	log *eventLogMetrics

	// streams returns the streams' current state at scrape time.
	streams atomic.Pointer[func() []*actiondv1.Stream]
}

// NewMetrics registers the server's metrics, and the Go runtime's and the
// process's, on a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		windowToEvent: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "actiond_window_to_event_seconds",
			Help:    "Time from a window being complete to its WindowResult being queued for subscribers: waiting for a batch, inference and the hub.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"stream"}),
		inferenceSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "actiond_inference_seconds",
			Help:    "Time to run one batch through the model.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "actiond_inference_batch_size",
			Help:    "Windows per batch run through the model.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64},
		}),
		inferenceErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actiond_inference_errors_total",
			Help: "Batches the model failed to run (their windows are dropped).",
		}),
		runsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_inference_runs_in_flight",
			Help: "Batches running through the model now (at most inference.sessions).",
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_subscribers",
			Help: "Subscribe calls open now.",
		}),
		eventsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actiond_events_queued_total",
			Help: "Events queued for subscribers (one per subscriber that gets it).",
		}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "actiond_events_dropped_total",
			Help: "Events dropped because their subscriber fell behind (announced to it by a Dropped event).",
		}),
		classifyRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "actiond_classify_requests_total",
			Help: "Classify calls, by gRPC status code.",
		}, []string{"code"}),
		modelLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "actiond_model_loaded",
			Help: "1 once the model is loaded and the server is SERVING.",
		}),
	}
	m.registry.MustRegister(
		m.windowToEvent, m.inferenceSeconds, m.batchSize, m.inferenceErrors, m.runsInFlight,
		m.subscribers, m.eventsSent, m.eventsDropped, m.classifyRequests, m.modelLoaded,
		streamCollector{m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.log = newEventLogMetrics(m.registry)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// setStreams tells the metrics where to read the streams' counters.
func (m *Metrics) setStreams(f func() []*actiondv1.Stream) { m.streams.Store(&f) }

// forgetStream drops a removed stream's series.
func (m *Metrics) forgetStream(name string) { m.windowToEvent.DeleteLabelValues(name) }

// streamCollector reads every stream's counters at scrape time: ingest
// keeps them, and copying them on every change would cost more than a
// scrape.
type streamCollector struct{ m *Metrics }

var (
	streamLabels        = []string{"stream"}
	descFrames          = prometheus.NewDesc("actiond_stream_frames_total", "Frames decoded.", streamLabels, nil)
	descDecodeErrors    = prometheus.NewDesc("actiond_stream_decode_errors_total", "Packets or frames the decoder rejected.", streamLabels, nil)
	descReconnects      = prometheus.NewDesc("actiond_stream_reconnects_total", "Connection attempts after the first.", streamLabels, nil)
	descWindows         = prometheus.NewDesc("actiond_stream_windows_total", "Windows made.", streamLabels, nil)
	descDroppedWindows  = prometheus.NewDesc("actiond_stream_dropped_windows_total", "Windows dropped before the scheduler took them (the stream's own queue overflowed); those the model had no time for are skipped_windows.", streamLabels, nil)
	descSkippedWindows  = prometheus.NewDesc("actiond_stream_skipped_windows_total", "Windows not run because the model was busy: a newer window of the stream replaced them (latest wins).", streamLabels, nil)
	descEffectiveStride = prometheus.NewDesc("actiond_stream_effective_stride_seconds", "The stride actually served over the last minute: the mean time between the ends of the windows the model ran or reused (0 until two were).", streamLabels, nil)
	descDroppedFrames   = prometheus.NewDesc("actiond_stream_dropped_frames_total", "Frames dropped before decoding because the decoder fell behind.", streamLabels, nil)
	descPacketsLost     = prometheus.NewDesc("actiond_stream_packets_lost_total", "RTP packets lost on the way from the camera.", streamLabels, nil)
	descInputFPS        = prometheus.NewDesc("actiond_stream_input_fps", "Frames per second of media time over the last window.", streamLabels, nil)
	descState           = prometheus.NewDesc("actiond_stream_state", "1 for the state the stream is in.", []string{"stream", "state"}, nil)
	streamStateNames    = []actiondv1.StreamState{actiondv1.StreamState_STREAM_STATE_CONNECTING, actiondv1.StreamState_STREAM_STATE_PLAYING, actiondv1.StreamState_STREAM_STATE_RETRYING, actiondv1.StreamState_STREAM_STATE_STOPPED, actiondv1.StreamState_STREAM_STATE_DISABLED}
	streamCollectorDesc = []*prometheus.Desc{descFrames, descDecodeErrors, descReconnects, descWindows, descDroppedWindows, descSkippedWindows, descEffectiveStride, descDroppedFrames, descPacketsLost, descInputFPS, descState}
)

func (c streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range streamCollectorDesc {
		ch <- d
	}
}

func (c streamCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.m.streams.Load()
	if f == nil {
		return
	}
	for _, s := range (*f)() {
		st, name := s.GetStatus(), s.GetName()
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name)
		}
		counter(descFrames, st.GetFramesDecoded())
		counter(descDecodeErrors, st.GetDecodeErrors())
		counter(descReconnects, st.GetReconnectCount())
		counter(descWindows, st.GetWindowCount())
		counter(descDroppedWindows, st.GetDroppedWindows())
		counter(descSkippedWindows, st.GetSkippedWindows())
		ch <- prometheus.MustNewConstMetric(descEffectiveStride, prometheus.GaugeValue, st.GetEffectiveStride().AsDuration().Seconds(), name)
		counter(descDroppedFrames, st.GetDroppedFrames())
		counter(descPacketsLost, st.GetPacketsLost())
		ch <- prometheus.MustNewConstMetric(descInputFPS, prometheus.GaugeValue, st.GetInputFps(), name)
		for _, state := range streamStateNames {
			v := 0.0
			if st.GetState() == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, name, stateName(state))
		}
	}
}

// stateName is a state as a metric label: "playing".
func stateName(s actiondv1.StreamState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STREAM_STATE_"))
}
