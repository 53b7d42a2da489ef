package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ONNX Runtime missing (or not a library) at start: `actiond serve` exits
// 1 with one line that names the setting and the path and says how to fix
// it, instead of serving without a model.
func TestServeWithoutONNXRuntime(t *testing.T) {
	t.Parallel()
	model, err := serveModel()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	missing := filepath.Join(dir, "nowhere", "libonnxruntime.so.1")
	junk := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.WriteFile(junk, []byte("not a library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, lib string
		want      []string
	}{
		{"missing", missing, []string{`actiond: onnx runtime unavailable: ACTIOND_ORT_LIB="` + missing + `": stat ` + missing + ": no such file or directory",
			"run `make setup` in the actiond checkout, or set ACTIOND_ORT_LIB to a libonnxruntime.so of version 1.29.0"}},
		{"not a library", junk, []string{`actiond: onnx runtime unavailable: load "` + junk + `"`, "ONNX Runtime 1.29.0", "ACTIOND_ORT_LIB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// A configured camera too: the server must not carry on
			// watching it without a model.
			cmd := exec.CommandContext(ctx, actiond, "serve", "--model", model, "--listen", "127.0.0.1:0",
				"--stream", "cam=rtsp://127.0.0.1:9/x")
			cmd.Env = append(os.Environ(), "ACTIOND_ORT_LIB="+tc.lib, "ACTIOND_DATA_DIR="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if ctx.Err() != nil || !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v (%v), want status 1\nstderr:\n%s", err, ctx.Err(), stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("last line of stderr lacks %q:\n%s", w, last)
				}
			}
		})
	}
}
