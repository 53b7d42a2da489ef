package bench

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/actiond/actiond/server"
)

// sessionsPoint is one split of the machine's cores into engine sessions
// running side by side (inference.sessions × threads each).
type sessionsPoint struct {
	Sessions, Threads int
	Iterations        int  // runs per session per repeat
	ClipsPerS         stat // every session's clips over the wall time, per repeat
	P50               stat // ms per run
	Command           string
}

type sessionsResult struct {
	Cores   int
	Repeats int
	Points  []sessionsPoint
}

// sessionsRun is `actiond model bench --sessions N --json`.
type sessionsRun struct {
	P50       float64 `json:"p50_ms"`
	ClipsPerS float64 `json:"clips_per_s"`
}

// benchSessions splits cores into 1, 2, 4 … sessions of cores/sessions
// threads, interleaved within each repeat, and measures the clips per
// second of them all together.
func benchSessions(c config, model string, cores, repeats int) (*sessionsResult, error) {
	res := &sessionsResult{Cores: cores, Repeats: repeats}
	var args [][]string
	for s := 1; s <= cores; s *= 2 {
		th := cores / s
		it := max(3, c.iterations/s)
		a := []string{"model", "bench", "--model", model, "--sessions", strconv.Itoa(s), "--threads", strconv.Itoa(th), "--iterations", strconv.Itoa(it), "--json"}
		args = append(args, a)
		res.Points = append(res.Points, sessionsPoint{Sessions: s, Threads: th, Iterations: it, Command: c.actiond + " " + join(a)})
	}
	cps := make([][]float64, len(args))
	p50 := make([][]float64, len(args))
	for i := range repeats {
		progress("sessions, %s: repeat %d/%d", filepath.Base(model), i+1, repeats)
		for j := range args {
			var r sessionsRun
			if err := runJSON(&r, nil, c.actiond, args[j]...); err != nil {
				return res, err
			}
			cps[j] = append(cps[j], r.ClipsPerS)
			p50[j] = append(p50[j], r.P50)
		}
	}
	for j := range res.Points {
		res.Points[j].ClipsPerS = summarise(cps[j])
		res.Points[j].P50 = summarise(p50[j])
	}
	return res, nil
}

// sessionsMarkdown writes the Sessions section.
func sessionsMarkdown(p func(string, ...any), model string, r *sessionsResult) {
	p("## Sessions: model runs side by side\n\n")
	p("`inference.sessions` runs that many windows through the model at once, each on its own engine session with `threads/sessions` intra-op threads. ")
	p("Its default is one session per %d threads (`server.DefaultSessions`): ", 4)
	for i, n := range []int{2, 4, 8, 16, 64} {
		s, th := server.InferenceSplit(n, 0)
		sep := ", "
		if i == 0 {
			sep = ""
		}
		p("%s%d cores → %d × %d", sep, n, s, th)
	}
	p(". One batch-1 run does not scale past about 4 threads (each of its many small layers ends at a barrier where the threads wait for the slowest), so a many-core machine fills its cores with runs side by side; a single run keeps every thread where the cores are few, because it answers each window sooner at about the same throughput. Each session holds a copy of the weights.\n\n")
	if r == nil || len(r.Points) == 0 {
		p("Not measured in this run (`-sessions` was 0).\n\n")
		return
	}
	p("Measured here: the untrained PP-TSMv2 (`%s`), batch 1, the machine's %d cores split into sessions × threads, all sessions running at once; %d repeats, interleaved. **clips/s** = every session's clips over the wall time of the timed runs (the throughput the scheduler gets); **p50** = one run's latency.\n\n", model, r.Cores, r.Repeats)
	p("| sessions × threads | clips/s | p50 ms per run | runs per session |\n|---|---|---|---|\n")
	for _, pt := range r.Points {
		p("| %d × %d | %s | %s | %d |\n", pt.Sessions, pt.Threads, fmtStat(pt.ClipsPerS, 2), pt.P50, pt.Iterations)
	}
	p("\nCommands:\n\n```\n")
	for _, pt := range r.Points {
		p("%s\n", pt.Command)
	}
	p("```\n\n")
}

// fmtStat is a stat with prec decimals.
func fmtStat(s stat, prec int) string {
	return fmt.Sprintf("%.*f / **%.*f** / %.*f", prec, s.Min, prec, s.Median, prec, s.Max)
}
