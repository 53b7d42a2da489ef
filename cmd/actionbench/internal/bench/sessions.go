package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/actiond/actiond/server"
)

// sessionsPoint is one split of the machine's cores into engine sessions
// running side by side (inference.sessions × threads each).
type sessionsPoint struct {
	Model             string // the file run: the whole model or its back half
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
// second of them all together: on the whole model, and on its back half
// when it has one (what the server runs per window with the feature cache,
// its default). The sessions are opened as the server opens them: intra-op
// threads that sleep instead of spinning (--no-spin). Spinning threads,
// two of them on two cores, stall whenever another process takes a core,
// which made the measurement say more about the neighbours than about
// the split.
func benchSessions(c config, model string, cores, repeats int) (*sessionsResult, error) {
	res := &sessionsResult{Cores: cores, Repeats: repeats}
	var args [][]string
	files := []string{model}
	if back := strings.TrimSuffix(model, ".onnx") + ".back.onnx"; back != model {
		if _, err := os.Stat(back); err == nil {
			files = append(files, back)
		}
	}
	for _, f := range files {
		for s := 1; s <= cores; s *= 2 {
			th := cores / s
			it := max(3, c.iterations/s)
			a := []string{"model", "bench", "--model", f, "--sessions", strconv.Itoa(s), "--threads", strconv.Itoa(th), "--iterations", strconv.Itoa(it), "--no-spin", "--json"}
			args = append(args, a)
			res.Points = append(res.Points, sessionsPoint{Model: f, Sessions: s, Threads: th, Iterations: it, Command: c.actiond + " " + join(a)})
		}
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
	p("Measured here: the untrained PP-TSMv2 (`%s`) and, where it has one, its back half (what the server runs per window with the feature cache, its default; the fronts run per kept frame), batch 1, the machine's %d cores split into sessions × threads, all sessions running at once, opened as the server opens them (`--no-spin`: intra-op threads sleep between their parts of a run instead of spinning); %d repeats, interleaved. **clips/s** = every session's clips over the wall time of the timed runs (the throughput the scheduler gets); **p50** = one run's latency.\n\n", model, r.Cores, r.Repeats)
	p("| model | sessions × threads | clips/s | p50 ms per run | runs per session |\n|---|---|---|---|---|\n")
	for _, pt := range r.Points {
		p("| %s | %d × %d | %s | %s | %d |\n", filepath.Base(pt.Model), pt.Sessions, pt.Threads, fmtStat(pt.ClipsPerS, 2), pt.P50, pt.Iterations)
	}
	p("\n%s", sessionsReading(r))
	p("\nCommands:\n\n```\n")
	for _, pt := range r.Points {
		p("%s\n", pt.Command)
	}
	p("```\n\n")
}

// sessionsReading compares, per model file, the split the default rule
// gives on this machine with the fastest one measured (by median clips/s).
func sessionsReading(r *sessionsResult) string {
	var b strings.Builder
	ds, dt := server.InferenceSplit(r.Cores, 0)
	var files []string
	for _, pt := range r.Points {
		if !slices.Contains(files, pt.Model) {
			files = append(files, pt.Model)
		}
	}
	for _, f := range files {
		var def, best *sessionsPoint
		for i := range r.Points {
			pt := &r.Points[i]
			if pt.Model != f {
				continue
			}
			if pt.Sessions == ds && pt.Threads == dt {
				def = pt
			}
			if best == nil || pt.ClipsPerS.Median > best.ClipsPerS.Median {
				best = pt
			}
		}
		if def == nil || best == nil {
			continue
		}
		fmt.Fprintf(&b, "`%s`: the default here, %d × %d, %.2f clips/s (p50 %.0f ms a run)", filepath.Base(f), ds, dt, def.ClipsPerS.Median, def.P50.Median)
		if best == def {
			b.WriteString(", the most measured. ")
		} else {
			fmt.Fprintf(&b, "; the most measured, %d × %d, %.2f clips/s (%.2f×, p50 %.0f ms a run). ", best.Sessions, best.Threads, best.ClipsPerS.Median, best.ClipsPerS.Median/def.ClipsPerS.Median, best.P50.Median)
		}
	}
	b.WriteString("On this shared machine a repeat can lose half its speed to a neighbour; the min–max spread shows how much. The run of 2026-12-04, with spinning threads (before `--no-spin`), measured on the whole model 1 × 2 at 4.5 clips/s (repeats 4.2, 4.5, 12.0) against 10.1 for 2 × 1: two spinning threads on two cores stall whenever another process takes a core, which the server's sleeping threads do not.\n\n")
	return b.String()
}

// fmtStat is a stat with prec decimals.
func fmtStat(s stat, prec int) string {
	return fmt.Sprintf("%.*f / **%.*f** / %.*f", prec, s.Min, prec, s.Median, prec, s.Max)
}
