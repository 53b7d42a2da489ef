package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// These tests run the real actiond binary the way a user does.

var actiond string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "actiond-cli-")
	if err != nil {
		panic(err)
	}
	actiond = filepath.Join(dir, "actiond")
	build := exec.Command("go", "build", "-o", actiond, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build actiond:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testdata = "../../testdata"

type result struct {
	stdout, stderr string
	code           int
}

func runActiond(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(actiond, args...)
	// An event log of its own (env may name another).
	cmd.Env = append(append(os.Environ(), "ACTIOND_DATA_DIR="+t.TempDir()), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run actiond %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := runActiond(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("actiond %s: exit %d\nstderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// clipJSON mirrors the documented `classify --json` object.
type clipJSON struct {
	File         string `json:"file"`
	Model        string `json:"model"`
	Untrained    *bool  `json:"untrained"`
	FramesTotal  int    `json:"frames_total"`
	FrameIndices []int  `json:"frame_indices"`
	Top          []struct {
		Index int     `json:"index"`
		Label string  `json:"label"`
		Score float64 `json:"score"`
	} `json:"top"`
	TimingMS map[string]float64 `json:"timing_ms"`
	Window   json.RawMessage    `json:"window"` // live sources only
}

func decodeLines(t *testing.T, s string) []clipJSON {
	t.Helper()
	var out []clipJSON
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		var c clipJSON
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("classify --json line %q: %v", line, err)
		}
		out = append(out, c)
	}
	return out
}

var motionModel string

func buildMotion(t *testing.T) string {
	t.Helper()
	if motionModel == "" {
		p := filepath.Join(filepath.Dir(actiond), "motion.onnx")
		mustRun(t, "model", "build", "motion", "--out", p)
		motionModel = p
	}
	return motionModel
}

func seq(start, step, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i*step
	}
	return out
}

func TestClassifySharedClipsJSON(t *testing.T) {
	model := buildMotion(t)
	clips := []struct {
		file    string
		frames  int
		indices []int
	}{
		{"arm_wrestling.mp4", 280, seq(8, 17, 16)},
		{"archery.avi", 131, seq(3, 8, 16)},
		{"archery_h264.mp4", 300, seq(8, 18, 16)},
	}
	args := []string{"classify", "--model", model, "--json", "--top-k", "3", "--threads", "1"}
	for _, c := range clips {
		args = append(args, filepath.Join(testdata, c.file))
	}
	got := decodeLines(t, mustRun(t, args...).stdout)
	if len(got) != len(clips) {
		t.Fatalf("got %d JSON lines, want %d", len(got), len(clips))
	}
	labels := []string{"moving_left", "moving_right", "moving_up", "moving_down", "still"}
	for i, c := range clips {
		g := got[i]
		t.Run(c.file, func(t *testing.T) {
			if filepath.Base(g.File) != c.file || g.Model != "motion" || g.Untrained == nil || *g.Untrained {
				t.Errorf("file/model/untrained = %q %q %v", g.File, g.Model, g.Untrained)
			}
			if g.FramesTotal != c.frames {
				t.Errorf("frames_total = %d, want %d", g.FramesTotal, c.frames)
			}
			if !slices.Equal(g.FrameIndices, c.indices) {
				t.Errorf("frame_indices = %v, want %v", g.FrameIndices, c.indices)
			}
			if len(g.Top) != 3 {
				t.Fatalf("top has %d entries, want 3", len(g.Top))
			}
			sum := 0.0
			for j, l := range g.Top {
				if l.Index < 0 || l.Index >= len(labels) || labels[l.Index] != l.Label {
					t.Errorf("top[%d] = %d %q: index and label disagree", j, l.Index, l.Label)
				}
				if j > 0 && l.Score > g.Top[j-1].Score {
					t.Errorf("top not sorted: %v", g.Top)
				}
				sum += l.Score
			}
			if sum <= 0 || sum > 1.0001 {
				t.Errorf("scores sum to %v", sum)
			}
			for _, k := range []string{"decode", "preprocess", "inference", "total"} {
				if v, ok := g.TimingMS[k]; !ok || v < 0 {
					t.Errorf("timing_ms.%s = %v, %v", k, v, ok)
				}
			}
			if g.TimingMS["total"] < g.TimingMS["inference"] {
				t.Errorf("total %v < inference %v", g.TimingMS["total"], g.TimingMS["inference"])
			}
		})
	}
}

func TestClassifySyntheticScenesAllDirections(t *testing.T) {
	model := buildMotion(t)
	dir := t.TempDir()
	var files []string
	want := map[string]string{"left": "moving_left", "right": "moving_right", "up": "moving_up", "down": "moving_down", "still": "still"}
	dirs := []string{"left", "right", "up", "down", "still"}
	for i, d := range dirs {
		p := filepath.Join(dir, d+".mp4")
		// Different sizes and frame rates: the pipeline must not care.
		size := []string{"320x240", "640x360", "240x320", "256x256", "400x300"}[i]
		fps := []string{"25", "30", "12", "24", "15"}[i]
		mustRun(t, "scene", "--direction", d, "--size", size, "--fps", fps, "--duration", "3s", "--out", p)
		files = append(files, p)
	}
	got := decodeLines(t, mustRun(t, append([]string{"classify", "--model", model, "--json", "--top-k", "1"}, files...)...).stdout)
	for i, d := range dirs {
		if got[i].Top[0].Label != want[d] {
			t.Errorf("scene moving %s labelled %q (%.3f), want %q", d, got[i].Top[0].Label, got[i].Top[0].Score, want[d])
		}
		if got[i].Top[0].Score < 0.9 {
			t.Errorf("scene moving %s: score %.3f, want a confident answer", d, got[i].Top[0].Score)
		}
	}
}

func TestClassifyBadFiles(t *testing.T) {
	model := buildMotion(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.mp4")
	os.WriteFile(text, []byte("these are my notes, not a video\n"), 0o644)
	good, err := os.ReadFile(filepath.Join(testdata, "arm_wrestling.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.mp4")
	os.WriteFile(corrupt, good[:len(good)/20], 0o644) // truncated: header but no media
	missing := filepath.Join(dir, "missing.mp4")

	r := runActiond(t, nil, "classify", "--model", model, "--json", text, corrupt, missing, filepath.Join(testdata, "archery.avi"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", r.code, r.stderr)
	}
	for _, want := range []string{"notes.mp4", "corrupt.mp4", "missing.mp4", "3 of 4 files could not be classified"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") {
		t.Errorf("stderr shows a crash:\n%s", r.stderr)
	}
	got := decodeLines(t, r.stdout)
	if len(got) != 1 || got[0].FramesTotal != 131 {
		t.Errorf("the good file after the bad ones: %+v", got)
	}
}

func TestClassifyWithoutModelSaysHowToInstall(t *testing.T) {
	env := []string{"ACTIOND_MODEL=", "XDG_DATA_HOME=" + t.TempDir()}
	r := runActiond(t, env, "classify", filepath.Join(testdata, "archery.avi"))
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	for _, want := range []string{"PP-TSMv2 is not installed", "pptsmv2.onnx", "--model", "ACTIOND_MODEL"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr does not mention %q:\n%s", want, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing (no silent fallback)", r.stdout)
	}
}

func TestModelInfoJSON(t *testing.T) {
	model := buildMotion(t)
	var info map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, "model", "info", "--json", model).stdout), &info); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "inputs", "outputs", "params", "macs_per_clip", "segments", "labels", "untrained"} {
		if _, ok := info[k]; !ok {
			t.Errorf("model info --json lacks %q", k)
		}
	}
	if info["name"] != "motion" || info["segments"] != 16.0 || info["untrained"] != false {
		t.Errorf("name/segments/untrained = %v %v %v", info["name"], info["segments"], info["untrained"])
	}
	in := info["inputs"].([]any)[0].(map[string]any)
	if fmt.Sprint(in["shape"]) != "[-1 16 3 224 224]" || in["name"] != "clip" {
		t.Errorf("input = %v", in)
	}
	out := info["outputs"].([]any)[0].(map[string]any)
	if fmt.Sprint(out["shape"]) != "[-1 5]" {
		t.Errorf("output = %v", out)
	}
	if fmt.Sprint(info["labels"]) != "[moving_left moving_right moving_up moving_down still]" {
		t.Errorf("labels = %v", info["labels"])
	}
	text := mustRun(t, "model", "info", model).stdout
	for _, want := range []string{"motion", "input   clip float32 [N,16,3,224,224]", "labels  5:"} {
		if !strings.Contains(text, want) {
			t.Errorf("model info text lacks %q:\n%s", want, text)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"classify"}, {"model", "build", "motion"}, {"classify", "--top-k", "0", "x.mp4"}} {
		r := runActiond(t, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("actiond %v: exit %d, stderr %q; want exit 2 with usage", args, r.code, r.stderr)
		}
	}
}

func jsonUnmarshal(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
