package fleetsim

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/actiond/actiond/cmd/internal/plot"
)

// The markers around the fleet section of BENCHMARKS.md: fleetsim rewrites
// what is between them, and make bench keeps it.
const (
	SectionBegin = "<!-- fleetsim: begin -->"
	SectionEnd   = "<!-- fleetsim: end -->"
)

// ReportConfig is a grid of simulated fleets and where the report goes.
type ReportConfig struct {
	Nodes, Streams []int
	Lease, Steady  time.Duration
	// Out is the markdown file whose fleet section is rewritten (added
	// before "## Reproduce" if it has none); empty prints the section.
	Out string
	// PNG is the plot's path, relative to the working directory.
	PNG      string
	Command  string
	Progress interface{ Write([]byte) (int, error) }
}

// Report runs every fleet of the grid and writes the section and plot.
func Report(ctx context.Context, rc ReportConfig) error {
	started := time.Now()
	var rs []Result
	for _, s := range rc.Streams {
		for _, n := range rc.Nodes {
			r, err := Run(ctx, Config{Nodes: n, Streams: s, Lease: rc.Lease, Steady: rc.Steady, Progress: rc.Progress})
			if err != nil {
				return fmt.Errorf("%d nodes, %d streams: %w", n, s, err)
			}
			rs = append(rs, r)
		}
	}
	if rc.PNG != "" {
		if err := writePlot(rc.PNG, rs); err != nil {
			return err
		}
	}
	md := markdown(rc, rs, time.Since(started))
	if rc.Out == "" {
		fmt.Print(md)
		return nil
	}
	b, err := os.ReadFile(rc.Out)
	if err != nil {
		return err
	}
	if err := os.WriteFile(rc.Out, []byte(ReplaceSection(string(b), md)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(rc.Progress, "fleetsim: rewrote the fleet section of %s\n", rc.Out)
	return nil
}

// ReplaceSection puts body between the markers in doc, or adds a marked
// section before "## Reproduce" (or at the end) if doc has none.
func ReplaceSection(doc, body string) string {
	section := SectionBegin + "\n\n" + strings.TrimSpace(body) + "\n\n" + SectionEnd
	i, j := strings.Index(doc, SectionBegin), strings.Index(doc, SectionEnd)
	if i >= 0 && j > i {
		return doc[:i] + section + doc[j+len(SectionEnd):]
	}
	if k := strings.Index(doc, "\n## Reproduce"); k >= 0 {
		return doc[:k+1] + section + "\n\n" + doc[k+1:]
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + section + "\n"
}

func markdown(rc ReportConfig, rs []Result, took time.Duration) string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Fleet: placement and failover by simulation\n\n")
	p("Written by `%s` on %s in %s (%d cores, %s); do not edit by hand, run it again.\n\n",
		rc.Command, time.Now().UTC().Format("2006-01-02"), took.Round(time.Second), runtime.NumCPU(), runtime.Version())
	p("Many fleet members (`server/fleet`) in one process, each with its own NATS connection to one embedded NATS server with JetStream (file store), place stand-in streams: owning a stream costs nothing but its lease (no camera, no decoding), so this measures the coordination alone. ")
	p("`fleet.lease` is %s; the nodes renew every lease/3 and give a stream up 2/3 of a lease after their last renewal. ", rc.Lease)
	p("*Place* is from handing every joined node the stream list to every stream playing; *KV ops/s per node* counts each node's heartbeats, claims and renewals (reads and writes, not watch deliveries) over %s of steady state; *cores* is the whole process (NATS server and every node) in that time; ", rc.Steady)
	p("then one node loses its NATS connection, as when its process is killed, and *converge* is from then to every one of its streams playing on another node. *Double owners* counts the moments a stream had two owners (a second Acquire before the first Release); it must be 0.\n\n")
	p("| nodes | streams | place | streams per node | KV ops/s per node | cores | dead node's streams | converge | bound (2 × lease) | double owners |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		p("| %d | %d | %.2f s | %d–%d | %.1f | %.2f | %d | %.1f s | %.0f s | %d |\n",
			r.Nodes, r.Streams, r.Place.Seconds(), r.MinPerNode, r.MaxPerNode, r.OpsPerNode, r.CPU,
			r.Moved, r.Converge.Seconds(), 2*r.Lease.Seconds(), r.Doubles)
	}
	p("\n")
	if rc.PNG != "" {
		p("![Placement and failover times and KV operations per node against the number of nodes](%s)\n\n", filepath.ToSlash(rc.PNG))
	}
	p("How it grows: a node's KV operations are one heartbeat plus one renewal per stream it owns every lease/3, so ops/s per node ≈ (streams/nodes + 1) × 3 / lease and the fleet's total ≈ (streams + nodes) × 3 / lease, whatever the number of nodes. ")
	p("Every node watches both buckets, so the NATS server delivers each renewal to every node: watch traffic grows with streams × nodes (here %s). ", watchRate(rs))
	p("Converging after a death takes one lease (the dead node's leases must expire; its streams stopped at 2/3 of a lease) plus a claim round, independent of the number of nodes; placing everything takes one claim per stream, spread over the nodes.\n\n")
	p("The lease is the production default: with a 3 s lease, 50 nodes and 1,000 streams on this shared 2-core machine the in-process NATS server did not answer renewals within lease/6, and nodes gave their streams up (safely: they stop before the lease can expire, so there were no double owners, but streams churned). On real machines each node is its own process and host.\n\n")
	p("```\ngo run ./cmd/fleetsim -nodes %s -streams %s -lease %s -steady %s\n```\n",
		joinInts(rc.Nodes), joinInts(rc.Streams), rc.Lease, rc.Steady)
	return b.String()
}

func watchRate(rs []Result) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%d×%d: %.0f deliveries/s", r.Streams, r.Nodes, (float64(r.Streams)+float64(r.Nodes))*3/r.Lease.Seconds()*float64(r.Nodes)))
	}
	return strings.Join(parts, ", ")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

var palette = []color.RGBA{plot.Blue, plot.Red, plot.Green, plot.Orange}

// writePlot draws two panels against the number of nodes, one line per
// stream count: place and converge times on the left, KV ops/s per node on
// the right.
func writePlot(path string, rs []Result) error {
	const W, H = 1000, 420
	img := plot.NewImage(W, H)
	plot.Text(img, W/2, 18, fmt.Sprintf("actiond fleet simulation: stand-in streams on one embedded NATS JetStream, fleet.lease %s", rs[0].Lease), plot.Ink, true)
	var streams []int
	maxN, maxT, maxOps := 1.0, 1.0, 1.0
	for _, r := range rs {
		if len(streams) == 0 || streams[len(streams)-1] != r.Streams {
			streams = append(streams, r.Streams)
		}
		maxN = max(maxN, float64(r.Nodes))
		maxT = max(maxT, r.Converge.Seconds(), r.Place.Seconds(), 2*r.Lease.Seconds())
		maxOps = max(maxOps, r.OpsPerNode)
	}
	xmax := plot.NiceCeil(maxN * 1.1)
	panel := func(x0 int, ymax float64, ylabel string) plot.Panel {
		p := plot.Panel{Img: img, X0: x0, Y0: 50, W: 380, H: 300, XMax: xmax, YMax: plot.NiceCeil(ymax * 1.1)}
		p.Axes(plot.Ticks(0, xmax, 4), plot.Ticks(0, p.YMax, 4), "nodes", ylabel)
		return p
	}
	left, right := panel(70, maxT, "seconds"), panel(570, maxOps, "KV ops/s per node")
	for i, s := range streams {
		c := palette[i%len(palette)]
		var xs, place, conv, ops []float64
		for _, r := range rs {
			if r.Streams == s {
				xs = append(xs, float64(r.Nodes))
				place = append(place, r.Place.Seconds())
				conv = append(conv, r.Converge.Seconds())
				ops = append(ops, r.OpsPerNode)
			}
		}
		left.Draw(plot.Series{Color: c, Dots: true, X: xs, Y: conv}, plot.Series{Color: c, Dashed: true, Dots: true, X: xs, Y: place})
		right.Draw(plot.Series{Color: c, Dots: true, X: xs, Y: ops})
		plot.Text(img, 80, 70+16*i, fmt.Sprintf("%d streams: converge (solid), place (dashed)", s), c, false)
		plot.Text(img, 640, 70+16*i, fmt.Sprintf("%d streams", s), c, false)
	}
	bound := 2 * rs[0].Lease.Seconds()
	left.Draw(plot.Series{Color: plot.Grey, Dashed: true, X: []float64{0, xmax}, Y: []float64{bound, bound}})
	plot.Text(img, left.X0+left.W-4-plot.TextWidth("2 x lease"), left.Y(bound)-4, "2 x lease", plot.Grey, false)
	return plot.WritePNG(path, img)
}
