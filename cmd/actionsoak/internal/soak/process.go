package soak

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/actiond/actiond/internal/procstat"
	"github.com/actiond/actiond/internal/serveproc"
)

// startServer runs `bin serve --config cfgPath`, its output into logPath,
// and returns once it has said where it serves gRPC and metrics (both on
// port 0 in the configuration: the child picks).
func startServer(ctx context.Context, bin, cfgPath, logPath string) (*serveproc.Proc, error) {
	return serveproc.Start(ctx, bin, []string{"serve", "--config", cfgPath}, logPath, 2*time.Minute)
}

func orExit0(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// loadAverage reads the machine's 1-minute load average; -1 if unknown.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

// Metrics are the server's figures the report shows, from /metrics; -1
// where a scrape failed.
type Metrics struct {
	Goroutines     float64
	FDs            float64
	DroppedWindows float64 // actiond_stream_dropped_windows_total, all streams
	EventsDropped  float64 // actiond_events_dropped_total
	Reconnects     float64 // actiond_stream_reconnects_total, all streams
	DecodeErrors   float64 // actiond_stream_decode_errors_total, all streams
	PacketsLost    float64 // actiond_stream_packets_lost_total, all streams
	CPUSeconds     float64 // process_cpu_seconds_total
	// WindowToEvent is actiond_window_to_event_seconds' sum and count:
	// the server's part of the latency (window complete → its event
	// queued for the subscribers).
	WindowToEventSum, WindowToEventCount float64
}

var noMetrics = Metrics{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1}

// scrape reads addr's /metrics.
func scrape(ctx context.Context, addr string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sums, err := procstat.Scrape(ctx, http.DefaultClient, addr)
	if err != nil {
		return noMetrics, err
	}
	get := func(name string) float64 {
		if v, ok := sums[name]; ok {
			return v
		}
		return -1
	}
	return Metrics{
		Goroutines:     get("go_goroutines"),
		FDs:            get("process_open_fds"),
		DroppedWindows: get("actiond_stream_dropped_windows_total"),
		EventsDropped:  get("actiond_events_dropped_total"),
		Reconnects:     get("actiond_stream_reconnects_total"),
		DecodeErrors:   get("actiond_stream_decode_errors_total"),
		PacketsLost:    get("actiond_stream_packets_lost_total"),
		CPUSeconds:     get("process_cpu_seconds_total"),

		WindowToEventSum:   get("actiond_window_to_event_seconds_sum"),
		WindowToEventCount: get("actiond_window_to_event_seconds_count"),
	}, nil
}
