package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `model build pptsmv2` writes the halves beside the model and `model info`
// names them; `model bench --feature-cache` times a live window both ways;
// a model without halves says so.
func TestModelBenchFeatureCache(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.onnx")
	mustRun(t, "model", "build", "pptsmv2", "--random-seed", "3", "--out", model)
	for _, half := range []string{"m.front.onnx", "m.back.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, half)); err != nil {
			t.Error(err)
		}
	}
	var info struct {
		FeatureCache struct {
			Front, Back  string
			FeatureShape []int `json:"feature_shape"`
		} `json:"feature_cache"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "model", "info", "--json", model).stdout), &info); err != nil {
		t.Fatal(err)
	}
	if fc := info.FeatureCache; fc.Front != "m.front.onnx" || fc.Back != "m.back.onnx" || len(fc.FeatureShape) != 3 || fc.FeatureShape[0] != 256 || fc.FeatureShape[2] != 28 {
		t.Errorf("model info feature_cache %+v", fc)
	}

	r := mustRun(t, "model", "bench", "--model", model, "--feature-cache", "--threads", "1", "--iterations", "1", "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("model bench --feature-cache --json printed %q: %v", r.stdout, err)
	}
	for _, k := range []string{"whole_p50_ms", "front_p50_ms", "back_p50_ms", "cached_p50_ms", "whole_windows_per_core_s", "cached_windows_per_core_s", "speedup"} {
		if v, ok := got[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, got[k])
		}
	}
	if got["new_frames"] != 2.0 || got["threads"] != 1.0 {
		t.Errorf("new_frames %v threads %v, want 2 and 1", got["new_frames"], got["threads"])
	}
	// What a user checks before trusting the cache: the halves score a
	// window as the whole model does.
	diff, scale := got["max_logit_diff"].(float64), got["max_abs_logit"].(float64)
	if _, ok := got["max_logit_diff"].(float64); !ok || scale <= 0 || diff > 1e-4*scale || got["top5_same"] != true {
		t.Errorf("the halves' logits differ from the whole model's by %v (largest logit %v), top 5 the same: %v; want within 1e-4 relative, the same top 5",
			got["max_logit_diff"], got["max_abs_logit"], got["top5_same"])
	}

	motion := filepath.Join(dir, "motion.onnx")
	mustRun(t, "model", "build", "motion", "--out", motion)
	r = runActiond(t, nil, "model", "bench", "--model", motion, "--feature-cache")
	if r.code == 0 || !strings.Contains(r.stderr, `model "motion.onnx" has no halves (no feature_cache in its manifest)`) {
		t.Errorf("bench --feature-cache of the motion model: exit %d, stderr %q", r.code, r.stderr)
	}
}
