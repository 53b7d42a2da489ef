package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models/motion"
	"github.com/actiond/actiond/modeltool"
)

func runModelBuild(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: model build needs a model name: motion", errUsage)
	}
	name := args[0]
	fs := flag.NewFlagSet("model build", flag.ContinueOnError)
	out := fs.String("out", "", "output ONNX file (required)")
	weights := fs.String("weights", "", "pptsmv2: the official .pdparams checkpoint")
	seed := fs.Int64("random-seed", -1, "pptsmv2: build seeded random weights instead (benchmarks and tests only: labels mean nothing)")
	noLTA := fs.Bool("no-lta", false, "pptsmv2 with --random-seed: leave out the temporal attention")
	int8 := fs.Bool("int8", false, "pptsmv2: quantise to int8 (QDQ: per-channel int8 weights, uint8 activations calibrated on clips)")
	calib := fs.String("calibration-clips", "", "pptsmv2 --int8: comma-separated video files to calibrate on, besides five synthetic scenes (default: the .mp4 and .avi files in ./testdata, if any)")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: model build %s needs --out FILE", errUsage, name)
	}
	switch name {
	case "motion":
		if err := motion.WriteFile(*out); err != nil {
			return err
		}
	case "pptsmv2":
		if (*weights == "") == (*seed < 0) {
			return fmt.Errorf("%w: model build pptsmv2 needs exactly one of --weights FILE.pdparams or --random-seed N", errUsage)
		}
		if *weights != "" && *noLTA {
			return fmt.Errorf("%w: --no-lta only applies to --random-seed builds (a checkpoint has LTA exactly when its weights are present)", errUsage)
		}
		opts := modeltool.BuildPPTSMv2Options{
			Weights: *weights, RandomSeed: *seed, NoLTA: *noLTA, Out: *out, Progress: os.Stderr,
		}
		if !*int8 {
			if *calib != "" {
				return fmt.Errorf("%w: --calibration-clips only applies to --int8 builds", errUsage)
			}
			if err := modeltool.BuildPPTSMv2(opts); err != nil {
				return err
			}
		} else {
			clips, err := calibrationClips(*calib)
			if err != nil {
				return err
			}
			opts.CalibrationClips = clips
			a, err := modeltool.BuildPPTSMv2Int8(opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "int8 against float32 of the same weights on the %d calibration clips: logits within %.3g (largest %.3g), "+
				"top 5 sharing at least %d of 5 labels; accuracy on Kinetics-400 is not measured\n",
				a.Clips, a.MaxLogitDiff, a.MaxAbsLogit, a.MinTop5Overlap)
		}
		if *weights == "" {
			fmt.Fprintf(os.Stderr, "%s\n", classify.UntrainedWarning)
		}
	default:
		return fmt.Errorf("%w: unknown model %q (known: motion, pptsmv2)", errUsage, name)
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	return nil
}

// calibrationClips returns the files of --calibration-clips, or by
// default the .mp4 and .avi files in ./testdata (none without it).
func calibrationClips(list string) ([]string, error) {
	if list != "" {
		files := strings.Split(list, ",")
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("--calibration-clips: %w", err)
			}
		}
		return files, nil
	}
	var files []string
	for _, pat := range []string{"testdata/*.mp4", "testdata/*.avi"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	return files, nil
}

func runModelFetch(args []string) error {
	if len(args) == 0 || args[0] != "pptsmv2" {
		return fmt.Errorf("%w: model fetch knows one model: pptsmv2", errUsage)
	}
	fs := flag.NewFlagSet("model fetch", flag.ContinueOnError)
	out := fs.String("out", "", "ONNX file to write (default "+classify.DefaultModelPath()+")")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	path, err := modeltool.FetchPPTSMv2(ctx, *out, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: actiond classify and serve use it by default\n", path)
	return nil
}

func runModelInfo(args []string) error {
	fs := flag.NewFlagSet("model info", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return fmt.Errorf("%w: model info needs exactly one model file", errUsage)
	}
	info, err := modeltool.InspectModel(files[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(info)
	}
	modeltool.WriteModelInfoText(os.Stdout, info)
	return nil
}

func runModelRun(args []string) error {
	fs := flag.NewFlagSet("model run", flag.ContinueOnError)
	model := fs.String("model", "", "ONNX model file (required)")
	in := fs.String("input", "", "input tensor, .npy float32 (required)")
	out := fs.String("output", "", "output tensor, .npy float32 (required)")
	threads := fs.Int("threads", 0, "inference threads (0 = all cores)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" || *in == "" || *out == "" {
		return fmt.Errorf("%w: model run needs --model, --input and --output", errUsage)
	}
	shape, data, err := engine.ReadNPYFile(*in)
	if err != nil {
		return err
	}
	sess, err := engine.Open(*model, engine.Options{Threads: *threads})
	if err != nil {
		return err
	}
	defer sess.Close()
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	res, resShape, err := sess.RunShape(data, dims)
	if err != nil {
		return err
	}
	outShape := make([]int, len(resShape))
	for i, d := range resShape {
		outShape[i] = int(d)
	}
	if err := engine.WriteNPYFile(*out, outShape, res); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s %v\n", *out, outShape)
	return nil
}

func runModelBench(args []string) error {
	fs := flag.NewFlagSet("model bench", flag.ContinueOnError)
	model := fs.String("model", "", "ONNX model file (required)")
	threads := fs.Int("threads", 0, "intra-op threads (0 = all cores)")
	batch := fs.Int("batch", 1, "clips per run")
	sessions := fs.Int("sessions", 1, "sessions running side by side, each with --threads threads (as inference.sessions)")
	iterations := fs.Int("iterations", 20, "timed runs after one warm-up run")
	noSpin := fs.Bool("no-spin", false, "intra-op threads sleep between their parts of a run instead of spinning, as in `actiond serve`")
	asJSON := fs.Bool("json", false, "print JSON")
	cache := fs.Bool("feature-cache", false, "time a live window with the feature cache (fronts on --new-frames frames, then the back) against the whole model")
	newFrames := fs.Int("new-frames", 2, "with --feature-cache: frames a window adds (2 at the default stride)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("%w: model bench needs --model FILE", errUsage)
	}
	if *cache {
		return benchFeatureCache(*model, *threads, *newFrames, *iterations, *asJSON)
	}
	b, err := modeltool.BenchModelSessions(*model, *sessions, *threads, *batch, *iterations, *noSpin)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(b)
	}
	if b.Sessions > 1 {
		fmt.Printf("%s: %d sessions of %d threads side by side, batch %d, %d runs each: p50 %.2f ms, p90 %.2f ms, min %.2f ms; %.2f clips/s together\n",
			b.Model, b.Sessions, b.Threads, b.Batch, b.Iterations, b.P50ms, b.P90ms, b.Minms, b.ClipsPerS)
		return nil
	}
	fmt.Printf("%s: %d threads, batch %d, %d runs: p50 %.2f ms, p90 %.2f ms, min %.2f ms, %.1f GFLOP/s\n",
		b.Model, b.Threads, b.Batch, b.Iterations, b.P50ms, b.P90ms, b.Minms, b.GFLOPS)
	return nil
}

func benchFeatureCache(model string, threads, newFrames, iterations int, asJSON bool) error {
	b, err := modeltool.BenchFeatureCache(model, threads, newFrames, iterations)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(b)
	}
	fmt.Printf("%s: %d threads, %d runs, a window with %d new frames: whole model p50 %.2f ms (%.2f windows/s per core); "+
		"feature cache p50 %.2f ms = %d × front %.2f ms + back %.2f ms (%.2f windows/s per core): %.2f× faster; "+
		"the halves' logits within %.2g of the whole model's (largest logit %.3g), top 5 %s\n",
		b.Model, b.Threads, b.Iterations, b.NewFrames, b.WholeP50ms, b.WholeWindowsPerCoreS,
		b.CachedP50ms, b.NewFrames, b.FrontP50ms, b.BackP50ms, b.CachedWindowsPerCoreS, b.Speedup,
		b.MaxLogitDiff, b.MaxAbsLogit, map[bool]string{true: "the same", false: "DIFFERENT"}[b.Top5Same])
	return nil
}
