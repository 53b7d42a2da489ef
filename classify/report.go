package classify

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// UntrainedWarning is shown with every result of a model with random weights.
const UntrainedWarning = "UNTRAINED MODEL (random weights): these labels mean nothing"

// WriteClipText prints one result for people:
//
//	arm_wrestling.mp4: 280 frames, sampled 8 25 42 … 263 (model pptsmv2)
//	  1. arm_wrestling        0.9876
//	  timing: decode 41.2 ms, preprocess 9.8 ms, inference 402.3 ms, total 455.0 ms
func WriteClipText(w io.Writer, r *ClipResult) {
	idx := make([]string, len(r.FrameIndices))
	for i, v := range r.FrameIndices {
		idx[i] = fmt.Sprint(v)
	}
	if win := r.Window; win != nil {
		fmt.Fprintf(w, "%s: window %.2f–%.2f s of the stream, %d frames at %.1f fps, %dx%d %s (model %s)\n",
			r.File, win.MediaStart, win.MediaEnd, r.FramesTotal, win.FPS, win.Width, win.Height, win.Codec, r.Model)
		fmt.Fprintf(w, "  captured %s – %s (%s clock)\n",
			win.AbsStart.Format(time.RFC3339Nano), win.AbsEnd.Format(time.RFC3339Nano), win.Clock)
	} else {
		fmt.Fprintf(w, "%s: %d frames, sampled %s (model %s)\n", filepath.Base(r.File), r.FramesTotal, strings.Join(idx, " "), r.Model)
	}
	if r.Untrained {
		fmt.Fprintf(w, "  %s\n", UntrainedWarning)
	}
	width := 0
	for _, l := range r.Top {
		width = max(width, len(l.Label))
	}
	for i, l := range r.Top {
		fmt.Fprintf(w, "  %d. %-*s  %.4f  (class %d)\n", i+1, width, l.Label, l.Score, l.Index)
	}
	t := r.TimingMS
	if r.Window != nil {
		// A live window's "decode" is connecting and filling the window.
		fmt.Fprintf(w, "  timing: capture %.1f ms, inference %.1f ms, total %.1f ms\n", t.Decode, t.Inference, t.Total)
		return
	}
	fmt.Fprintf(w, "  timing: decode %.1f ms, preprocess %.1f ms, inference %.1f ms, total %.1f ms\n",
		t.Decode, t.Preprocess, t.Inference, t.Total)
}
