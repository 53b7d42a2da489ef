package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/actiond/actiond/models"
)

func TestScaleSize(t *testing.T) {
	// PPTSMV2.md §3.3.
	tests := []struct {
		w, h, wantW, wantH int
	}{
		{1920, 1080, 341, 256},
		{640, 480, 341, 256},
		{720, 1280, 256, 341},
		{500, 500, 256, 341}, // square counts as portrait
		{100, 37, 341, 256},  // upscale
		{340, 256, 340, 256}, // h already is the short side 256: unchanged
		{341, 256, 341, 256},
		{256, 341, 256, 341},
		{256, 256, 256, 256},
		{455, 256, 455, 256},   // 16:9 already 256 high
		{256, 1000, 256, 1000}, // any long side passes
		{1000, 256, 1000, 256},
		{256, 200, 341, 256}, // w is 256 but is the long side
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d", tt.w, tt.h), func(t *testing.T) {
			w, h := ScaleSize(tt.w, tt.h, 256)
			if w != tt.wantW || h != tt.wantH {
				t.Errorf("ScaleSize(%d, %d, 256) = %dx%d, want %dx%d", tt.w, tt.h, w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

func TestCenterCropOffset(t *testing.T) {
	// PPTSMV2.md §3.5: Python's round() is half-to-even.
	tests := []struct {
		w, h, x, y int
	}{
		{341, 256, 58, 16},   // round(58.5) = 58
		{256, 341, 16, 58},   //
		{455, 256, 116, 16},  // round(115.5) = 116
		{299, 299, 38, 38},   // round(37.5) = 38
		{225, 226, 0, 1},     // round(0.5) = 0, round(1.0) = 1
		{227, 224, 2, 0},     // round(1.5) = 2
		{224, 224, 0, 0},     //
		{1000, 256, 388, 16}, // exact
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%dx%d", tt.w, tt.h), func(t *testing.T) {
			x, y := CenterCropOffset(tt.w, tt.h, 224)
			if x != tt.x || y != tt.y {
				t.Errorf("CenterCropOffset(%d, %d, 224) = %d,%d, want %d,%d", tt.w, tt.h, x, y, tt.x, tt.y)
			}
		})
	}
}

func pptsmPreprocessor() Preprocessor {
	return NewPreprocessor(models.Manifest{
		Segments: 16, InputSize: 224, ShortSide: 256,
		Mean: models.ImageNetMean, Std: models.ImageNetStd,
	})
}

func TestNewPreprocessor(t *testing.T) {
	p := pptsmPreprocessor()
	want := Preprocessor{ShortSide: 256, CropSize: 224, Mean: models.ImageNetMean, Std: models.ImageNetStd}
	if p != want {
		t.Errorf("NewPreprocessor = %+v, want %+v", p, want)
	}
	if got := p.FrameSize(); got != 3*224*224 {
		t.Errorf("FrameSize() = %d, want %d", got, 3*224*224)
	}
}

// TestPreprocessorNormalisation feeds uniform frames and checks the exact
// float32 values; the expected ones were printed by numpy doing
// (float32(v) / 255.0 - mean) / std the way PaddleVideo's Normalization does.
func TestPreprocessorNormalisation(t *testing.T) {
	tests := []struct {
		v    uint8
		want [3]float32 // R, G, B
	}{
		{0, [3]float32{-2.117904, -2.0357141, -1.8044444}},   // (0 - mean) / std
		{1, [3]float32{-2.1007793, -2.0182073, -1.7870152}},  //
		{128, [3]float32{0.07406463, 0.2051822, 0.42649257}}, //
		{254, [3]float32{2.2317834, 2.4110641, 2.622571}},    //
		{255, [3]float32{2.2489083, 2.4285715, 2.64}},        // (1 - mean) / std
	}
	p := pptsmPreprocessor()
	dst := make([]float32, p.FrameSize())
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.v), func(t *testing.T) {
			// 1920x1080 goes through both resize passes; a uniform frame stays
			// uniform because the coefficients of every output sum to 2^22.
			img := NewImage(1920, 1080)
			for i := range img.Pix {
				img.Pix[i] = tt.v
			}
			if err := p.Frame(img, dst); err != nil {
				t.Fatal(err)
			}
			plane := 224 * 224
			for c := range 3 {
				for i, got := range dst[c*plane : (c+1)*plane] {
					if math.Float32bits(got) != math.Float32bits(tt.want[c]) {
						t.Fatalf("channel %d value %d = %v, want %v", c, i, got, tt.want[c])
					}
				}
			}
		})
	}
}

// TestPreprocessorPlanarLayout checks the channel order and the crop
// position with a frame that needs no resizing.
func TestPreprocessorPlanarLayout(t *testing.T) {
	p := Preprocessor{ShortSide: 4, CropSize: 2, Mean: [3]float32{0, 0, 0}, Std: [3]float32{1, 1, 1}}
	// 5x4 passes through (h == 4 <= w); crop at round(1.5) = 2, round(1.0) = 1.
	img := NewImage(5, 4)
	for y := range 4 {
		for x := range 5 {
			img.Set(x, y, uint8(10*y+x), uint8(100+10*y+x), 255)
		}
	}
	dst := make([]float32, p.FrameSize())
	if err := p.Frame(img, dst); err != nil {
		t.Fatal(err)
	}
	want := []uint8{
		12, 13, 22, 23, // R at (2,1), (3,1), (2,2), (3,2)
		112, 113, 122, 123, // G
		255, 255, 255, 255, // B
	}
	for i, v := range want {
		if dst[i] != float32(v)/255 {
			t.Errorf("dst[%d] = %v, want %v/255", i, dst[i], v)
		}
	}
}

func TestPreprocessorFrameErrors(t *testing.T) {
	p := pptsmPreprocessor()
	tests := []struct {
		name string
		p    Preprocessor
		img  *Image
		dst  int
	}{
		{"short destination", p, NewImage(341, 256), p.FrameSize() - 1},
		{"long destination", p, NewImage(341, 256), p.FrameSize() + 1},
		{"nil image", p, nil, p.FrameSize()},
		{"empty image", p, &Image{}, p.FrameSize()},
		{"pixels do not match size", p, &Image{W: 341, H: 256, Pix: make([]uint8, 10)}, p.FrameSize()},
		{"no crop size", Preprocessor{ShortSide: 256}, NewImage(341, 256), 0},
		{"scaled smaller than crop", Preprocessor{ShortSide: 200, CropSize: 224}, NewImage(640, 480), 3 * 224 * 224},
		{"pass-through smaller than crop", Preprocessor{ShortSide: 200, CropSize: 224}, NewImage(200, 1000), 3 * 224 * 224},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Frame(tt.img, make([]float32, tt.dst)); err == nil {
				t.Fatal("Frame succeeded, want an error")
			}
		})
	}
}

// numpyScript is the reference pipeline of PPTSMV2.md §3.3–3.6 as
// PaddleVideo writes it: Scale (fixed_ratio, Pillow BILINEAR), CenterCrop
// (do_round), Image2Array, Normalization, all in numpy float32.
// Arguments: short crop, then groups of in_path w h out_path.
const numpyScript = `
import sys
import numpy as np
from PIL import Image
BILINEAR = getattr(Image, "Resampling", Image).BILINEAR

def scale(img, short):
    w, h = img.size
    if (w <= h and w == short) or (h <= w and h == short):
        return img
    if w <= h:
        ow, oh = short, int(short * 4.0 / 3.0)
    else:
        ow, oh = int(short * 4.0 / 3.0), short
    return img.resize((ow, oh), BILINEAR)

def center_crop(img, size):
    w, h = img.size
    assert w >= size and h >= size
    x1 = int(round((w - size) / 2.0))
    y1 = int(round((h - size) / 2.0))
    return img.crop((x1, y1, x1 + size, y1 + size))

a = sys.argv[1:]
short, size = int(a[0]), int(a[1])
mean = np.array([0.485, 0.456, 0.406]).reshape([3, 1, 1]).astype(np.float32)
std = np.array([0.229, 0.224, 0.225]).reshape([3, 1, 1]).astype(np.float32)
for i in range(2, len(a), 4):
    src, w, h, dst = a[i], int(a[i+1]), int(a[i+2]), a[i+3]
    with open(src, "rb") as f:
        img = Image.frombytes("RGB", (w, h), f.read())
    imgs = [center_crop(scale(img, short), size)]
    t = np.stack(imgs).astype("float32").transpose([0, 3, 1, 2])
    t = t / 255.0
    t -= mean
    t /= std
    assert t.dtype == np.float32
    t[0].astype("<f4").tofile(dst)
`

// TestPreprocessorMatchesNumpy compares Frame with the numpy pipeline and
// requires identical float32 bits.
func TestPreprocessorMatchesNumpy(t *testing.T) {
	py := referencePython(t)
	rng := rand.New(rand.NewPCG(5, 5))
	sizes := []struct{ w, h int }{
		{1920, 1080}, // both passes, crop (58, 16)
		{340, 256},   // passes through, h == 256 is the short side
		{320, 240},   // 4:3 upscale
		{256, 340},   // passes through, w == 256 is the short side
		{455, 256},   // passes through, crop x round(115.5) = 116
		{500, 500},   // square → 256x341
		{240, 320},   // portrait upscale
		{720, 1280},  // portrait downscale
	}
	dir := t.TempDir()
	args := []string{"256", "224"}
	imgs := make([]*Image, len(sizes))
	for i, s := range sizes {
		imgs[i] = randomImage(rng, s.w, s.h)
		in := filepath.Join(dir, fmt.Sprintf("in%d.rgb", i))
		if err := os.WriteFile(in, imgs[i].Pix, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, in, fmt.Sprint(s.w), fmt.Sprint(s.h), filepath.Join(dir, fmt.Sprintf("out%d.f32", i)))
	}
	runReferencePython(t, py, numpyScript, args...)

	p := pptsmPreprocessor()
	dst := make([]float32, p.FrameSize())
	for i, s := range sizes {
		t.Run(fmt.Sprintf("%dx%d", s.w, s.h), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out%d.f32", i)))
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) != 4*len(dst) {
				t.Fatalf("numpy wrote %d bytes, want %d", len(raw), 4*len(dst))
			}
			if err := p.Frame(imgs[i], dst); err != nil {
				t.Fatal(err)
			}
			differ, maxDiff := 0, 0.0
			for j, got := range dst {
				want := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
				if math.Float32bits(got) != math.Float32bits(want) {
					differ++
					maxDiff = max(maxDiff, math.Abs(float64(got)-float64(want)))
				}
			}
			t.Logf("%d of %d values differ from numpy, max abs difference %g", differ, len(dst), maxDiff)
			if differ > 0 {
				t.Errorf("%d values differ from numpy (max abs difference %g), want bit-identical", differ, maxDiff)
			}
		})
	}
}

func BenchmarkPreprocessorFrame(b *testing.B) {
	rng := rand.New(rand.NewPCG(6, 6))
	p := pptsmPreprocessor()
	dst := make([]float32, p.FrameSize())
	for _, s := range []struct{ w, h int }{{1920, 1080}, {640, 480}, {340, 256}} {
		b.Run(fmt.Sprintf("%dx%d", s.w, s.h), func(b *testing.B) {
			img := randomImage(rng, s.w, s.h)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Frame(img, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
