package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// `model build pptsmv2 --int8` writes an int8 model and its halves, says
// how its logits agree with the float model's of the same weights on the
// calibration clips, and classify and model info take it as any model.
func TestModelBuildInt8(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	model := filepath.Join(dir, "q.onnx")
	r := mustRun(t, "model", "build", "pptsmv2", "--random-seed", "3", "--int8",
		"--calibration-clips", "../../testdata/archery.avi", "--out", model)
	for _, half := range []string{"q.front.onnx", "q.back.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, half)); err != nil {
			t.Error(err)
		}
	}
	// One clip and five synthetic scenes.
	m := regexp.MustCompile(`int8 against float32 of the same weights on the 6 calibration clips: logits within (\S+) \(largest (\S+)\), top 5 sharing at least (\d) of 5 labels; accuracy on Kinetics-400 is not measured`).
		FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("no agreement line in:\n%s", r.stderr)
	}
	diff, _ := strconv.ParseFloat(m[1], 64)
	scale, _ := strconv.ParseFloat(m[2], 64)
	if overlap, _ := strconv.Atoi(m[3]); diff > 0.1*scale || overlap < 4 {
		t.Errorf("int8 agrees with float32 to %v (largest logit %v), top-5 overlap %d: want within 10%%, 4 of 5", diff, scale, overlap)
	}

	var c clipJSON
	if err := json.Unmarshal([]byte(mustRun(t, "classify", "--model", model, "--threads", "1", "--json", "../../testdata/archery.avi").stdout), &c); err != nil {
		t.Fatal(err)
	}
	if c.Model != "pptsmv2" || len(c.Top) == 0 {
		t.Errorf("classify with the int8 model: %+v", c)
	}

	if r := runActiond(t, nil, "model", "build", "pptsmv2", "--random-seed", "3", "--calibration-clips", "x.mp4", "--out", model); r.code != 2 {
		t.Errorf("--calibration-clips without --int8: exit %d, stderr %q", r.code, r.stderr)
	}
}
