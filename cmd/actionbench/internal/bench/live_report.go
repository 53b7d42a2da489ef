package bench

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// liveMarkdown writes the Live capacity section.
func liveMarkdown(p func(string, ...any), c config, r *liveResult) {
	p("## Live capacity: N cameras through one actiond\n\n")
	if r == nil || len(r.Points) == 0 {
		p("Not measured in this run (`-live` was empty).\n\n")
		return
	}
	p("N simulated %dx%d %d fps H.264 cameras (the in-process RTSP simulator, `camsim.Simulator`, on loopback, %s), ", liveWidth, liveHeight, liveFPS, rateText(c, r))
	p("each showing `%s` (`%s` scaled to %dx%d, %d fps, looped every 10 s; key frame every second), started at phases spread over a second as independent cameras are. ", r.Source, c.clip, liveWidth, liveHeight, liveFPS)
	p("One `actiond serve` process watches all N (window %s, stride %s) with the untrained PP-TSMv2 (`%s`; speed only, its labels mean nothing); one gRPC subscriber takes every WindowResult. ", liveWindow, liveStride, r.Model)
	p("Per N: a fresh actiond; warm-up until every stream has delivered %d windows; then **%s measured**, longer where the model is overloaded: the period goes on until every stream has %d results in it, at most %s (**period** in the tables; the profiled N keeps %s). ",
		liveWarmWindows, c.livePeriod, liveMinResults, max(c.livePeriod, liveMaxPeriod), c.livePeriod)
	p("**latency** = time the subscriber receives a WindowResult − its `completed_time` (when the packets of the frame that completed the window reached actiond): decode, waiting for a batch, inference and delivery, on one clock. ")
	p("**CPU** = utime+stime from /proc over the period, in cores (2 = the whole machine); **bench** is this benchmark's process: the simulator's packetisation and the subscriber; **machine** counts every process, the other jobs on this shared machine included. ")
	p("**RSS** = actiond's VmRSS over the measured period, the median of one sample a second (the end value alone moves by tens of MB with the collector's phase); **RSS/stream** = (RSS − %.0f MiB, VmRSS of actiond with the model loaded and no streams) / N, so it includes ONNX Runtime's working memory for the batches; **marginal** = the RSS added per camera since the previous N, the per-stream cost without that fixed part. ", mib(r.BaseRSS))
	p("**drops** = frames dropped before decoding + windows dropped before inference + RTP packets lost + decode errors, over the period, all streams (`StreamStatus` counters); **events** = WindowResults received / N × period ÷ stride. ")
	p("**model busy** = time spent in model runs / period (`actiond_inference_seconds`); **run** = the mean time of one model run in the period; **batch** = mean windows per run. ")
	p("**skipped** = windows not run because the model was busy (latest wins: `skipped_windows`); **fairness** = the shortest served stride of a stream ÷ the longest, where a stream's served stride is the time from the completion of its last window served before the period to that of its last in the period, over its results in the period (taken as if one more came at the period's end when it has waited longer than that since its last): 1 when every stream is served equally often; not quantised by counts as the fewest results ÷ the most would be (round robin gives counts that differ by one: 3 and 4 at the same served stride would read 0.75); **results/stream** = the fewest and the most results of a stream in the period; **eff. stride** = the mean of the streams' `effective_stride` at the end (the stride actually served; %s when the model keeps up); **reused** = results of still windows that reused the last one (`skip_static`). ", liveStride)
	p("**full stride** = p99 ≤ 1 s, nothing dropped or skipped, ≥ 90%% of the results.\n\n")

	main := &liveSeries{Name: "this actiond", BaseRSS: r.BaseRSS, Points: r.Points, Stopped: r.Stopped}
	for _, se := range append([]*liveSeries{main}, r.Others...) {
		if len(r.Others) > 0 {
			p("### %s\n\n", se.Name)
		}
		liveTable(p, se)
	}
	if len(r.Others) > 0 {
		p("%s\n\n", liveCompare(main, r.Others))
	}
	if r.Plot != "" {
		rel, err := filepath.Rel(filepath.Dir(c.out), r.Plot)
		if err != nil {
			rel = r.Plot
		}
		p("![Latency and CPU against the number of cameras](%s)\n\n", filepath.ToSlash(rel))
	}
	p("%s\n\n", liveReading(r))
	p("%s\n\n", liveTried)
	p("%s\n\n", liveMemory)
	liveProfileMarkdown(p, c, r)
	p("The server's configuration for N = %d (every other key at its default, so this is what `actiond serve` does out of the box):\n\n```yaml\n%s```\n\n", r.Points[len(r.Points)-1].N, r.Config)
	if r.LoadedLine != "" {
		p("actiond's own account of its setup:\n\n```\n%s\n```\n\n", r.LoadedLine)
	}
	peer := ""
	if c.peer != "" {
		peer = " -peer-actiond " + c.peer
	}
	p("Reproduce (just this section; `-out` gets only it):\n\n```\ngo run ./cmd/actionbench -live-only -live %s -live-period %s -live-profile %d -live-static-half=%t%s -out live.md\n%s   # what it runs per N\n```\n\n",
		c.live, c.livePeriod, c.liveProfile, c.liveStatic, peer, r.Command)
}

// liveTable writes one series' table.
func liveTable(p func(string, ...any), se *liveSeries) {
	p("| N | period s | actiond CPU (cores) | bench CPU | machine CPU | RSS MiB | RSS/stream MiB | marginal MiB | drops | events | reused | skipped | fairness | results/stream | eff. stride s | p50 s | p99 s | max s | model busy | run ms | batch | full stride |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var prev *livePoint
	for i := range se.Points {
		pt := se.Points[i]
		marg := "–"
		if prev != nil {
			marg = fmt.Sprintf("%.1f", mib(pt.RSS-prev.RSS)/float64(pt.N-prev.N))
		}
		mark := ""
		if pt.Profiled {
			mark = " (profiled)"
		}
		stride := "–"
		if pt.EffStride > 0 {
			stride = secs(pt.EffStride)
		}
		p("| %d%s | %.0f | %.2f | %.2f | %.2f | %.0f | %.1f | %s | %s | %d / %d | %d | %d | %.2f | %d–%d | %s | %s | %s | %s | %.0f%% | %.0f | %.2f | %s |\n",
			pt.N, mark, pt.Period.Seconds(), pt.CPU, pt.BenchCPU, pt.MachineCPU, mib(pt.RSS), pt.perStream(se.BaseRSS), marg, dropsText(pt), pt.Events, pt.Expected,
			pt.Reused, pt.Skipped, pt.Fairness, pt.Fewest, pt.Most, stride, secs(pt.P50), secs(pt.P99), secs(pt.Max), 100*pt.InferBusy, ms(pt.RunMean), pt.MeanBatch, goal(pt.meetsGoal()))
		prev = &se.Points[i]
	}
	p("\n")
	for _, pt := range se.Points {
		if pt.Err != "" {
			p("N = %d: %s.\n\n", pt.N, pt.Err)
		}
	}
	if se.Stopped != "" {
		p("%s\n\n", se.Stopped)
	}
}

// fullStride is the largest N of a series served at the full stride.
func fullStride(se *liveSeries) int {
	best := 0
	for _, pt := range se.Points {
		if pt.meetsGoal() {
			best = max(best, pt.N)
		}
	}
	return best
}

// liveCompare states the full-stride capacity of each series against the
// peer's (the goals: ≥ 1.25× the peer, ≥ 2× with half the cameras
// still) and the goals every N up to 16 should meet.
func liveCompare(main *liveSeries, others []*liveSeries) string {
	var b strings.Builder
	var peer *liveSeries
	for _, se := range others {
		if strings.HasPrefix(se.Name, "peer ") {
			peer = se
		}
	}
	fmt.Fprintf(&b, "**Full-stride capacity** (p99 ≤ 1 s, nothing skipped or dropped): %s %d camera(s)", main.Name, fullStride(main))
	for _, se := range others {
		fmt.Fprintf(&b, "; %s %d", se.Name, fullStride(se))
	}
	b.WriteString(". ")
	if peer != nil && fullStride(peer) > 0 {
		base := float64(fullStride(peer))
		fmt.Fprintf(&b, "Against the peer: %.2f× (goal ≥ 1.25×: %s)", float64(fullStride(main))/base, goal(float64(fullStride(main)) >= 1.25*base))
		for _, se := range others {
			if se != peer && strings.Contains(se.Name, "still") {
				fmt.Fprintf(&b, "; with half the cameras still %.2f× (goal ≥ 2×: %s)", float64(fullStride(se))/base, goal(float64(fullStride(se)) >= 2*base))
			}
		}
		b.WriteString(". ")
		b.WriteString(peerReading(main, peer, others))
	}
	// Every N up to 16: p99 ≤ 2 s, fairness ≥ 0.8, no frame dropped
	// before decoding, marginal RSS ≤ 40 MiB.
	var p99, fair, frames, rss []int
	var prev *livePoint
	for i := range main.Points {
		pt := main.Points[i]
		if pt.N > 16 {
			break
		}
		if pt.P99 > 2*time.Second {
			p99 = append(p99, pt.N)
		}
		if pt.Fairness < 0.8 {
			fair = append(fair, pt.N)
		}
		if pt.DroppedFrames > 0 {
			frames = append(frames, pt.N)
		}
		if prev != nil && mib(pt.RSS-prev.RSS)/float64(pt.N-prev.N) > 40 {
			rss = append(rss, pt.N)
		}
		prev = &main.Points[i]
	}
	for _, g := range []struct {
		what string
		bad  []int
	}{{"p99 ≤ 2 s", p99}, {"fairness ≥ 0.8", fair}, {"no frame dropped before decoding", frames}, {"marginal RSS ≤ 40 MiB per stream", rss}} {
		if len(g.bad) == 0 {
			fmt.Fprintf(&b, "%s at every N up to 16: met. ", g.what)
		} else {
			fmt.Fprintf(&b, "%s at every N up to 16: missed at N = %s. ", g.what, intsList(g.bad))
		}
	}
	return b.String()
}

func rateText(c config, r *liveResult) string {
	if c.liveBitrate <= 0 {
		return fmt.Sprintf("constant quality, %.2f Mbit/s", r.Bitrate/1e6)
	}
	return fmt.Sprintf("encoded at a target of %.1f Mbit/s: %.2f Mbit/s measured on the clip", float64(c.liveBitrate)/1e6, r.Bitrate/1e6)
}

func dropsText(pt livePoint) string {
	if pt.drops() == 0 && pt.SubDropped == 0 {
		return "0"
	}
	var parts []string
	for _, x := range []struct {
		n    uint64
		what string
	}{{pt.DroppedFrames, "frames"}, {pt.DroppedWindows, "windows"}, {pt.PacketsLost, "packets"}, {pt.DecodeErrors, "decode errors"}, {pt.SubDropped, "events (subscriber)"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, ", ")
}

// liveReading states, from the figures, how many cameras meet the goal,
// whether the cost grows linearly, and what runs out first.
func liveReading(r *liveResult) string {
	var b strings.Builder
	best := 0
	for _, pt := range r.Points {
		if pt.meetsGoal() {
			best = pt.N
		}
	}
	if best == 0 {
		fmt.Fprintf(&b, "**No measured N is served at the full stride** (p99 ≤ 1 s, no ingest drops, nothing skipped). ")
	} else {
		fmt.Fprintf(&b, "**Capacity on this machine: %d camera(s)** served at the full stride (p99 ≤ 1 s, no ingest drops, nothing skipped); target ≥ 8: %s, stretch 12: %s. ", best, goal(best >= 8), goal(best >= 12))
	}
	var perStream []float64
	for _, pt := range r.Points {
		perStream = append(perStream, pt.perStream(r.BaseRSS))
	}
	if len(r.Points) > 0 {
		last := r.Points[len(r.Points)-1]
		fmt.Fprintf(&b, "RSS per stream at N = %d: %.1f MiB over the base (goal ≤ 40 MiB: %s). ", last.N, perStream[len(perStream)-1], goal(perStream[len(perStream)-1] <= 40))
	}
	if len(r.Points) >= 2 {
		a, z := r.Points[0], r.Points[len(r.Points)-1]
		slope := (z.CPU - a.CPU) / float64(z.N-a.N)
		fmt.Fprintf(&b, "actiond's CPU grows %.3f cores per camera from N = %d to %d (%.2f → %.2f cores); linear cost would put N cameras at %.2f + %.3f·(N − %d). ",
			slope, a.N, z.N, a.CPU, z.CPU, a.CPU, slope, a.N)
		if slope > 0 {
			fmt.Fprintf(&b, "At that rate the machine's 2 cores are full at about N = %.0f. ", float64(a.N)+(2-a.CPU)/slope)
		}
	}
	// What runs out first: the first point past the goal, else the last.
	var lim *livePoint
	for i := range r.Points {
		if !r.Points[i].meetsGoal() {
			lim = &r.Points[i]
			break
		}
	}
	if lim == nil && len(r.Points) > 0 {
		lim = &r.Points[len(r.Points)-1]
	}
	if over := latencyBound(r.Points); over != "" {
		b.WriteString(over)
	}
	if lim != nil {
		fmt.Fprintf(&b, "At N = %d the model is busy %.0f%% of the time (mean batch %.2f) and the machine %.2f of 2 cores (actiond %.2f, the simulator %.2f, other jobs %.2f): ",
			lim.N, 100*lim.InferBusy, lim.MeanBatch, lim.MachineCPU, lim.CPU, lim.BenchCPU, max(0, lim.MachineCPU-lim.CPU-lim.BenchCPU))
		switch {
		case lim.InferBusy >= 0.85:
			b.WriteString("inference is the limit — once the model is busy all the time, each stream's newer window replaces its waiting one (skipped) and its effective stride stretches; a stream costs its share of one PP-TSMv2 clip every stride, whatever else the server does.")
		case lim.MachineCPU >= 1.85:
			if other := lim.MachineCPU - lim.CPU - lim.BenchCPU; other > lim.CPU {
				b.WriteString("the CPU is the limit, and most of it went to other jobs on this shared machine: actiond got less than their share, so these figures say more about the neighbours than about actiond; rerun on a quiet machine.")
			} else {
				b.WriteString("the CPU is the limit — decoding N 720p streams, inference and the machine's other jobs share two cores, so each part waits for the others.")
			}
		default:
			b.WriteString("neither the model nor the cores are saturated on average; latency comes from bursts (windows closing together) and from the machine's other jobs.")
		}
	}
	return b.String()
}

// latencyBound says what latest wins bounds latency to at the largest
// overloaded N (one with skipped windows), against its p99; "" when no N
// was overloaded.
func latencyBound(points []livePoint) string {
	var over *livePoint
	for i := range points {
		if points[i].Skipped > 0 && points[i].RunMean > 0 {
			over = &points[i]
		}
	}
	if over == nil {
		return ""
	}
	bound := liveStride + over.RunMean
	s := fmt.Sprintf("What bounds latency once the model is overloaded: a stream's waiting window is replaced by each newer one (latest wins), so the window a run takes is at most one stride old and its result comes one run later: latency ≤ stride + one run + decoding and delivery, however many streams wait (a longer round shows in the effective stride instead). At N = %d: stride %s s + mean run %s s = %s s, p99 %s s",
		over.N, secs(liveStride), secs(over.RunMean), secs(bound), secs(over.P99))
	switch {
	case over.P99 <= bound:
		s += ", within it. "
	case over.DroppedFrames > 0:
		s += fmt.Sprintf(": beyond it are decoding that fell behind on busy cores (%d frames dropped before decoding) and runs slower than their mean. ", over.DroppedFrames)
	default:
		s += ": beyond it are decoding and delivery on busy cores and runs slower than their mean. "
	}
	return s
}

func liveProfileMarkdown(p func(string, ...any), c config, r *liveResult) {
	if r.ProfileN <= 0 {
		return
	}
	p("### Where actiond's CPU goes (N = %d)\n\n", r.ProfileN)
	if len(r.CPUTop) == 0 {
		if r.ProfileNote != "" {
			p("%s.\n\n", r.ProfileNote)
		} else {
			p("Not profiled: the run stopped before N = %d.\n\n", r.ProfileN)
		}
		return
	}
	p("Go's CPU profile (`--pprof-listen`, `/debug/pprof/profile?seconds=%d` over the measured period) and the allocations made during it (`/debug/pprof/allocs` at its end minus at its start). ", int(c.livePeriod.Seconds()))
	p("Time in C shows as the library it ran in, without function names: `[libavcodec…]` is H.264 decoding (FFmpeg's own threads included), `[libonnxruntime…]` inference, `[libswscale…]` colour conversion. ")
	if r.ProfileNote != "" {
		p("%s. ", r.ProfileNote)
	}
	p("Profiles are in `%s` (`go tool pprof -top %s %s`).\n\n", c.work, c.actiond, filepath.Join(c.work, fmt.Sprintf("live-%d.cpu.pprof", r.ProfileN)))
	if sh := cpuShares(r.CPUTop); sh != "" {
		p("Of the sampled CPU: %s.\n\n", sh)
	}
	p("```\n%s\n```\n\nAllocations during the period (`-sample_index=alloc_space -base`):\n\n```\n%s\n```\n\n", strings.Join(pprofBody(r.CPUTop), "\n"), strings.Join(pprofBody(r.AllocTop), "\n"))
}

// pprofBody drops pprof's file and build lines, keeping totals and rows.
func pprofBody(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		out = append(out, l)
	}
	return out
}

// cpuShares reads pprof -top rows into the pipeline's parts: decoding
// (libavcodec, and the decoder's cgo calls), inference (libonnxruntime,
// and engine.Session.Run's cgo call on the scheduler's thread) and
// preprocessing (Preprocessor.Frame: resize and normalise in Go).
func cpuShares(top []string) string {
	var total float64
	flat := map[string]float64{}
	cum := map[string]float64{}
	for _, l := range top {
		if _, rest, ok := strings.Cut(l, "Total samples = "); ok {
			v, _, _ := strings.Cut(rest, " ")
			if d, err := time.ParseDuration(v); err == nil {
				total = d.Seconds()
			}
			continue
		}
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		fl, err1 := time.ParseDuration(f[0])
		cu, err2 := time.ParseDuration(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		name := strings.Join(f[5:], " ")
		flat[name], cum[name] = fl.Seconds(), cu.Seconds()
	}
	if total == 0 {
		return ""
	}
	var dec, inf, pre float64
	for name, v := range flat {
		switch {
		case strings.HasPrefix(name, "[libavcodec"):
			dec += v
		case strings.HasPrefix(name, "[libonnxruntime"):
			inf += v
		}
	}
	for name, v := range cum {
		switch {
		case strings.HasSuffix(name, "ingest.(*decoder).decode"):
			dec += v
		case strings.HasSuffix(name, "engine.(*Session).RunShape"):
			inf += v
		case strings.HasSuffix(name, "ingest.Preprocessor.Frame"):
			pre += v
		}
	}
	return fmt.Sprintf("H.264 decoding about %.0f%%, inference about %.0f%%, preprocessing about %.0f%% (from the rows above; a part whose rows are not among them counts as 0)",
		100*dec/total, 100*inf/total, 100*pre/total)
}

// liveTried says what was done about capacity so far; its figures come from
// the runs named in it, not from this one.
const liveTried = "What was tried (2026-12-03, this machine, `-live-only` runs): " +
	"(1) the feature cache (on by default): a window costs 2 per-frame fronts and one back, 1.43× the windows per core at 1 thread (section above); " +
	"(2) `inference.max_batch` 1: batching buys no throughput here (Batching section) and every window in a batch waits for the whole batch; " +
	"(3) ONNX Runtime's intra-op threads no longer spin between runs in the server (`engine.Options.NoSpin`): at N = 4 actiond went from 1.83 to 1.00 cores and p99 from 0.91 s to 0.35 s, because spinning threads took the cores the decoders needed; " +
	"(4) `ACTIOND_INFERENCE_THREADS=1`: worse, the model is busy 99% of the time already at N = 6 (p99 2.8 s). " +
	"What limits it: every camera costs its share of one PP-TSMv2 back run per stride (about 120 ms on both cores, 0.8 windows/s per camera) plus decoding 25 frames/s of 720p H.264 (about 0.1 core): about 0.25 cores per camera, so 2 cores hold 6–7 cameras at best and the goal of 8 is missed by 1–2 cameras at the default stride. " +
	"A stride of 2.5 s halves the model's share; int8 weights (ONNX Runtime's quantised convolutions) or a faster CPU are the next steps. " +
	"RSS: each finished window was a fresh 12.3 MiB feature tensor (`window.emit`, 85% of allocated bytes in that profile), and once the model fell behind every stream's queue held such windows; since then window tensors come from a pool the scheduler gives them back to, and a stream has at most one window waiting (latest wins)."

// liveMemory says where a stream's memory goes; its figures come from the
// runs named in it (one actiond per N, RSS and Go's heap profile 30 s after
// the streams started), not from this one.
const liveMemory = "**Where a stream's memory goes** (2026-12-04, this machine, 720p25 camera, window 10 s, stride 1.25 s, feature cache on; " +
	"one actiond per N, RSS 30 s after its streams started, Go's heap profile from `--pprof-listen` `/debug/pprof/heap`, /proc/PID/smaps for the C side). " +
	"Go heap, live, per stream: the window's ring of features, 256×28×28 float32 (784 KiB) per slot: **15.3 MiB** for 20 slots (16 and two strides; see below); " +
	"the decoded frame as RGB24 (1280×720×3) and the resize scratch, **3.1 MiB**; " +
	"snapshots of the centre frames of the windows to come (`events.snapshot_width` 640: up to 6 × 640×360×3), **2.6–3.4 MiB**; " +
	"preprocessed pixels and the front's input, **0.7 MiB**: about **22 MiB**. Fixed, whatever N: the scheduler's batch buffer and ONNX Runtime's input tensor, 12.25 MiB each. " +
	"Go heap, headroom: the heap grows by `GOGC` percent of what is live before a collection. " +
	"C side: the H.264 decoder and glibc's malloc arenas, 5–10 MiB per stream, and the part that moves most from run to run (±40 MB between two processes at the same N). " +
	"Before (the binary before this change, same runs): each window was copied out of the ring into a 12.25 MiB tensor from a pool, and the pool kept as many as were ever out at once (9 for 8 streams at N = 8, because the model stalls now and then with every stream waiting; N + 1 under overload): 24.5 MiB of window buffers per stream; `GOGC=100` doubled the heap (1008 MB of Go heap at N = 12 for about 520 MB live); " +
	"libavcodec's automatic decoder threads (cores + 1, up to 16; 3 frame threads per stream here, each decoding a frame of its own; 59 threads in actiond at N = 12); glibc's default arenas (up to 8 per core); and a full-height 1.3 MB intermediate per snapshot, garbage. " +
	"RSS before → after: N = 4: 682 → 442–502 MiB; N = 8: 931 → 570–618; N = 12: 1463 → 722–748; N = 16: 883 after. " +
	"Changes: " +
	"(1) no copy per window: a pooled window is a `Lease` on the stream's ring, which keeps two strides more than a window, so a waiting window's slots are still there when the next window replaces it (latest wins); the scheduler copies it straight from the ring into the batch, and the stream copies it into a pool tensor only when it needs one of its slots first (`skip_static` streams' windows are copied when they arrive, to be compared). " +
	"The heap profiles at N = 8 and 12 show no tensor taken from the pool; the tensors run are the ones a copied window has (`TestWindowLeasesGiveTheSameTensors`). 24.5 → 15.3 MiB per stream; " +
	"(2) `actiond serve` sets `GOGC=25` (the heap is mostly pointer-free window buffers, cheap to mark; `GOGC` or `GOMEMLIMIT` in the environment take over): Go heap at N = 12 from 1008 MB to 328–389 MB; " +
	"(3) a live stream's decoder has one thread (`ingest.liveDecoderThreads`): 21–24 threads in actiond at N = 12 instead of 59; on a 16-core machine the automatic count would keep about 16 frames in flight per stream (about 22 MiB at 720p; not measured here); " +
	"(4) two malloc arenas (`MALLOC_ARENA_MAX=2` unless set; `engine.LimitMallocArenas`): the C heap's resident part (arenas and brk heap) at N = 4 from 234 MiB to 154 MiB in one run each; " +
	"(5) snapshots resized in bands of rows through the window's scratch, byte-identical (`TestWindowSnapshotMatchesResizeBilinear`), and the front's features written straight into the ring slot (`Session.RunInto`) instead of a 784 KiB copy per frame: less garbage, so fewer collections; " +
	"(6) the pool keeps only what was lent at once over the last 30–60 s and at most 2 per stream (`TestTensorPoolForgetsAnOldBurst`, `TestSchedulerPoolShrinksWithStreams`). " +
	"Per stream now: 32 MiB from N = 1 to 16 ((883 − 401) / 15) and Go's heap 25 MiB (`HeapAlloc` 63 → 461 MB); between neighbouring N the marginal still swings from 15 to 54 MiB in these runs, because the C side and the collector's phase move by tens of MB between two processes: so the marginal column can pass 40 MiB at one N from that alone; the slope over many N is a stream's cost."

// peerReading says, from the figures, what limits the full-stride
// capacity against the peer's: what a camera costs in both binaries at the
// largest N both serve, what the still cameras still cost, and how the two
// differ past capacity (where this actiond sheds load and the peer queues).
func peerReading(main, peer *liveSeries, others []*liveSeries) string {
	var b strings.Builder
	at := func(se *liveSeries, n int) *livePoint {
		for i := range se.Points {
			if se.Points[i].N == n {
				return &se.Points[i]
			}
		}
		return nil
	}
	both := min(fullStride(main), fullStride(peer))
	m, q := at(main, both), at(peer, both)
	if m != nil && q != nil && both > 0 {
		fmt.Fprintf(&b, "What limits the ratio: full stride needs each camera's decoding (every frame, 25 a second) and its model run every stride to fit in the cores, so capacity is the cores over what a camera costs. At N = %d, the largest both serve, a camera costs this actiond %.3f cores and the peer %.3f (the model busy %.0f%% and %.0f%%): ",
			both, m.CPU/float64(both), q.CPU/float64(both), 100*m.InferBusy, 100*q.InferBusy)
		switch r := m.CPU / q.CPU; {
		case r <= 0.8:
			fmt.Fprintf(&b, "this actiond's camera costs %.2f× the peer's, so it holds more cameras. ", r)
		case r < 0.95 || r > 1.05:
			fmt.Fprintf(&b, "this actiond's camera costs %.2f× the peer's, so both run out of cores at about the same N; what this issue changed (latest wins, fair share, pooled windows) does not make a camera cheaper, it decides what happens past capacity. ", r)
		default:
			b.WriteString("about the same, so both run out of cores at about the same N; what this issue changed (latest wins, fair share, pooled windows) does not make a camera cheaper, it decides what happens past capacity. ")
		}
	}
	var past *livePoint
	var pastPeer *livePoint
	for i := range main.Points {
		if p := at(peer, main.Points[i].N); p != nil && main.Points[i].N > both {
			past, pastPeer = &main.Points[i], p
		}
	}
	if past != nil {
		fmt.Fprintf(&b, "Past it, at N = %d: this actiond p99 %s s, RSS %.0f MiB, %d windows skipped (latest wins), effective stride %s s; the peer p99 %s s, RSS %.0f MiB, %d windows dropped. ",
			past.N, secs(past.P99), mib(past.RSS), past.Skipped, secs(past.EffStride), secs(pastPeer.P99), mib(pastPeer.RSS), pastPeer.DroppedWindows)
	}
	for _, se := range others {
		if se == peer || !strings.Contains(se.Name, "still") {
			continue
		}
		n := fullStride(se)
		if p := at(se, n); p != nil && n > 0 {
			fmt.Fprintf(&b, "With half the cameras still, the still ones skip the model but are still decoded: at N = %d a camera costs %.3f cores (the model busy %.0f%%)", n, p.CPU/float64(n), 100*p.InferBusy)
			if n == se.Points[len(se.Points)-1].N {
				b.WriteString(", and that is the largest N measured: the capacity is at least this. ")
			} else {
				b.WriteString(". ")
			}
		}
	}
	return b.String()
}
