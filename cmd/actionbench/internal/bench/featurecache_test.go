package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Feature cache section from real runs of actiond (one repeat of one
// iteration at 1 thread): both rates measured, and the report shows them
// with the command that reproduces them.
func TestFeatureCacheSection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds actiond and runs the 224×224 model")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "actiond")
	build := exec.Command("go", "build", "-o", bin, "../../../actiond")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build actiond: %v\n%s", err, out)
	}
	model := filepath.Join(dir, "m.onnx")
	cmd := exec.Command(bin, "model", "build", "pptsmv2", "--random-seed", "1", "--out", model)
	cmd.Dir = "../../../.." // where actiond finds the cached ONNX Runtime
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build model: %v\n%s", err, out)
	}
	for _, half := range []string{"m.front.onnx", "m.back.onnx"} {
		if _, err := os.Stat(filepath.Join(dir, half)); err != nil {
			t.Fatal(err)
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir("../../../.."); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	r, err := benchFeatureCache(config{actiond: bin, iterations: 1}, model, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.WholePerCore.Median <= 0 || r.CachedPerCore.Median <= 0 || r.Back.Median <= 0 || r.Front.Median <= 0 || r.Speedup.N != 1 {
		t.Fatalf("result %+v", r)
	}
	if !r.Top5Same || r.MaxLogit <= 0 || r.MaxDiff > 1e-4*r.MaxLogit {
		t.Errorf("the halves' logits differ from the whole model's by %v (largest %v), top 5 the same: %v", r.MaxDiff, r.MaxLogit, r.Top5Same)
	}
	var b strings.Builder
	featureCacheMarkdown(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, model, []cacheResult{r})
	md := b.String()
	t.Log(md)
	for _, want := range []string{"## Feature cache: windows/s per core", "| 1 | ", "The halves give the whole model's answer", "--feature-cache --new-frames 2 --threads 1 --iterations 1 --json"} {
		if !strings.Contains(md, want) {
			t.Errorf("section lacks %q", want)
		}
	}
}

// The front is about a third of the model's work, as the spec's MAC table
// says: stem 0.64 G, stage 1 1.32 G, stage 2 1.28 G of 9.48 G per clip.
func TestFrontMACShare(t *testing.T) {
	if f := frontMACShare(); f < 0.3415 || f > 0.3416 {
		t.Errorf("front share %.5f, want 0.3415 (3,238,559,744 of 9,482,039,552 MACs)", f)
	}
}
