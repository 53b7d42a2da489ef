package modeltool

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/models/pptsmv2"
	"github.com/actiond/actiond/progress"
)

// BuildPPTSMv2Options say where the weights of a PP-TSMv2 build come from.
type BuildPPTSMv2Options struct {
	// Weights is a .pdparams checkpoint in any of the official layouts.
	Weights string
	// RandomSeed, used when Weights is empty, builds seeded random weights:
	// same shape and cost, meaningless labels (benchmarks and tests only).
	RandomSeed int64
	// NoLTA drops the temporal attention from a random build. A checkpoint
	// decides for itself: LTA is on exactly when its weights are present.
	NoLTA bool
	// Int8 writes the model int8 in QDQ form (BuildPPTSMv2Int8 only).
	Int8 bool
	// CalibrationClips are the video files an int8 build calibrates its
	// activations on, besides five synthetic scenes.
	CalibrationClips []string
	// Out is the ONNX file to write.
	Out string
	// Progress receives progress lines (a terminal; nil for none).
	Progress io.Writer
}

// BuildPPTSMv2 converts a checkpoint (or seeded random weights) into a
// self-describing PP-TSMv2 ONNX file.
func BuildPPTSMv2(opts BuildPPTSMv2Options) error {
	_, err := buildPPTSMv2(opts)
	return err
}

// BuildPPTSMv2Int8 is BuildPPTSMv2 with opts.Int8 set: the model and its
// halves int8 in QDQ form (per-channel int8 weights, uint8 activations
// calibrated on opts.CalibrationClips and five synthetic scenes). It
// returns how the int8 model's logits agree with the float model's of the
// same weights on the calibration clips.
func BuildPPTSMv2Int8(opts BuildPPTSMv2Options) (Int8Agreement, error) {
	opts.Int8 = true
	return buildPPTSMv2(opts)
}

func buildPPTSMv2(opts BuildPPTSMv2Options) (Int8Agreement, error) {
	prog := progress.NewProgress(progressWriter(opts.Progress), 0)
	defer prog.Done()
	var (
		w   *pptsmv2.Weights
		err error
	)
	if opts.Weights != "" {
		prog.Step(0, "read "+filepath.Base(opts.Weights))
		if w, err = pptsmv2.LoadWeightsFile(opts.Weights); err != nil {
			return Int8Agreement{}, err
		}
	} else {
		w = pptsmv2.RandomWeights(opts.RandomSeed, !opts.NoLTA)
	}
	bo := pptsmv2.BuildOptions{
		Untrained: opts.Weights == "",
		Progress: func(done, total int, what string) {
			prog.SetTotal(total)
			prog.Step(done, what)
		},
	}
	if !opts.Int8 {
		return Int8Agreement{}, pptsmv2.WriteFile(w, bo, opts.Out)
	}
	prog.Step(0, "calibrate int8 on the clips")
	clips, err := Int8CalibrationClips(opts.CalibrationClips, pptsmv2.DefaultInputSize)
	if err != nil {
		return Int8Agreement{}, err
	}
	return writePPTSMv2Int8(w, bo, opts.Out, clips, 0)
}

func progressWriter(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// FetchPPTSMv2 downloads the official checkpoint (or the one at
// ACTIOND_PPTSMV2_URL) into DefaultWeightsDir and converts it to out
// (DefaultModelPath when empty). It fails fast where there is no internet.
func FetchPPTSMv2(ctx context.Context, out string, progressTo io.Writer) (string, error) {
	url := os.Getenv(WeightsURLEnv)
	if url == "" {
		url = PPTSMv2WeightsURL
	}
	if out == "" {
		out = classify.DefaultModelPath()
	}
	weights := filepath.Join(DefaultWeightsDir(), filepath.Base(url))
	prog := progress.NewProgress(progressWriter(progressTo), 0)
	err := Download(ctx, url, weights, 15*time.Second, func(done, total int64) {
		what := fmt.Sprintf("download %s: %.1f MB", filepath.Base(url), float64(done)/1e6)
		if total > 0 {
			what = fmt.Sprintf("download %s: %.1f of %.1f MB", filepath.Base(url), float64(done)/1e6, float64(total)/1e6)
		}
		prog.Step(0, what)
	})
	prog.Done()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	if err := BuildPPTSMv2(BuildPPTSMv2Options{Weights: weights, Out: out, Progress: progressTo}); err != nil {
		return "", fmt.Errorf("convert %s: %w", weights, err)
	}
	return out, nil
}
