package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/actiond/actiond/internal/procstat"
)

// child is the `actiond serve` child process.
type child struct {
	cmd         *exec.Cmd
	done        chan struct{} // closed once it has exited
	err         error         // how it exited, once done
	grpcAddr    string
	metricsAddr string
	log         *os.File
}

// startServer runs `bin serve --config cfgPath`, its output into logPath,
// and returns once it has said where it serves gRPC and metrics (both on
// port 0 in the configuration: the child picks).
func startServer(ctx context.Context, bin, cfgPath, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	// Its own process group: a Ctrl-C in the terminal reaches only the
	// soak, which then stops the server itself (SIGTERM, then SIGKILL).
	// Pdeathsig kills it should the soak itself be killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Its event log beside its configuration, kept across its restarts.
	cmd.Env = append(os.Environ(), "ACTIOND_DATA_DIR="+filepath.Join(filepath.Dir(cfgPath), "data"))
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	s := &child{cmd: cmd, done: make(chan struct{}), log: logf}
	addrs := make(chan [2]string, 1)
	go func() {
		// Its stdout says where it listens; the rest goes to the log.
		var grpcAddr, metricsAddr string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if a, ok := strings.CutPrefix(line, "actiond: serving gRPC on "); ok {
				grpcAddr = a
			}
			if a, ok := strings.CutPrefix(line, "actiond: metrics on http://"); ok {
				metricsAddr = strings.TrimSuffix(a, "/metrics")
			}
			if grpcAddr != "" && metricsAddr != "" {
				addrs <- [2]string{grpcAddr, metricsAddr}
				grpcAddr = ""
			}
		}
		io.Copy(logf, stdout)
		s.err = cmd.Wait()
		close(s.done)
	}()
	select {
	case a := <-addrs:
		s.grpcAddr, s.metricsAddr = a[0], a[1]
		return s, nil
	case <-s.done:
		logf.Close()
		return nil, fmt.Errorf("actiond serve exited before serving (%v); see %s", s.err, logPath)
	case <-ctx.Done():
		s.stop(0)
		return nil, fmt.Errorf("actiond serve did not start: %w", context.Cause(ctx))
	case <-time.After(2 * time.Minute):
		s.stop(0)
		return nil, fmt.Errorf("actiond serve did not say where it serves within 2m; see %s", logPath)
	}
}

// exited says whether the server has exited, and how.
func (s *child) exited() (bool, error) {
	select {
	case <-s.done:
		return true, s.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM and waits up to grace for a graceful exit, then
// kills. It returns how the server exited: nil is a clean, graceful exit.
func (s *child) stop(grace time.Duration) error {
	defer s.log.Close()
	if done, err := s.exited(); done {
		return fmt.Errorf("exited early: %w", orExit0(err))
	}
	if grace > 0 {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
			return s.err
		case <-time.After(grace):
		}
	}
	s.cmd.Process.Kill()
	<-s.done
	return fmt.Errorf("killed after %v without exiting", grace)
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
