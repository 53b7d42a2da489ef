// Command fleetsim measures fleet placement and failover by simulation:
// many fleet members with stand-in streams in one process on one embedded
// NATS JetStream. It rewrites the fleet section of BENCHMARKS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/actiond/actiond/cmd/internal/fleetsim"
)

func main() {
	nodes := flag.String("nodes", "10,50", "node counts to simulate, comma-separated")
	streams := flag.String("streams", "250,1000", "stream counts to simulate, comma-separated")
	lease := flag.Duration("lease", 10*time.Second, "fleet.lease for the simulation")
	steady := flag.Duration("steady", 10*time.Second, "how long the steady state is measured")
	out := flag.String("out", "BENCHMARKS.md", "the markdown file whose fleet section is rewritten; empty: print it")
	png := flag.String("png", "docs/fleet-sim.png", "the plot")
	flag.Parse()
	ns, err := ints(*nodes)
	if err == nil {
		var ss []int
		if ss, err = ints(*streams); err == nil {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			err = fleetsim.Report(ctx, fleetsim.ReportConfig{
				Nodes: ns, Streams: ss, Lease: *lease, Steady: *steady,
				Out: *out, PNG: *png, Command: strings.Join(append([]string{"go run ./cmd/fleetsim"}, os.Args[1:]...), " "), Progress: os.Stderr,
			})
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetsim:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive whole numbers, comma-separated", s)
		}
		out = append(out, n)
	}
	return out, nil
}
