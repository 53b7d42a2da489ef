package bench

import (
	"fmt"
	"os/exec"
	"strings"
)

// hotPathCmd is the Go benchmark of the live per-frame path: decode, window
// push, conversion and preprocessing of the kept frames (ingest/hotpath_test.go).
var hotPathCmd = []string{"go", "test", "./ingest", "-run", "^$", "-bench", "^BenchmarkLiveHotPath$", "-benchmem", "-count", "3"}

// benchHotPath runs the hot-path benchmark and keeps its result lines.
func benchHotPath() ([]string, error) {
	progress("live hot path: %s", strings.Join(hotPathCmd, " "))
	out, err := exec.Command(hotPathCmd[0], hotPathCmd[1:]...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(hotPathCmd, " "), err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "BenchmarkLiveHotPath") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("%s printed no result:\n%s", strings.Join(hotPathCmd, " "), out)
	}
	return lines, nil
}

func hotPathMarkdown(p func(string, ...any), lines []string) {
	p("## Live hot path: allocations per frame\n\n")
	if len(lines) == 0 {
		p("Not measured in this run.\n\n")
		return
	}
	p("One op is one frame of a real 25 fps H.264 stream through the live path in steady state (decode, window push, conversion and preprocessing of the frames the window keeps). `allocs/op` must read 0; the bytes per op are the receiver's copy of each finished window's tensor, one per 250 frames by design (the window hands every subscriber-bound Window its own tensor). `TestLiveHotPathAllocatesNothing` asserts the zero over the frames between two window ends.\n\n")
	p("```\n%s\n```\n\n```\n%s\n```\n\n", strings.Join(lines, "\n"), strings.Join(hotPathCmd, " "))
}
