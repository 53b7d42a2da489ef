// Command actionbench runs actiond's speed benchmarks beside their peers and
// rewrites BENCHMARKS.md (package bench says what it measures). Run it from
// the checkout root with `make bench`.
package main

import (
	"os"

	"github.com/actiond/actiond/cmd/actionbench/internal/bench"
)

func main() { os.Exit(bench.Main(os.Args[1:])) }
