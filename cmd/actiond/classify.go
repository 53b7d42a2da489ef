package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/actiond/actiond/classify"
	"github.com/actiond/actiond/progress"
)

func runClassify(args []string) error {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	model := fs.String("model", "", "ONNX model file (default: $ACTIOND_MODEL, else "+classify.DefaultModelPath()+")")
	topK := fs.Int("top-k", 5, "number of labels to print per file")
	threads := fs.Int("threads", 0, "inference threads (0 = all cores)")
	asJSON := fs.Bool("json", false, "print one JSON object per file")
	dump := fs.String("dump-input", "", "write the exact model input as .npy (with several files, the file name is suffixed)")
	window := fs.Duration("window", 0, "rtsp:// sources: window length (default: the model's, else 10s)")
	transport := fs.String("transport", "auto", "rtsp:// sources: auto (UDP, falling back to TCP), udp or tcp")
	timeout := fs.Duration("timeout", 10*time.Second, "rtsp:// sources: how long a camera may take to answer")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: classify needs at least one video file", errUsage)
	}
	if *topK < 1 {
		return fmt.Errorf("%w: --top-k must be at least 1, got %d", errUsage, *topK)
	}
	path, err := classify.ResolveModelPath(*model)
	if err != nil {
		return err
	}
	c, err := classify.OpenClassifier(path, *threads)
	if err != nil {
		return err
	}
	defer c.Close()

	prog := progress.NewProgress(os.Stderr, len(files))
	enc := json.NewEncoder(os.Stdout)
	failed := 0
	for i, f := range files {
		if len(files) > 1 {
			prog.Step(i+1, "classify "+filepath.Base(f))
		}
		opts := classify.ClassifyOptions{TopK: *topK, DumpInput: dumpPath(*dump, f, len(files))}
		var r *classify.ClipResult
		if isStreamURL(f) {
			r, err = c.ClassifyStream(context.Background(), f, classify.StreamOptions{
				ClassifyOptions: opts, Window: *window, Transport: *transport, ConnectTimeout: *timeout,
				Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
		} else {
			r, err = c.ClassifyFile(context.Background(), f, opts)
		}
		prog.Done()
		if err != nil {
			// One bad file does not stop the others; the exit status says it.
			fmt.Fprintf(os.Stderr, "actiond: %v\n", err)
			failed++
			continue
		}
		if *asJSON {
			if err := enc.Encode(r); err != nil {
				return err
			}
		} else {
			classify.WriteClipText(os.Stdout, r)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files could not be classified", failed, len(files))
	}
	return nil
}

func isStreamURL(s string) bool {
	return strings.HasPrefix(s, "rtsp://") || strings.HasPrefix(s, "rtsps://")
}

// dumpPath gives each file its own dump when several files are classified:
// in.npy → in.<video name>.npy.
func dumpPath(dump, video string, n int) string {
	if dump == "" || n == 1 {
		return dump
	}
	base := strings.TrimSuffix(filepath.Base(video), filepath.Ext(video))
	if isStreamURL(video) {
		base = strings.NewReplacer("/", "_", ":", "_", "@", "_").Replace(video)
	}
	return strings.TrimSuffix(dump, ".npy") + "." + base + ".npy"
}
