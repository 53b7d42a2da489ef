package modeltool

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/pptsmv2"
)

// writePPTSMv2Int8 writes the PP-TSMv2 of w and its halves, int8 in QDQ
// form, to out (halves beside it, as pptsmv2.WriteFile names them), the
// activations calibrated on clips (model input tensors [16,3,S,S]). It
// returns how the int8 model agrees with the float one on the clips.
func writePPTSMv2Int8(w *pptsmv2.Weights, opts pptsmv2.BuildOptions, out string, clips [][]float32, threads int) (Int8Agreement, error) {
	ranges, logits, err := calibratePPTSMv2(w, opts, clips, threads)
	if err != nil {
		return Int8Agreement{}, err
	}
	if err := pptsmv2.WriteFileQuantized(w, opts, out, ranges); err != nil {
		return Int8Agreement{}, err
	}
	sess, err := engine.Open(out, engine.Options{Threads: threads})
	if err != nil {
		return Int8Agreement{}, err
	}
	defer sess.Close()
	agree := Int8Agreement{Clips: len(clips), MinTop5Overlap: 5}
	for i, clip := range clips {
		q, err := sess.Run(clip, 1)
		if err != nil {
			return agree, fmt.Errorf("int8 model on clip %d: %w", i, err)
		}
		a := compareInt8(logits[i], q)
		agree.MaxLogitDiff = max(agree.MaxLogitDiff, a.MaxLogitDiff)
		agree.MaxAbsLogit = max(agree.MaxAbsLogit, a.MaxAbsLogit)
		agree.MinTop5Overlap = min(agree.MinTop5Overlap, a.MinTop5Overlap)
	}
	return agree, nil
}

// Int8Agreement is how an int8 model's logits compare with the float
// model's of the same weights over some clips.
type Int8Agreement struct {
	Clips int `json:"clips"`
	// MaxLogitDiff is the largest difference of a logit; MaxAbsLogit the
	// largest float logit, its scale.
	MaxLogitDiff float64 `json:"max_logit_diff"`
	MaxAbsLogit  float64 `json:"max_abs_logit"`
	// MinTop5Overlap is, over the clips, the fewest labels the two top
	// fives share.
	MinTop5Overlap int `json:"min_top5_overlap"`
}

// compareInt8 compares the logits of one clip.
func compareInt8(fp, q []float32) Int8Agreement {
	a := Int8Agreement{Clips: 1}
	for i := range fp {
		a.MaxLogitDiff = max(a.MaxLogitDiff, math.Abs(float64(fp[i]-q[i])))
		a.MaxAbsLogit = max(a.MaxAbsLogit, math.Abs(float64(fp[i])))
	}
	top := func(v []float32) []int {
		var idx []int
		for _, s := range engine.TopK(v, 5) {
			idx = append(idx, s.Index)
		}
		return idx
	}
	tq := top(q)
	for _, i := range top(fp) {
		if slices.Contains(tq, i) {
			a.MinTop5Overlap++
		}
	}
	return a
}

// calibratePPTSMv2 runs the float model over clips and returns, for each
// activation that int8 quantises, the range of its values, and the float
// model's logits of each clip.
func calibratePPTSMv2(w *pptsmv2.Weights, opts pptsmv2.BuildOptions, clips [][]float32, threads int) (map[string]pptsmv2.Range, [][]float32, error) {
	if len(clips) == 0 {
		return nil, nil, fmt.Errorf("calibrate pptsmv2: no clips")
	}
	m, err := pptsmv2.Build(w, opts)
	if err != nil {
		return nil, nil, err
	}
	cm, names := pptsmv2.CalibrationModel(m)
	dir, err := os.MkdirTemp("", "actiond-calibrate-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "calibrate.onnx")
	if err := cm.WriteFile(path); err != nil {
		return nil, nil, err
	}
	sess, err := engine.Open(path, engine.Options{Threads: threads})
	if err != nil {
		return nil, nil, err
	}
	defer sess.Close()
	ranges := make(map[string]pptsmv2.Range, len(names))
	var logits [][]float32
	for i, clip := range clips {
		mm, err := sess.Run(clip, 1)
		if err != nil {
			return nil, nil, fmt.Errorf("calibrate pptsmv2 on clip %d: %w", i, err)
		}
		for k, name := range names {
			r, ok := ranges[name]
			if !ok {
				r = pptsmv2.Range{Min: mm[2*k], Max: mm[2*k+1]}
			}
			ranges[name] = pptsmv2.Range{Min: min(r.Min, mm[2*k]), Max: max(r.Max, mm[2*k+1])}
		}
		logits = append(logits, mm[2*len(names):])
	}
	return ranges, logits, nil
}

// Int8CalibrationClips returns the model input, for a PP-TSMv2 of input
// size size, of the clip files (the reference's sampling and
// preprocessing) and of five synthetic scenes (a still one and one per
// direction): what int8 builds calibrate their activations on.
func Int8CalibrationClips(files []string, size int) ([][]float32, error) {
	man := models.Manifest{Segments: pptsmv2.Segments, InputSize: size, ShortSide: (16*size + 7) / 14,
		Mean: models.ImageNetMean, Std: models.ImageNetStd}
	pre := ingest.NewPreprocessor(man)
	var clips [][]float32
	for _, f := range files {
		c, err := ingest.LoadClip(f, pre, man.Segments)
		if err != nil {
			return nil, fmt.Errorf("calibration clip: %w", err)
		}
		clips = append(clips, c.Tensor)
	}
	for i, d := range []camsim.Direction{camsim.Left, camsim.Right, camsim.Up, camsim.Down, camsim.Still} {
		s := camsim.Scene{Width: 320, Height: 240, FPS: 8, Duration: 2 * time.Second, Direction: d, Seed: int64(i + 1)}
		clip := make([]float32, man.Segments*pre.FrameSize())
		for f := range man.Segments {
			if err := pre.Frame(s.Frame(f), clip[f*pre.FrameSize():(f+1)*pre.FrameSize()]); err != nil {
				return nil, err
			}
		}
		clips = append(clips, clip)
	}
	return clips, nil
}
