package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/actiond/actiond/models"
)

// WindowClip is one window captured from a live stream for a one-shot
// classification (`actionctl classify rtsp://...`): the model input and
// where in the stream it came from.
type WindowClip struct {
	Window
	// Codec, Transport and the frame size of the stream.
	Codec         Codec
	Transport     string
	Width, Height int
	// Frames is the number of frames decoded, from the first random
	// access point to the window's end.
	Frames int
}

// CaptureWindow connects to url, fills one window and returns it: the
// [segments, 3, size, size] tensor of model's input, its media and
// absolute time range, and the clock that timed it. It connects once
// (cfg's reconnect settings do not apply): a camera that does not answer
// within cfg.ConnectTimeout (10s by default) fails with ErrNoAnswer, one
// that stops sending for cfg.ReadTimeout with ErrReadTimeout. cfg.URL and
// cfg.Name may be empty (url names the stream). ctx bounds the whole
// capture. Errors and logs never contain credentials.
func CaptureWindow(ctx context.Context, url string, cfg StreamConfig, model models.Manifest, log *slog.Logger) (*WindowClip, error) {
	cfg.URL = url
	if cfg.Name == "" {
		cfg.Name = RedactURL(url)
	}
	set, err := cfg.settle(model)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		srcCtr sourceCounters
		ctr    streamCounters
		clip   *WindowClip
		codec  Codec
		trans  string
		w, h   int
		frames int
	)
	p := newPipeline(set, log.With("stream", set.Name), &srcCtr, &ctr)
	defer p.close()
	p.onPlaying = func(c Codec, t string) { codec, trans = c, t }
	p.onFrame = func(m frameMeta) {
		frames++
		w, h = m.width, m.height
	}
	p.onWindow = func(win Window) {
		if clip == nil {
			clip = &WindowClip{Window: win, Codec: codec, Transport: trans, Width: w, Height: h, Frames: frames}
			cancel()
		}
	}
	start := time.Now()
	_, err = p.runSession(ctx)
	if clip != nil {
		return clip, nil
	}
	if ctx.Err() != nil && err == ctx.Err() {
		return nil, fmt.Errorf("capture a window from %s: %w after %v (%d frames decoded)",
			RedactURL(url), context.Cause(ctx), time.Since(start).Round(time.Millisecond), frames)
	}
	return nil, err
}
