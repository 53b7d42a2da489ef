package classify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/ingest"
	"github.com/actiond/actiond/models"
)

// ModelEnv names the environment variable with the default model path.
const ModelEnv = "ACTIOND_MODEL"

// ErrNoModel is returned when no model was given and none is installed.
var ErrNoModel = errors.New("no model")

// DefaultModelPath is where actiond looks for PP-TSMv2 when neither --model
// nor ACTIOND_MODEL says otherwise: $XDG_DATA_HOME/actiond/models/pptsmv2.onnx
// (XDG_DATA_HOME defaults to ~/.local/share).
func DefaultModelPath() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "actiond", "models", "pptsmv2.onnx")
}

// ResolveModelPath picks the model: the explicit path, else ACTIOND_MODEL,
// else DefaultModelPath. A missing default is ErrNoModel with a message that
// says how to install one; the motion demo model is never a fallback.
func ResolveModelPath(explicit string) (string, error) {
	p, from := explicit, "--model"
	if p == "" {
		p, from = os.Getenv(ModelEnv), ModelEnv
	}
	if p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("model %q (from %s): %w", p, from, err)
		}
		return p, nil
	}
	p = DefaultModelPath()
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w: PP-TSMv2 is not installed at %s; build it from the official weights "+
		"(README, \"Using the real PP-TSMv2 weights\"), set %s, or pass --model FILE "+
		"(for the motion demo model: actiond model build motion --out motion.onnx)", ErrNoModel, p, ModelEnv)
}

// Classifier turns clips into labels with one model. It is safe for
// concurrent use.
type Classifier struct {
	path     string
	manifest models.Manifest
	sess     *engine.Session
	pre      ingest.Preprocessor
}

// OpenClassifier loads the model at path with its manifest.
func OpenClassifier(path string, threads int) (*Classifier, error) {
	sess, err := engine.Open(path, engine.Options{Threads: threads, NoSpin: true})
	if err != nil {
		return nil, err
	}
	man, err := sess.Manifest()
	if err != nil {
		sess.Close()
		return nil, err
	}
	want := []int64{-1, int64(man.Segments), 3, int64(man.InputSize), int64(man.InputSize)}
	if got := sess.Input().Shape; !sameShape(got, want) {
		sess.Close()
		return nil, fmt.Errorf("model %q: input %s does not match its manifest (%d segments, %dx%d): want shape [N,%d,3,%d,%d]",
			filepath.Base(path), sess.Input(), man.Segments, man.InputSize, man.InputSize, man.Segments, man.InputSize, man.InputSize)
	}
	return &Classifier{path: path, manifest: man, sess: sess, pre: ingest.NewPreprocessor(man)}, nil
}

func sameShape(got, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] && !(i == 0 && got[i] == -1) {
			return false
		}
	}
	return true
}

// Manifest returns the model's manifest.
func (c *Classifier) Manifest() models.Manifest { return c.manifest }

// Session is the model's session, which the server's scheduler shares.
func (c *Classifier) Session() *engine.Session { return c.sess }

// Close frees the model.
func (c *Classifier) Close() error { return c.sess.Close() }

// Label is one class with its probability.
type Label struct {
	Index int     `json:"index"`
	Label string  `json:"label"`
	Score float32 `json:"score"`
}

// Timing is where the time of one classification went, in milliseconds.
type Timing struct {
	Decode     float64 `json:"decode"`
	Preprocess float64 `json:"preprocess"`
	Inference  float64 `json:"inference"`
	Total      float64 `json:"total"`
}

// ClipResult is what `actiond classify --json` prints for one file or one
// window of a live stream.
type ClipResult struct {
	File        string `json:"file"`
	Model       string `json:"model"`
	Untrained   bool   `json:"untrained"`
	FramesTotal int    `json:"frames_total"`
	// FrameIndices are the sampled frames of a file; a live window has
	// none (its frames are chosen by time, see Window).
	FrameIndices []int       `json:"frame_indices,omitempty"`
	Window       *WindowInfo `json:"window,omitempty"`
	Top          []Label     `json:"top"`
	TimingMS     Timing      `json:"timing_ms"`
}

// WindowInfo says where in a live stream a classified window lies.
type WindowInfo struct {
	// MediaStart and MediaEnd are seconds since the stream's first frame.
	MediaStart float64 `json:"media_start_s"`
	MediaEnd   float64 `json:"media_end_s"`
	// AbsStart and AbsEnd are capture times from the camera's RTCP sender
	// reports (Clock "rtcp"), else receive times (Clock "receive").
	AbsStart time.Time `json:"abs_start"`
	AbsEnd   time.Time `json:"abs_end"`
	Clock    string    `json:"clock"`
	FPS      float64   `json:"fps"`
	Width    int       `json:"width"`
	Height   int       `json:"height"`
	Codec    string    `json:"codec"`
}

// ClassifyOptions tune one classification.
type ClassifyOptions struct {
	// TopK is how many labels to return. It defaults to 5.
	TopK int
	// DumpInput, when set, is a path where the exact model input is written
	// as .npy (float32, [1,segments,3,crop,crop]).
	DumpInput string
	// MaxFramePixels is the largest frame, width times height, a file may
	// have (ingest.max_frame_pixels). It defaults to 8192×4320.
	MaxFramePixels int
}

// ClassifyFile classifies the video file at path. Reading and decoding
// stop when ctx ends; the error is then ctx's.
func (c *Classifier) ClassifyFile(ctx context.Context, path string, opts ClassifyOptions) (*ClipResult, error) {
	start := time.Now()
	clip, err := ingest.LoadClipWith(path, c.pre, c.manifest.Segments, ingest.FileOptions{MaxFramePixels: opts.MaxFramePixels, Context: ctx})
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, err
		}
		return nil, &clipError{err}
	}
	top, inference, err := c.classify(clip.Tensor, opts, path)
	if err != nil {
		return nil, err
	}
	return &ClipResult{
		File:         path,
		Model:        c.manifest.Name,
		Untrained:    c.manifest.Untrained,
		FramesTotal:  clip.FramesTotal,
		FrameIndices: clip.Indices,
		Top:          top,
		TimingMS: Timing{
			Decode:     ms(clip.Decode),
			Preprocess: ms(clip.Preprocess),
			Inference:  ms(inference),
			Total:      ms(time.Since(start)),
		},
	}, nil
}

// StreamOptions tune a live classification.
type StreamOptions struct {
	ClassifyOptions
	// Window is the window length. It defaults to the model's, else 10 s.
	Window time.Duration
	// Transport is "auto" (UDP, falling back to TCP), "udp" or "tcp".
	Transport string
	// ConnectTimeout bounds how long a camera may take to answer (10 s).
	ConnectTimeout time.Duration
	// Logger receives the stream's logs; nil means slog.Default().
	Logger *slog.Logger
}

// ClassifyStream connects to an RTSP URL, fills one window, classifies it
// and disconnects. Credentials in the URL never appear in the result.
func (c *Classifier) ClassifyStream(ctx context.Context, url string, opts StreamOptions) (*ClipResult, error) {
	start := time.Now()
	cfg := ingest.StreamConfig{Window: opts.Window, Transport: ingest.Transport(opts.Transport), ConnectTimeout: opts.ConnectTimeout}
	if cfg.Window == 0 && c.manifest.WindowSeconds > 0 {
		cfg.Window = time.Duration(c.manifest.WindowSeconds * float64(time.Second))
	}
	clip, err := ingest.CaptureWindow(ctx, url, cfg, c.manifest, opts.Logger)
	if err != nil {
		return nil, err
	}
	capture := time.Since(start)
	top, inference, err := c.classify(clip.Tensor, opts.ClassifyOptions, ingest.RedactURL(url))
	if err != nil {
		return nil, err
	}
	return &ClipResult{
		File:        ingest.RedactURL(url),
		Model:       c.manifest.Name,
		Untrained:   c.manifest.Untrained,
		FramesTotal: clip.FramesSeen,
		Window: &WindowInfo{
			MediaStart: clip.MediaStart.Seconds(), MediaEnd: clip.MediaEnd.Seconds(),
			AbsStart: clip.AbsStart, AbsEnd: clip.AbsEnd, Clock: string(clip.Clock),
			FPS: clip.FPS, Width: clip.Width, Height: clip.Height, Codec: string(clip.Codec),
		},
		Top: top,
		TimingMS: Timing{
			Decode:    ms(capture),
			Inference: ms(inference),
			Total:     ms(time.Since(start)),
		},
	}, nil
}

// classify runs one clip's tensor through the model (after dumping it when
// asked) and returns its top labels and the inference time. source names
// the clip in errors.
func (c *Classifier) classify(tensor []float32, opts ClassifyOptions, source string) ([]Label, time.Duration, error) {
	if opts.DumpInput != "" {
		shape := []int{1, c.manifest.Segments, 3, c.manifest.InputSize, c.manifest.InputSize}
		if err := engine.WriteNPYFile(opts.DumpInput, shape, tensor); err != nil {
			return nil, 0, fmt.Errorf("dump input of %s: %w", source, err)
		}
	}
	t := time.Now()
	out, err := c.sess.Run(tensor, 1)
	if err != nil {
		return nil, 0, err
	}
	inference := time.Since(t)
	top, err := c.top(out, opts.TopK)
	return top, inference, err
}

func (c *Classifier) top(out []float32, k int) ([]Label, error) {
	if len(out) != len(c.manifest.Labels) {
		return nil, fmt.Errorf("model %q: output has %d values, its manifest lists %d labels",
			filepath.Base(c.path), len(out), len(c.manifest.Labels))
	}
	scores := out
	if c.manifest.Output == models.OutputLogits {
		scores = engine.Softmax(out)
	}
	if k <= 0 {
		k = 5
	}
	var labels []Label
	for _, s := range engine.TopK(scores, k) {
		labels = append(labels, Label{Index: s.Index, Label: c.manifest.Labels[s.Index], Score: s.Score})
	}
	return labels, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
