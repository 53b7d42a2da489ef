package models

import (
	"strings"
	"testing"
)

func TestManifestFeatureCache(t *testing.T) {
	good := &FeatureCache{Front: "m.front.onnx", Back: "m.back.onnx", FeatureShape: []int{256, 28, 28}, Build: "fnv1a64:0123456789abcdef"}
	m := testManifest()
	m.FeatureCache = good
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if n := good.FeatureSize(); n != 256*28*28 {
		t.Errorf("FeatureSize %d, want %d", n, 256*28*28)
	}
	for _, tc := range []struct {
		fc   FeatureCache
		want string
	}{
		{FeatureCache{Front: "../x.onnx", Back: "b", FeatureShape: []int{1}}, `'feature_cache'.'front' must be a file name in the model's directory, got "../x.onnx"`},
		{FeatureCache{Front: "f", Back: "/etc/b", FeatureShape: []int{1}}, `'feature_cache'.'back' must be a file name`},
		{FeatureCache{Front: "f", FeatureShape: []int{1}}, `'feature_cache'.'back' must be a file name in the model's directory, got ""`},
		{FeatureCache{Front: "f", Back: "f", FeatureShape: []int{1}}, `'front' and 'back' must differ`},
		{FeatureCache{Front: "f", Back: "b", FeatureShape: []int{256, 0}}, `'feature_shape'[1] must be ≥ 1, got 0`},
		{FeatureCache{Front: "f", Back: "b"}, `'feature_shape' must not be empty`},
		{FeatureCache{Front: "f", Back: "b", FeatureShape: []int{1 << 20, 1 << 20}}, `is too large`},
		{FeatureCache{Front: "f", Back: "b", FeatureShape: []int{1}}, `'feature_cache'.'build' must not be empty`},
	} {
		m.FeatureCache = &tc.fc
		if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.fc, err, tc.want)
		}
	}
}
