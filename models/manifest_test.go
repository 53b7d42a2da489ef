package models

import (
	"strings"
	"testing"
)

func testManifest() Manifest {
	return Manifest{
		Name:        "tiny",
		Description: "a graph for tests",
		Labels:      []string{"a", "b", "c"},
		Segments:    2,
		InputSize:   4,
		ShortSide:   5,
		Mean:        ImageNetMean,
		Std:         ImageNetStd,
		Output:      OutputLogits,
		MACsPerClip: 10,
	}
}

func TestManifestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *Manifest)
		want   string // "" = valid
	}{
		{"valid", func(*Manifest) {}, ""},
		{"probabilities", func(m *Manifest) { m.Output = OutputProbabilities }, ""},
		{"no name", func(m *Manifest) { m.Name = "" }, "manifest: 'name' must not be empty"},
		{"no labels", func(m *Manifest) { m.Labels = nil }, "manifest: 'labels' must not be empty"},
		{"empty label", func(m *Manifest) { m.Labels[1] = "" }, "manifest: 'labels'[1] is empty"},
		{"duplicate label", func(m *Manifest) { m.Labels[2] = "a" }, `manifest: 'labels'[2] "a" repeats 'labels'[0]`},
		{"segments", func(m *Manifest) { m.Segments = 0 }, "manifest: 'segments' must be ≥ 1, got 0"},
		{"input size", func(m *Manifest) { m.InputSize = -1 }, "manifest: 'input_size' must be ≥ 1, got -1"},
		{"short side", func(m *Manifest) { m.ShortSide = 3 }, "manifest: 'short_side' (3) must be ≥ 'input_size' (4)"},
		{"std", func(m *Manifest) { m.Std[2] = 0 }, "manifest: 'std'[2] must be non-zero and finite, got 0"},
		{"output", func(m *Manifest) { m.Output = "scores" }, `manifest: 'output' must be "logits" or "probabilities", got "scores"`},
		{"window", func(m *Manifest) { m.WindowSeconds = -1 }, "manifest: 'window_seconds' must be ≥ 0 (0 = server default), got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testManifest()
			tt.modify(&m)
			err := m.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("all problems reported", func(t *testing.T) {
		err := Manifest{}.Validate()
		for _, key := range []string{"'name'", "'labels'", "'segments'", "'input_size'", "'std'[0]", "'output'"} {
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Errorf("Validate() = %v, want it to name %s", err, key)
			}
		}
	})
}
