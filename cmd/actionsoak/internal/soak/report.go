package soak

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// The markers around the soak section of RELIABILITY.md.
const (
	SectionBegin = "<!-- soak:begin: written by make soak (cmd/actionsoak); do not edit by hand -->"
	SectionEnd   = "<!-- soak:end -->"
)

// writeReport writes Out/soak-report.md and Out/soak.png, and replaces the
// marked section of Reliability (unless the run was interrupted: a partial
// run is no figure to keep).
func writeReport(cfg Config, r *Result) error {
	pngPath := filepath.Join(cfg.Out, "soak.png")
	if err := writePlot(pngPath, r); err != nil {
		return fmt.Errorf("write plot: %w", err)
	}
	mdPath := filepath.Join(cfg.Out, "soak-report.md")
	if err := os.WriteFile(mdPath, []byte(r.markdown(cfg, "soak.png")), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Progress, "soak: wrote %s and %s\n", mdPath, pngPath)
	if cfg.Reliability == "" || r.Interrupted {
		return nil
	}
	rel, err := filepath.Rel(filepath.Dir(cfg.Reliability), pngPath)
	if err != nil {
		rel = pngPath
	}
	if err := replaceSection(cfg.Reliability, r.markdown(cfg, filepath.ToSlash(rel))); err != nil {
		return err
	}
	fmt.Fprintf(cfg.Progress, "soak: rewrote the soak section of %s\n", cfg.Reliability)
	return nil
}

// replaceSection puts body between the markers of the file at path.
func replaceSection(path, body string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(b, []byte(SectionBegin))
	j := bytes.Index(b, []byte(SectionEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no soak section (the lines %q and %q)", path, SectionBegin, SectionEnd)
	}
	var out bytes.Buffer
	out.Write(b[:i+len(SectionBegin)])
	out.WriteString("\n\n" + body + "\n")
	out.Write(b[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

func (r *Result) markdown(cfg Config, png string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	verdict := "**PASS**"
	if len(r.Failures) > 0 {
		verdict = "**FAIL**: " + strings.Join(r.Failures, "; ")
	}
	cmd := cfg.Command
	if cmd == "" {
		cmd = "make soak"
	}
	p("Written by `%s` on %s: %s measured, after every camera's first window. Result: %s.\n\n",
		cmd, r.Start.UTC().Format("2006-01-02 15:04 UTC"), r.End.Sub(r.Start).Round(time.Second), verdict)
	p("Setup: %d simulated cameras (`camsim.Simulator` in the soak's process, each %dx%d at %d fps H.264, the demo's bounce scene, a key frame every second); "+
		"one `actiond serve` child process (model %s, window %v every %v, transport %s, `inference.threads` %d, the other settings default) "+
		"on a %d-core machine; one unfiltered gRPC subscriber (`client.Subscribe`). ",
		cfg.Cameras, cfg.Width, cfg.Height, cfg.FPS, cfg.Model, cfg.Window, cfg.Stride, cfg.Transport, cfg.Threads, runtime.NumCPU())
	if len(cfg.Faults) > 0 {
		p("Faults: one every %v on the next camera in turn, the kinds in rotation (%s; drop = connections closed, stall = nothing sent for %v, "+
			"jump = media clock back to 0, loss = %g%% of RTP packets lost for %v); none in the last %v, so that every camera must be back at the end.\n\n",
			cfg.FaultPeriod, kindsString(cfg.Faults), cfg.StallFor, 100*cfg.Loss, cfg.LossFor, cfg.cooldown())
	} else {
		p("No faults.\n\n")
	}
	p("How it counts: each stream's windows end every stride in media time, so a window whose end is more than one stride after the previous one's (or in a new epoch) leaves a **gap**. ")
	p("A gap is the fault's when it overlaps the span of a fault on the same camera, extended by %v after its end; any other gap is **lost**. ", cfg.Slack)
	p("Holes in the events' sequence numbers are lost whatever the faults (the server numbers what it emits). ")
	p("Latency is the receipt of a WindowResult minus its window's end in absolute time (`end_time`, by its clock: the camera's RTCP capture time, the simulator sharing this machine's clock, else the server's receive time): from the window's last frame to the subscriber. ")
	p("RSS is actiond's VmRSS every %v; drift is over the samples after a %v warm-up: the least-squares slope, and the median of the last tenth against the first; it fails only when both exceed their bounds (a leak raises both; a garbage-collected heap that breathes moves one).\n\n", cfg.SampleEvery, r.WarmUp)

	p("| figure | value | bound |\n|---|---|---|\n")
	p("| events received | %d (%d windows) | – |\n", r.Events, r.Windows)
	p("| window gaps inside faults | %d (%d windows) | – |\n", r.FaultGaps, r.FaultWindows)
	p("| window gaps outside faults (lost) | %d (%d windows) | 0 |\n", r.LostGaps, r.LostWindows)
	p("| events lost (sequence holes) | %d | 0 |\n", r.SequenceHoles)
	p("| events dropped for the subscriber (`Dropped`) | %d | 0 |\n", r.Dropped)
	p("| latency p50 / p90 / p99 / max | %s / %s / **%s** / %s (%d windows) | – |\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.PMax), len(r.Latency))
	d := r.Drift
	p("| RSS after warm-up: first tenth → last tenth | %.1f → %.1f MiB (%+.1f%%) | %g%% |\n", d.First/(1<<20), d.Last/(1<<20), 100*d.Growth(), 100*r.MaxRSSGrowth)
	p("| RSS slope after warm-up | %+.1f MiB/h (%d samples) | %g MiB/h |\n", d.SlopePerHour/(1<<20), d.Samples, r.MaxRSSSlope)
	p("| RSS min / max after warm-up | %.1f / %.1f MiB | – |\n", mib(d.Min), mib(d.Max))
	if w := r.serverWindowToEvent(); w >= 0 {
		p("| actiond's own part: window complete → event queued (mean of `actiond_window_to_event_seconds`) | %s | – |\n", ms(w))
	}
	p("| CPU: actiond / the soak (cameras, subscriber), average over the run | %s / %.2f cores (of %d) | – |\n",
		cores(r.serverCores()), r.SoakCPU.Seconds()/r.End.Sub(r.Start).Seconds(), runtime.NumCPU())
	if mean, most := r.load(); mean >= 0 {
		p("| machine load (1-min load average), mean / max over the run | %.1f / %.1f on %d cores | – |\n", mean, most, runtime.NumCPU())
	}
	p("| goroutines, start → end | %s → %s | – |\n", num(r.StartMetrics.Goroutines), num(r.EndMetrics.Goroutines))
	p("| open fds, start → end | %s → %s | – |\n", num(r.StartMetrics.FDs), num(r.EndMetrics.FDs))
	p("| server counters at the end: dropped windows, reconnects, decode errors, RTP packets lost | %s, %s, %s, %s | – |\n",
		num(r.EndMetrics.DroppedWindows), num(r.EndMetrics.Reconnects), num(r.EndMetrics.DecodeErrors), num(r.EndMetrics.PacketsLost))
	if r.LostWindows > 0 && r.EndMetrics.DroppedWindows >= 0 {
		p("\nOf the %d windows lost, the server counted %.0f as dropped because inference fell behind (`actiond_stream_dropped_windows_total`, all streams, faults included): ", r.LostWindows, r.EndMetrics.DroppedWindows)
		p("read them with the latency and the machine's load above.\n")
	}
	p("\n![actiond RSS and window latency over the soak](%s)\n\n", png)

	if len(r.Faults) > 0 {
		p("| fault | injected | gaps it explains | windows missing | longest recovery (fault end → first window after) |\n|---|---|---|---|---|\n")
		for _, k := range AllFaults {
			n, gaps, missing := 0, 0, 0
			for _, f := range r.Faults {
				if f.Kind == k {
					n++
				}
			}
			for _, g := range r.Gaps {
				if g.Fault != 0 && g.Kind != GapSequence && r.Faults[g.Fault-1].Kind == k {
					gaps++
					missing += g.Missing
				}
			}
			if n > 0 {
				p("| %s | %d | %d | %d | %s |\n", k, n, gaps, missing, ms(r.Recovery[k]))
			}
		}
		p("\n")
	}
	p("| stream | events | windows | status events | actions started / ended | epochs | gaps in faults (windows) | lost gaps (windows) |\n|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Streams {
		p("| %s | %d | %d | %d | %d / %d | %d | %d (%d) | %d (%d) |\n", s.Name, s.Events, s.Windows, s.Statuses,
			s.Started, s.Ended, s.Epochs, s.FaultGaps, s.FaultMissing, s.LostGaps, s.LostMissed)
	}
	var clocks []string
	for _, c := range []actiondv1.Clock{actiondv1.Clock_CLOCK_RTCP, actiondv1.Clock_CLOCK_RECEIVE} {
		if n := r.Clocks[c]; n > 0 {
			clocks = append(clocks, fmt.Sprintf("%d %s", n, strings.ToLower(strings.TrimPrefix(c.String(), "CLOCK_"))))
		}
	}
	p("\nWindows by clock: %s.", strings.Join(clocks, ", "))
	if r.Unhit > 0 {
		p(" %d of %d faults left no gap (the stream rode them out).", r.Unhit, len(r.Faults))
	}
	p("\n")
	var lost []Gap
	for _, g := range r.Gaps {
		if g.Fault == 0 {
			lost = append(lost, g)
		}
	}
	if len(lost) > 0 {
		p("\nLost (first 20):\n\n| stream | kind | from | to | missing | new epoch |\n|---|---|---|---|---|---|\n")
		for _, g := range lost[:min(20, len(lost))] {
			p("| %s | %s | %s | %s | %d | %v |\n", g.Stream, g.Kind, clock(g.From.Sub(r.Start)), clock(g.To.Sub(r.Start)), g.Missing, g.NewEpoch)
		}
	}
	p("\nLogs of the run: `%s/actiond.log` (the server), `%s/sim.log` (the cameras and every fault).\n", cfg.Work, cfg.Work)
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func cores(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", v)
}

func num(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", v)
}
