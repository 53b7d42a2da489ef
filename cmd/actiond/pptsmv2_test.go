package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/actiond/actiond/models/paddle"
	"github.com/actiond/actiond/models/pptsmv2"
)

type infoJSON struct {
	Name        string   `json:"name"`
	Params      int64    `json:"params"`
	MACsPerClip int64    `json:"macs_per_clip"`
	Segments    int      `json:"segments"`
	Labels      []string `json:"labels"`
	Untrained   bool     `json:"untrained"`
}

func modelInfo(t *testing.T, path string) infoJSON {
	t.Helper()
	var info infoJSON
	if err := json.Unmarshal([]byte(mustRun(t, "model", "info", "--json", path).stdout), &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// The "done when": a seeded build reports 16 segments, the spec §5
// totals (folded parameters; MACs per clip, +256 for the LTA) and untrained.
func TestBuildRandomPPTSMv2ReportsSpecTotals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args         []string
		params, macs int64
	}{
		{[]string{"--random-seed", "1"}, 5_847_776, 9_482_039_552},
		{[]string{"--random-seed", "1", "--no-lta"}, 5_847_504, 9_482_039_296},
	} {
		out := filepath.Join(dir, "m.onnx")
		r := mustRun(t, append(append([]string{"model", "build", "pptsmv2"}, c.args...), "--out", out)...)
		if !strings.Contains(r.stderr, "UNTRAINED") {
			t.Errorf("build %v does not warn that the model is untrained: %q", c.args, r.stderr)
		}
		info := modelInfo(t, out)
		if info.Name != "pptsmv2" || info.Segments != 16 || !info.Untrained || info.Params != c.params || info.MACsPerClip != c.macs {
			t.Errorf("%v: name %q segments %d untrained %v params %d macs %d; want pptsmv2 16 true %d %d",
				c.args, info.Name, info.Segments, info.Untrained, info.Params, info.MACsPerClip, c.params, c.macs)
		}
		if len(info.Labels) != 400 || info.Labels[5] != "archery" || info.Labels[399] != "zumba" {
			t.Errorf("labels: %d, [5]=%q", len(info.Labels), info.Labels[5])
		}
	}
}

func TestClassifyWithUntrainedModelSaysSo(t *testing.T) {
	model := filepath.Join(t.TempDir(), "m.onnx")
	mustRun(t, "model", "build", "pptsmv2", "--random-seed", "7", "--out", model)
	clip := filepath.Join(testdata, "archery.avi")
	got := decodeLines(t, mustRun(t, "classify", "--model", model, "--json", clip).stdout)
	if got[0].Untrained == nil || !*got[0].Untrained || got[0].Model != "pptsmv2" || len(got[0].Top) != 5 {
		t.Errorf("json: untrained %v model %q top %d", got[0].Untrained, got[0].Model, len(got[0].Top))
	}
	text := mustRun(t, "classify", "--model", model, clip).stdout
	if !strings.Contains(text, "UNTRAINED MODEL (random weights): these labels mean nothing") {
		t.Errorf("text output hides that the model is untrained:\n%s", text)
	}
}

// writeCheckpoint writes a seeded checkpoint in an official layout, the way
// paddle.save does, for the converter to read.
func writeCheckpoint(t *testing.T, layout string) string {
	t.Helper()
	keys, tensors := pptsmv2.RandomCheckpoint(3, true, layout)
	p := filepath.Join(t.TempDir(), "PPTSMv2_k400_16f_dml.pdparams")
	if err := paddle.WriteFile(p, keys, tensors, paddle.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildFromCheckpoint(t *testing.T) {
	ckpt := writeCheckpoint(t, pptsmv2.LayoutStudent)
	out := filepath.Join(t.TempDir(), "pptsmv2.onnx")
	mustRun(t, "model", "build", "pptsmv2", "--weights", ckpt, "--out", out)
	info := modelInfo(t, out)
	if info.Untrained || info.Params != 5_847_776 || info.Segments != 16 {
		t.Errorf("from a checkpoint: untrained %v params %d segments %d", info.Untrained, info.Params, info.Segments)
	}

	bad := filepath.Join(t.TempDir(), "bad.pdparams")
	os.WriteFile(bad, []byte("not a checkpoint"), 0o644)
	r := runActiond(t, nil, "model", "build", "pptsmv2", "--weights", bad, "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "pdparams") {
		t.Errorf("bad checkpoint: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{
		{"model", "build", "pptsmv2", "--out", out},
		{"model", "build", "pptsmv2", "--weights", ckpt, "--random-seed", "1", "--out", out},
		{"model", "build", "pptsmv2", "--weights", ckpt, "--no-lta", "--out", out},
	} {
		if r := runActiond(t, nil, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage); stderr %q", args, r.code, r.stderr)
		}
	}
}

func TestFetchDownloadsAndConverts(t *testing.T) {
	ckpt, err := os.ReadFile(writeCheckpoint(t, pptsmv2.LayoutDML))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/PPTSMv2_k400_16f_dml.pdparams" {
			http.NotFound(w, r)
			return
		}
		w.Write(ckpt)
	}))
	defer srv.Close()
	data := t.TempDir()
	env := []string{"XDG_DATA_HOME=" + data, "ACTIOND_PPTSMV2_URL=" + srv.URL + "/PPTSMv2_k400_16f_dml.pdparams"}
	r := runActiond(t, env, "model", "fetch", "pptsmv2")
	if r.code != 0 {
		t.Fatalf("fetch: exit %d: %s", r.code, r.stderr)
	}
	model := filepath.Join(data, "actiond", "models", "pptsmv2.onnx")
	if info := modelInfo(t, model); info.Untrained || info.Params != 5_847_776 {
		t.Errorf("fetched model: untrained %v params %d", info.Untrained, info.Params)
	}
	if _, err := os.Stat(filepath.Join(data, "actiond", "weights", "PPTSMv2_k400_16f_dml.pdparams")); err != nil {
		t.Errorf("the checkpoint is not kept: %v", err)
	}
	// classify without --model now finds the fetched model.
	got := decodeLines(t, runActiond(t, env, "classify", "--json", filepath.Join(testdata, "archery.avi")).stdout)
	if len(got) != 1 || got[0].Model != "pptsmv2" {
		t.Errorf("classify with the default model: %+v", got)
	}

	// No answer: a clear error that says how to get the file by hand.
	env = []string{"XDG_DATA_HOME=" + t.TempDir(), "ACTIOND_PPTSMV2_URL=http://127.0.0.1:1/PPTSMv2_k400_16f_dml.pdparams"}
	r = runActiond(t, env, "model", "fetch", "pptsmv2")
	if r.code != 1 || !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "by hand") {
		t.Errorf("unreachable: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestModelBenchJSON(t *testing.T) {
	model := filepath.Join(t.TempDir(), "m.onnx")
	mustRun(t, "model", "build", "pptsmv2", "--random-seed", "2", "--out", model)
	var got map[string]any
	r := mustRun(t, "model", "bench", "--model", model, "--threads", "1", "--batch", "2", "--iterations", "2", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("model bench --json printed %q: %v", r.stdout, err)
	}
	num := map[string]float64{}
	for _, k := range []string{"p50_ms", "p90_ms", "min_ms", "gflops"} {
		v, ok := got[k].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, got[k])
		}
		num[k] = v
	}
	if num["min_ms"] > num["p50_ms"] || num["p50_ms"] > num["p90_ms"] {
		t.Errorf("min %v, p50 %v, p90 %v are out of order", num["min_ms"], num["p50_ms"], num["p90_ms"])
	}
	if got["batch"] != 2.0 || got["threads"] != 1.0 {
		t.Errorf("batch %v threads %v, want 2 and 1", got["batch"], got["threads"])
	}

	// --sessions: that many sessions side by side, and their clips/s
	// together; --no-spin opens them as the server does.
	r = mustRun(t, "model", "bench", "--model", model, "--sessions", "2", "--threads", "1", "--iterations", "2", "--no-spin", "--json")
	got = nil
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("model bench --sessions 2 --json printed %q: %v", r.stdout, err)
	}
	if cps, _ := got["clips_per_s"].(float64); got["sessions"] != 2.0 || cps <= 0 {
		t.Errorf("sessions %v, clips_per_s %v; want 2 and a positive number", got["sessions"], got["clips_per_s"])
	}
	if got["no_spin"] != true {
		t.Errorf("no_spin %v, want true with --no-spin", got["no_spin"])
	}
}
