package pptsmv2

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/actiond/actiond/models/paddle"
)

// BenchmarkLoadWeightsFile reads, checks and folds a real-size .pdparams
// file: the 24 MB student and the 122 MB distillation save.
func BenchmarkLoadWeightsFile(b *testing.B) {
	for _, layout := range []string{LayoutStudent, LayoutDML} {
		b.Run(layout, func(b *testing.B) {
			keys, tensors := RandomCheckpoint(1, true, layout)
			path := filepath.Join(b.TempDir(), layout+".pdparams")
			if err := paddle.WriteFile(path, keys, tensors, paddle.WriteOptions{}); err != nil {
				b.Fatal(err)
			}
			if fi, err := os.Stat(path); err == nil {
				b.SetBytes(fi.Size())
			}
			for b.Loop() {
				if _, err := LoadWeightsFile(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBuild builds the 224×224 graph and encodes it, as WriteFile does
// before writing.
func BenchmarkBuild(b *testing.B) {
	w := RandomWeights(1, true)
	for b.Loop() {
		m, err := Build(w, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
