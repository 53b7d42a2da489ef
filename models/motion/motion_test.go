package motion

import (
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/onnx"
)

func TestBuildRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "motion.onnx")
	if err := WriteFile(path); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	built, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, built) {
		t.Error("the model read back differs from the one built")
	}

	info, err := onnx.Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(info.Manifest, Manifest()) {
		t.Errorf("manifest read back = %+v, want %+v", info.Manifest, Manifest())
	}
	man := info.Manifest
	if man.Name != "motion" || man.Untrained || man.Output != models.OutputLogits ||
		!reflect.DeepEqual(man.Labels, Labels) || man.Segments != 16 || man.InputSize != 224 ||
		man.ShortSide != 256 || man.Mean != models.ImageNetMean || man.Std != models.ImageNetStd {
		t.Errorf("manifest = %+v", man)
	}
	if man.MACsPerClip < 16*3*224*224 {
		t.Errorf("MACsPerClip = %d, want at least the channel weighting (%d)", man.MACsPerClip, 16*3*224*224)
	}
	if info.Opset != 17 {
		t.Errorf("opset = %d, want 17", info.Opset)
	}
	wantIn := []onnx.ValueInfo{{Name: "clip", ElemType: onnx.Float,
		Shape: []onnx.Dim{{Param: "N"}, {Value: 16}, {Value: 3}, {Value: 224}, {Value: 224}}}}
	wantOut := []onnx.ValueInfo{{Name: "logits", ElemType: onnx.Float,
		Shape: []onnx.Dim{{Param: "N"}, {Value: 5}}}}
	if !reflect.DeepEqual(info.Inputs, wantIn) || !reflect.DeepEqual(info.Outputs, wantOut) {
		t.Errorf("inputs %v, outputs %v; want %v, %v", info.Inputs, info.Outputs, wantIn, wantOut)
	}
	if v, _ := m.MetadataValue(models.NameKey); v != "motion" {
		t.Errorf("metadata %q = %q, want \"motion\"", models.NameKey, v)
	}
}

// TestSlope checks the slope matrix without a runtime: for centroids that
// move linearly, drift is their displacement over the clip.
func TestSlope(t *testing.T) {
	var slope []float32
	for _, init := range graph().Initializers {
		if init.Name == "slope" {
			slope = init.Floats
		}
	}
	tests := []struct {
		name           string
		x0, vx         float64 // centroid at frame 0, change per frame
		y0, vy         float64
		wantDX, wantDY float64
	}{
		{"right", 0.2, 0.04, 0.5, 0, 0.6, 0},
		{"up", 0.5, 0, 0.9, -0.05, 0, -0.75},
		{"still", 0.3, 0, 0.3, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dx, dy float64
			for f := range segments {
				cx, cy := tt.x0+tt.vx*float64(f), tt.y0+tt.vy*float64(f)
				dx += cx*float64(slope[(f*2)*2]) + cy*float64(slope[(f*2+1)*2])
				dy += cx*float64(slope[(f*2)*2+1]) + cy*float64(slope[(f*2+1)*2+1])
			}
			if math.Abs(dx-tt.wantDX) > 1e-6 || math.Abs(dy-tt.wantDY) > 1e-6 {
				t.Errorf("drift = (%g, %g), want (%g, %g)", dx, dy, tt.wantDX, tt.wantDY)
			}
		})
	}
}
