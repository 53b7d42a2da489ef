package ingest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// In the hand computations below q(w) = trunc(0.5 + w·2^22) is Pillow's fixed
// point coefficient and an output byte is (2^21 + Σ in·q) >> 22, i.e. the
// exact weighted mean rounded half up.
func TestBilinearCoeffs(t *testing.T) {
	tests := []struct {
		in, out int
		ksize   int
		start   []int
		n       []int
		k       []int32
	}{
		{
			// Downscale 4→2: scale = filterscale = support = 2, ss = 0.5,
			// ksize = ceil(2)·2+1 = 5.
			// o=0: center 1, taps [trunc(-0.5)=0, trunc(3.5)=3) = 0,1,2 with
			//   tri((j-1+0.5)·0.5) = 0.75, 0.75, 0.25, sum 1.75 → 3/7, 3/7, 1/7;
			//   q(3/7) = trunc(1797558.857+0.5) = 1797559, q(1/7) = trunc(599186.286+0.5) = 599186.
			// o=1: center 3, taps [trunc(1.5)=1, min(trunc(5.5), 4)=4) = 1,2,3 → 1/7, 3/7, 3/7.
			in: 4, out: 2, ksize: 5,
			start: []int{0, 1},
			n:     []int{3, 3},
			k: []int32{
				1797559, 1797559, 599186, 0, 0,
				599186, 1797559, 1797559, 0, 0,
			},
		},
		{
			// Upscale 2→4: scale 0.5, filterscale 1, support 1, ksize 3.
			// o=0: center 0.25, taps [0, trunc(1.75)=1): tri(0.25) = 0.75 → 1 → 2^22.
			// o=1: center 0.75, taps [0, 2): tri(-0.25), tri(0.75) = 0.75, 0.25 → 3145728, 1048576.
			// o=2: center 1.25, taps [trunc(0.75)=0, 2): 0.25, 0.75.
			// o=3: center 1.75, taps [1, min(3, 2)=2): 1 → 2^22.
			in: 2, out: 4, ksize: 3,
			start: []int{0, 0, 0, 1},
			n:     []int{1, 2, 2, 1},
			k: []int32{
				4194304, 0, 0,
				3145728, 1048576, 0,
				1048576, 3145728, 0,
				4194304, 0, 0,
			},
		},
		{
			// Downscale 5→3: scale = support = 5/3, ss = 1/(5/3) = 0.6, ksize 5.
			// o=0: center 5/6, taps [0, trunc(3.0)=3): tri((j-5/6+0.5)·0.6) =
			//   0.8, 0.6, ~8e-17 (1-x with x one ulp below 1) → 4/7, 3/7, ~0 →
			//   q = 2396745 (2396745.14), 1797559, 0.
			// o=1: center 2.5, taps [trunc(1.33)=1, trunc(4.67)=4): 0.4, 1, 0.4, sum 1.8
			//   → 2/9, 5/9, 2/9 → 932068 (932067.56), 2330169 (2330168.89), 932068.
			// o=2: center 25/6, taps [trunc(3.0)=3, min(6, 5)=5): 0.6, 0.8 → 3/7, 4/7.
			in: 5, out: 3, ksize: 5,
			start: []int{0, 1, 3},
			n:     []int{3, 3, 2},
			k: []int32{
				2396745, 1797559, 0, 0, 0,
				932068, 2330169, 932068, 0, 0,
				1797559, 2396745, 0, 0, 0,
			},
		},
		{
			// Upscale 3→7: scale 3/7, support 1, ksize 3; center_o = (o+0.5)·3/7.
			// o=0: c=3/14, taps [0,1): 1.
			// o=1: c=9/14, taps [0,2): tri(-1/7), tri(6/7) = 6/7, 1/7 → 3595118, 599186.
			// o=2: c=15/14, taps [0,2): 3/7, 4/7 → 1797559, 2396745.
			// o=3: c=1.5, taps [1,3): tri(0) = 1, tri(1) = 0 → 2^22, 0.
			// o=4: c=27/14, taps [1,3): 4/7, 3/7. o=5: c=33/14, taps [1,3): 1/7, 6/7.
			// o=6: c=39/14, taps [2, min(4, 3)=3): 1.
			in: 3, out: 7, ksize: 3,
			start: []int{0, 0, 0, 1, 1, 1, 2},
			n:     []int{1, 2, 2, 2, 2, 2, 1},
			k: []int32{
				4194304, 0, 0,
				3595118, 599186, 0,
				1797559, 2396745, 0,
				4194304, 0, 0,
				2396745, 1797559, 0,
				599186, 3595118, 0,
				4194304, 0, 0,
			},
		},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d to %d", tt.in, tt.out), func(t *testing.T) {
			c := bilinearCoeffs(tt.in, tt.out)
			if c.ksize != tt.ksize {
				t.Errorf("ksize = %d, want %d", c.ksize, tt.ksize)
			}
			if !slices.Equal(c.start, tt.start) {
				t.Errorf("start = %v, want %v", c.start, tt.start)
			}
			if !slices.Equal(c.n, tt.n) {
				t.Errorf("n = %v, want %v", c.n, tt.n)
			}
			if !slices.Equal(c.k, tt.k) {
				t.Errorf("k = %v, want %v", c.k, tt.k)
			}
		})
	}
}

// The same pixels are resized as one row (horizontal pass) and as one column
// (vertical pass); Pillow 9.4 gives these bytes for both.
func TestResizeBilinearSmall(t *testing.T) {
	tests := []struct {
		in, out int
		pix     []uint8 // in RGB pixels
		want    []uint8 // out RGB pixels
	}{
		{
			// R: (3·10+3·50+100)/7 = 40.0 → 40; (50+3·100+3·200)/7 = 135.7 → 136.
			// G: 3·255/7 = 109.3 → 109; 4·255/7 = 145.7 → 146. B: 255 throughout
			// (the q sum to exactly 2^22).
			in: 4, out: 2,
			pix:  []uint8{10, 0, 255, 50, 255, 255, 100, 0, 255, 200, 255, 255},
			want: []uint8{40, 109, 255, 136, 146, 255},
		},
		{
			// R: 0, 100·0.25 = 25, 100·0.75 = 75, 100.
			// G: 255, 191.25 → 191, 63.75 → 64, 0.
			// B: 7, 7.5 → 8 (half rounds up), 8.5 → 9, 9.
			in: 2, out: 4,
			pix:  []uint8{0, 255, 7, 100, 0, 9},
			want: []uint8{0, 255, 7, 25, 191, 8, 75, 64, 9, 100, 0, 9},
		},
		{
			// R: 3·70/7 = 30; (2·70+5·140+2·210)/9 = 140; (3·210+4·255)/7 = 235.7 → 236.
			// G over 255, 0, 255, 0, 255: 4·255/7 = 145.7 → 146; 5·255/9 = 141.7 → 142; 4·255/7 → 146.
			// B: (4·1+3·2)/7 = 1.43 → 1; (2·2+5·3+2·4)/9 = 3; (3·4+4·5)/7 = 4.57 → 5.
			in: 5, out: 3,
			pix:  []uint8{0, 255, 1, 70, 0, 2, 140, 255, 3, 210, 0, 4, 255, 255, 5},
			want: []uint8{30, 146, 1, 140, 142, 3, 236, 146, 5},
		},
		{
			// R over 0, 100, 255: 0; 100/7 = 14.3 → 14; 400/7 = 57.1 → 57; 100;
			// (4·100+3·255)/7 = 166.4 → 166; (100+6·255)/7 = 232.9 → 233; 255.
			in: 3, out: 7,
			pix: []uint8{0, 200, 255, 100, 0, 50, 255, 100, 0},
			want: []uint8{
				0, 200, 255, 14, 171, 226, 57, 86, 138, 100, 0, 50,
				166, 43, 29, 233, 86, 7, 255, 100, 0,
			},
		},
	}
	for _, tt := range tests {
		for _, dir := range []string{"row", "column"} {
			t.Run(fmt.Sprintf("%d to %d %s", tt.in, tt.out, dir), func(t *testing.T) {
				src := &Image{W: tt.in, H: 1, Pix: tt.pix}
				w, h := tt.out, 1
				if dir == "column" {
					src.W, src.H, w, h = 1, tt.in, 1, tt.out
				}
				got := ResizeBilinear(src, w, h)
				if got.W != w || got.H != h {
					t.Fatalf("got %v, want %dx%d", got, w, h)
				}
				if !bytes.Equal(got.Pix, tt.want) {
					t.Errorf("pixels = %v, want %v", got.Pix, tt.want)
				}
			})
		}
	}
}

func TestResizeBilinearSameSizeCopies(t *testing.T) {
	src := randomImage(rand.New(rand.NewPCG(1, 1)), 5, 4)
	got := ResizeBilinear(src, 5, 4)
	if !bytes.Equal(got.Pix, src.Pix) {
		t.Fatal("same-size resize changed the pixels")
	}
	got.Pix[0]++
	if got.Pix[0] == src.Pix[0] {
		t.Fatal("same-size resize shares the source pixels")
	}
}

// The cropped resize that Preprocessor.Frame uses must equal resizing the
// whole image and cropping afterwards, for every combination of passes.
func TestResizeBilinearRect(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	tests := []struct {
		sw, sh, w, h, x0, y0, cw, ch int
	}{
		{40, 30, 23, 17, 3, 5, 11, 9},  // both passes, downscale
		{7, 5, 19, 23, 0, 22, 19, 1},   // both passes, upscale, last row
		{40, 30, 23, 30, 22, 0, 1, 30}, // horizontal only, last column
		{40, 30, 40, 17, 7, 2, 20, 15}, // vertical only
		{40, 30, 40, 30, 9, 8, 10, 12}, // plain crop
		{13, 11, 6, 5, 0, 0, 6, 5},     // whole image
	}
	// One scratch for all cases, each twice: what a live stream's window
	// does, through changes of size and of passes.
	var scratch resizeScratch
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d to %dx%d at %d,%d", tt.sw, tt.sh, tt.w, tt.h, tt.x0, tt.y0), func(t *testing.T) {
			src := randomImage(rng, tt.sw, tt.sh)
			full := ResizeBilinear(src, tt.w, tt.h)
			got := resizeBilinearRect(src, tt.w, tt.h, tt.x0, tt.y0, tt.cw, tt.ch)
			if got.W != tt.cw || got.H != tt.ch {
				t.Fatalf("got %v, want %dx%d", got, tt.cw, tt.ch)
			}
			for y := range tt.ch {
				for x := range tt.cw {
					r, g, b := got.At(x, y)
					wr, wg, wb := full.At(tt.x0+x, tt.y0+y)
					if r != wr || g != wg || b != wb {
						t.Fatalf("pixel (%d,%d) = %d,%d,%d, want %d,%d,%d", x, y, r, g, b, wr, wg, wb)
					}
				}
			}
			for range 2 {
				again := scratch.resize(src, tt.w, tt.h, tt.x0, tt.y0, tt.cw, tt.ch)
				if again.W != got.W || again.H != got.H || !bytes.Equal(again.Pix, got.Pix) {
					t.Fatalf("with a reused scratch: %v, %d bytes differ", again, len(got.Pix))
				}
			}
		})
	}
}

// pillowScript resizes raw RGB files the way PaddleVideo's Scale does.
// Arguments come in groups: in_path in_w in_h out_w out_h out_path.
const pillowScript = `
import sys
from PIL import Image
BILINEAR = getattr(Image, "Resampling", Image).BILINEAR
a = sys.argv[1:]
for i in range(0, len(a), 6):
    src, w, h, ow, oh, dst = a[i], int(a[i+1]), int(a[i+2]), int(a[i+3]), int(a[i+4]), a[i+5]
    with open(src, "rb") as f:
        im = Image.frombytes("RGB", (w, h), f.read())
    with open(dst, "wb") as f:
        f.write(im.resize((ow, oh), BILINEAR).tobytes())
`

// TestResizeBilinearMatchesPillow resizes random images with the real
// Pillow and requires identical bytes. Random noise is the hardest input:
// every coefficient and every rounding shows.
func TestResizeBilinearMatchesPillow(t *testing.T) {
	py := referencePython(t)
	rng := rand.New(rand.NewPCG(3, 3))
	tests := []struct{ sw, sh, w, h int }{
		{340, 256, 341, 256},   // horizontal pass only
		{320, 240, 341, 256},   // 4:3 upscale
		{1920, 1080, 341, 256}, // the common HD camera
		{100, 37, 341, 256},    // strong upscale
		{256, 341, 256, 300},   // vertical pass only
		{7, 5, 3, 9},           // tiny, mixed
		{500, 500, 256, 341},   // square to portrait
	}
	dir := t.TempDir()
	var args []string
	srcs := make([]*Image, len(tests))
	for i, tt := range tests {
		srcs[i] = randomImage(rng, tt.sw, tt.sh)
		in := filepath.Join(dir, fmt.Sprintf("in%d.rgb", i))
		if err := os.WriteFile(in, srcs[i].Pix, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, in, fmt.Sprint(tt.sw), fmt.Sprint(tt.sh), fmt.Sprint(tt.w), fmt.Sprint(tt.h),
			filepath.Join(dir, fmt.Sprintf("out%d.rgb", i)))
	}
	runReferencePython(t, py, pillowScript, args...)

	for i, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d to %dx%d", tt.sw, tt.sh, tt.w, tt.h), func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out%d.rgb", i)))
			if err != nil {
				t.Fatal(err)
			}
			got := ResizeBilinear(srcs[i], tt.w, tt.h)
			if len(got.Pix) != len(want) {
				t.Fatalf("got %d bytes, Pillow %d", len(got.Pix), len(want))
			}
			diff := 0
			first := -1
			for j := range want {
				if got.Pix[j] != want[j] {
					diff++
					if first < 0 {
						first = j
					}
				}
			}
			if diff > 0 {
				p := first / 3
				t.Errorf("%d of %d bytes differ from Pillow; first at pixel (%d,%d) channel %d: %d, Pillow %d",
					diff, len(want), p%tt.w, p/tt.w, first%3, got.Pix[first], want[first])
			}
		})
	}
}

// referencePythonPath is Debian's interpreter, which has python3-pil and
// python3-numpy; the python3 first on PATH may be another one without them.
const referencePythonPath = "/usr/bin/python3"

// referencePython returns the interpreter for the reference cross-checks.
// A missing reference fails the test instead of skipping it, so that the
// byte-exactness claims are never silently untested.
func referencePython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(referencePythonPath, "-c", "import PIL, numpy").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot import PIL and numpy (%v: %s): run make setup (installs python3-pil python3-numpy)",
			referencePythonPath, err, strings.TrimSpace(string(out)))
	}
	return referencePythonPath
}

// runReferencePython runs script with args and fails the test on error.
func runReferencePython(t *testing.T, py, script string, args ...string) {
	t.Helper()
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference script: %v\n%s", err, out)
	}
}

func randomImage(rng *rand.Rand, w, h int) *Image {
	im := NewImage(w, h)
	for i := range im.Pix {
		im.Pix[i] = uint8(rng.Uint32())
	}
	return im
}

func BenchmarkResizeBilinear(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	for _, bb := range []struct{ sw, sh, w, h int }{
		{1920, 1080, 341, 256},
		{340, 256, 341, 256},
	} {
		b.Run(fmt.Sprintf("%dx%d to %dx%d", bb.sw, bb.sh, bb.w, bb.h), func(b *testing.B) {
			src := randomImage(rng, bb.sw, bb.sh)
			b.ReportAllocs()
			for b.Loop() {
				ResizeBilinear(src, bb.w, bb.h)
			}
		})
	}
}
