package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// referencePipeline is PaddleVideo's preprocessing (spec §3) in Python with
// the real Pillow and NumPy: frames decoded by the ffmpeg CLI (the reference
// decodes with FFmpeg too), Scale(256) with the fixed 4:3 rule and Pillow
// BILINEAR, CenterCrop(224) with round-half-even, /255, -mean, /std in
// float32. It compares the result with actiond's --dump-input and prints the
// largest and mean absolute difference.
const referencePipeline = `
import sys, subprocess, json
import numpy as np
from PIL import Image
video, dump, idx = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")]
probe = json.loads(subprocess.check_output(["ffprobe", "-v", "error", "-select_streams", "v:0",
    "-show_entries", "stream=width,height", "-of", "json", video]))["streams"][0]
w, h = probe["width"], probe["height"]
sel = "+".join("eq(n\\,%d)" % i for i in sorted(set(idx)))
raw = subprocess.check_output(["ffmpeg", "-v", "error", "-i", video, "-vf", "select=" + sel,
    "-vsync", "0", "-sws_flags", "bicubic", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)
byidx = dict(zip(sorted(set(idx)), frames))
mean = np.array([0.485, 0.456, 0.406]).reshape((3, 1, 1)).astype(np.float32)
std = np.array([0.229, 0.224, 0.225]).reshape((3, 1, 1)).astype(np.float32)
out = []
for i in idx:
    img = Image.fromarray(byidx[i], "RGB")
    iw, ih = img.size
    if not ((iw <= ih and iw == 256) or (ih <= iw and ih == 256)):
        img = img.resize((256, int(256 * 4.0 / 3.0)) if iw <= ih else (int(256 * 4.0 / 3.0), 256), Image.BILINEAR)
    iw, ih = img.size
    x1, y1 = int(round((iw - 224) / 2.0)), int(round((ih - 224) / 2.0))
    img = img.crop((x1, y1, x1 + 224, y1 + 224))
    out.append(np.array(img))
a = np.stack(out).astype("float32").transpose(0, 3, 1, 2)
a = a / 255.0
a = a - mean
a = a / std
ref = np.expand_dims(a, 0)
got = np.load(dump)
assert got.shape == ref.shape and got.dtype == np.float32, (got.shape, got.dtype)
d = np.abs(got - ref)
print(float(d.max()), float(d.mean()))
`

func TestDumpInputMatchesReferencePreprocessing(t *testing.T) {
	model := buildMotion(t)
	for _, c := range []struct {
		file    string
		indices []int
	}{
		{"arm_wrestling.mp4", seq(8, 17, 16)},
		{"archery.avi", seq(3, 8, 16)},
	} {
		t.Run(c.file, func(t *testing.T) {
			dump := filepath.Join(t.TempDir(), "input.npy")
			video := filepath.Join(testdata, c.file)
			mustRun(t, "classify", "--model", model, "--dump-input", dump, video)
			idx := make([]string, len(c.indices))
			for i, v := range c.indices {
				idx[i] = strconv.Itoa(v)
			}
			out, err := exec.Command("/usr/bin/python3", "-c", referencePipeline, video, dump, strings.Join(idx, ",")).CombinedOutput()
			if err != nil {
				t.Fatalf("reference pipeline (needs python3-pil, python3-numpy: run make setup): %v\n%s", err, out)
			}
			var maxDiff, meanDiff float64
			if _, err := fmt.Sscan(string(out), &maxDiff, &meanDiff); err != nil {
				t.Fatalf("reference output %q: %v", out, err)
			}
			t.Logf("%s: max |actiond - reference| = %g, mean = %g", c.file, maxDiff, meanDiff)
			// Same decoder and colour conversion: only float rounding may differ.
			if maxDiff > 1e-6 {
				t.Errorf("dumped input differs from the reference by up to %g (mean %g)", maxDiff, meanDiff)
			}
		})
	}
}

func TestModelRunMatchesClassify(t *testing.T) {
	model := buildMotion(t)
	dir := t.TempDir()
	video := filepath.Join(dir, "up.mp4")
	mustRun(t, "scene", "--direction", "up", "--out", video)
	in, out := filepath.Join(dir, "in.npy"), filepath.Join(dir, "out.npy")
	cls := decodeLines(t, mustRun(t, "classify", "--model", model, "--json", "--dump-input", in, video).stdout)[0]
	mustRun(t, "model", "run", "--model", model, "--input", in, "--output", out)
	check := `
import sys, numpy as np
o = np.load(sys.argv[1])
e = np.exp(o - o.max(axis=1, keepdims=True)); p = e / e.sum(axis=1, keepdims=True)
print(o.shape, int(p[0].argmax()), float(p[0].max()))
`
	res, err := exec.Command("/usr/bin/python3", "-c", check, out).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, res)
	}
	want := fmt.Sprintf("(1, 5) %d", cls.Top[0].Index)
	if !strings.HasPrefix(string(res), want) {
		t.Errorf("model run output: %s; want shape (1, 5) and argmax %d like classify", res, cls.Top[0].Index)
	}
	if r := runActiond(t, nil, "model", "run", "--model", model, "--input", out, "--output", filepath.Join(dir, "x.npy")); r.code != 1 ||
		!strings.Contains(r.stderr, `input clip expects shape [N,16,3,224,224], given [1,5]`) {
		t.Errorf("model run with a wrong-shaped input: exit %d, stderr %q", r.code, r.stderr)
	}
}
