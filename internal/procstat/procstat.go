// Package procstat reads what the benchmark and the soak watch of a
// running actiond: its resident memory from /proc and its Prometheus
// /metrics page. Linux only; it must not import the server.
package procstat

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// RSS reads the resident set size (VmRSS) of process pid from /proc, in
// bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(v))
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("read rss of %d: unexpected %q", pid, line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("read rss of %d: no VmRSS", pid)
}

// Scrape reads the /metrics page at addr (host:port) and returns
// ParseMetrics of it.
func Scrape(ctx context.Context, client *http.Client, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape metrics: %w", err)
	}
	return ParseMetrics(body), nil
}

// ParseMetrics sums each metric of Prometheus' text format over its
// labels. Enough for counters and gauges; histograms' series are summed
// under their own names (_bucket, _sum, _count).
func ParseMetrics(body []byte) map[string]float64 {
	sums := make(map[string]float64)
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if j := strings.LastIndexByte(rest, '}'); j >= 0 {
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sums[name] += v
	}
	return sums
}
