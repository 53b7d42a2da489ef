package bench

import (
	"path/filepath"
	"strconv"

	"github.com/actiond/actiond/models/pptsmv2"
)

// cacheRun is what `actiond model bench --feature-cache --json` prints.
type cacheRun struct {
	Whole       float64 `json:"whole_p50_ms"`
	Front       float64 `json:"front_p50_ms"`
	Back        float64 `json:"back_p50_ms"`
	Cached      float64 `json:"cached_p50_ms"`
	WholePerCPU float64 `json:"whole_windows_per_core_s"`
	CachedPerCP float64 `json:"cached_windows_per_core_s"`
	Speedup     float64 `json:"speedup"`
	MaxDiff     float64 `json:"max_logit_diff"`
	MaxLogit    float64 `json:"max_abs_logit"`
	Top5Same    bool    `json:"top5_same"`
}

// cacheResult is the feature cache at one thread count: per-repeat p50s
// and the rates and speedup they give.
type cacheResult struct {
	Threads, Repeats, Iterations, NewFrames int
	Whole, Front, Back, Cached              stat // ms
	WholePerCore, CachedPerCore             stat // windows/s per core
	Speedup                                 stat // whole ÷ cached, per repeat
	// MaxDiff is the largest difference between a logit of the halves and
	// the whole model's over the repeats, MaxLogit the largest logit;
	// Top5Same whether every repeat ranked the same five labels first.
	MaxDiff, MaxLogit float64
	Top5Same          bool
	Command           string
}

// cacheNewFrames is what a window brings at the default stride (2 slots of
// a 16-slot window): the frames its predecessor did not have.
const cacheNewFrames = 2

// benchFeatureCache times a live window with and without the feature cache
// on the untrained PP-TSMv2 (whose build writes the halves beside it), a
// fresh process per repeat.
func benchFeatureCache(c config, model string, threads, repeats int) (cacheResult, error) {
	res := cacheResult{Threads: threads, Repeats: repeats, Iterations: c.iterations, NewFrames: cacheNewFrames, Top5Same: true}
	args := []string{"model", "bench", "--model", model, "--feature-cache", "--new-frames", strconv.Itoa(cacheNewFrames),
		"--threads", strconv.Itoa(threads), "--iterations", strconv.Itoa(c.iterations), "--json"}
	res.Command = c.actiond + " " + join(args)
	var whole, front, back, cached, wpc, cpc, speed []float64
	for i := range repeats {
		progress("feature cache, %s, %d thread(s): repeat %d/%d", filepath.Base(model), threads, i+1, repeats)
		var r cacheRun
		if err := runJSON(&r, nil, c.actiond, args...); err != nil {
			return res, err
		}
		whole, front, back, cached = append(whole, r.Whole), append(front, r.Front), append(back, r.Back), append(cached, r.Cached)
		wpc, cpc, speed = append(wpc, r.WholePerCPU), append(cpc, r.CachedPerCP), append(speed, r.Speedup)
		res.MaxDiff, res.MaxLogit, res.Top5Same = max(res.MaxDiff, r.MaxDiff), max(res.MaxLogit, r.MaxLogit), res.Top5Same && r.Top5Same
	}
	res.Whole, res.Front, res.Back, res.Cached = summarise(whole), summarise(front), summarise(back), summarise(cached)
	res.WholePerCore, res.CachedPerCore, res.Speedup = summarise(wpc), summarise(cpc), summarise(speed)
	progress("feature cache, %d thread(s): %.2f windows/s per core without, %.2f with (%.2f×)",
		threads, res.WholePerCore.Median, res.CachedPerCore.Median, res.Speedup.Median)
	return res, nil
}

// frontMACShare is the front's share of PP-TSMv2's MACs per clip at 224×224
// with LTA (the benchmark model): the stem and stages 1–2.
func frontMACShare() float64 {
	c := pptsmv2.Count(pptsmv2.DefaultInputSize, true)
	var front int64
	for _, s := range c.Stages {
		switch s.Name {
		case "stem", "stage1", "stage2":
			front += s.MACsPerClip
		}
	}
	return float64(front) / float64(c.MACsPerClip)
}

// featureCacheMarkdown writes the Feature cache section.
func featureCacheMarkdown(p func(string, ...any), model string, results []cacheResult) {
	p("## Feature cache: windows/s per core\n\n")
	if len(results) == 0 {
		p("Not measured in this run (`-feature-cache` was empty).\n\n")
		return
	}
	p("The untrained PP-TSMv2 (`%s`) and its halves, as `actiond model build` writes them: the **front** (stem, stages 1–2) runs per frame, the **back** (LTA, temporal shift, stages 3–4, head) per window (`inference.feature_cache`, README \"Feature cache\"). ", model)
	p("At the default stride (1.25 s of a 10 s window of 16 slots) each window brings %d new frames, so a window costs %d front runs of `[1,3,224,224]` (one per frame, as a stream runs them) plus one back run of `[1,16,256,28,28]`, against one whole-model run of `[1,16,3,224,224]` without the cache. ", cacheNewFrames, cacheNewFrames)
	p("Each repeat is a fresh process that alternates the two, one warm-up each, and reports p50s; each front and back run is timed on its own, a cached window being their sum; windows/s per core = 1000 / (p50 ms × threads). Figures are min / **median** / max over the repeats.\n\n")
	p("| threads | whole model ms | front ms per frame | back ms | cached window ms | windows/s per core, whole | windows/s per core, cached | speedup |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		p("| %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Threads, r.Whole, f2(r.Front), r.Back, r.Cached, f3(r.WholePerCore), f3(r.CachedPerCore), f2(r.Speedup))
	}
	r := results[0]
	same := "the same five labels first in every repeat"
	if !r.Top5Same {
		same = "**not** the same five labels first in every repeat"
	}
	p("\nThe halves give the whole model's answer: their logits differ from the whole model's by at most %.2g (largest logit %.3g), %s.\n", r.MaxDiff, r.MaxLogit, same)
	f := frontMACShare()
	ideal := 1 / (1 - f + f*cacheNewFrames/16)
	p("\nAt %d thread(s) the cache runs **%.2f×** the windows per core (repeats %.2f–%.2f). ",
		r.Threads, r.Speedup.Median, r.Speedup.Min, r.Speedup.Max)
	p("By MACs the front is %.1f%% of a clip (`pptsmv2.Count`), so keeping %d of the 16 fronts per window can give at most 1 / (1 − %.3f + %.3f × %d/16) = %.2f×; measured, 16 fronts take %.0f%% of a whole-model run (16 × front p50 ÷ whole p50, medians). ",
		100*f, 16-cacheNewFrames, f, f, cacheNewFrames, ideal, 100*16*r.Front.Median/r.Whole.Median)
	p("The bound is the back: it is the same work per window with or without the cache, so no stride can make a window cheaper than one back run. ")
	p("Memory per stream: the window keeps 16 × 256×28×28 float32 features (12.3 MiB) instead of 16 × 3×224×224 pixels (9.2 MiB).\n\nCommands:\n\n```\n")
	for _, r := range results {
		p("%s\n", r.Command)
	}
	p("```\n\n")
}
