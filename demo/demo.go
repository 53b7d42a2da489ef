package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/ingest/camsim"
	"github.com/actiond/actiond/models/motion"
	"github.com/actiond/actiond/progress"
)

// DemoOptions configure RunDemo.
type DemoOptions struct {
	// Dir receives the motion model and the synthetic scenes. It defaults
	// to a temporary directory that is removed afterwards.
	Dir string
	// Clips are extra video files to classify (the shipped demo clips).
	Clips []string
	// Threads for inference; 0 means all cores.
	Threads int
	// Out receives the results, Err the progress display.
	Out, Err io.Writer
}

// DemoDirections are the synthetic scenes the demo makes, one per label of
// the motion model.
var DemoDirections = []camsim.Direction{camsim.Left, camsim.Right, camsim.Up, camsim.Down, camsim.Still}

// RunDemo is the first-run job on the embedded default: it builds the motion
// model, renders one synthetic scene per direction, classifies them and the
// given clips, and prints the labels. It fails if a scene gets a wrong label.
func RunDemo(opts DemoOptions) error {
	if opts.Dir == "" {
		dir, err := os.MkdirTemp("", "actiond-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts.Dir = dir
	}
	modelPath := filepath.Join(opts.Dir, "motion.onnx")
	if err := motion.WriteFile(modelPath); err != nil {
		return fmt.Errorf("build motion model: %w", err)
	}
	c, err := classify.OpenClassifier(modelPath, opts.Threads)
	if err != nil {
		return err
	}
	defer c.Close()

	type job struct {
		path, direction, expect string
	}
	var jobs []job
	prog := progress.NewProgress(opts.Err, len(DemoDirections)+len(opts.Clips))
	for i, d := range DemoDirections {
		prog.Step(i+1, "render scene "+string(d))
		s := camsim.Scene{Width: 320, Height: 240, FPS: 25, Duration: 4 * time.Second, Direction: d, Seed: int64(i + 1)}
		p := filepath.Join(opts.Dir, "scene_"+string(d)+".mp4")
		if err := s.WriteFile(p); err != nil {
			prog.Done()
			return fmt.Errorf("render scene %s: %w", d, err)
		}
		jobs = append(jobs, job{p, string(d), motion.LabelFor(string(d))})
	}
	for _, p := range opts.Clips {
		jobs = append(jobs, job{path: p})
	}
	prog.Done()

	fmt.Fprintf(opts.Out, "actiond demo: model %q: %s\n", c.Manifest().Name, c.Manifest().Description)
	fmt.Fprintf(opts.Out, "On real footage it only tells where bright things drift; it knows no actions.\n\n")
	wrong := 0
	for i, j := range jobs {
		prog.Step(i+1, "classify "+filepath.Base(j.path))
		r, err := c.ClassifyFile(context.Background(), j.path, classify.ClassifyOptions{TopK: 3})
		prog.Done()
		if err != nil {
			return err
		}
		classify.WriteClipText(opts.Out, r)
		if j.expect != "" {
			verdict := "correct"
			if r.Top[0].Label != j.expect {
				verdict = "WRONG, expected " + j.expect
				wrong++
			}
			fmt.Fprintf(opts.Out, "  check: the scene's disk moves %s → %s: %s\n", j.direction, r.Top[0].Label, verdict)
		}
		fmt.Fprintln(opts.Out)
	}
	if wrong > 0 {
		return fmt.Errorf("demo: %d of %d synthetic scenes got the wrong label", wrong, len(DemoDirections))
	}
	fmt.Fprintf(opts.Out, "all %d synthetic scenes labelled correctly. Real action labels need the PP-TSMv2 weights: see README.\n", len(DemoDirections))
	return nil
}
