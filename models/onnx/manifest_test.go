package onnx

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/actiond/actiond/models"
)

func testManifest() models.Manifest {
	return models.Manifest{
		Name:        "tiny",
		Description: "a graph for tests",
		Labels:      []string{"a", "b", "c"},
		Segments:    2,
		InputSize:   4,
		ShortSide:   5,
		Mean:        models.ImageNetMean,
		Std:         models.ImageNetStd,
		Output:      models.OutputLogits,
		MACsPerClip: 10,
	}
}

// testModel has the I/O that testManifest describes; its graph is never run.
func testModel() *Model {
	return &Model{
		OpsetImports: []OpsetID{{Version: 17}},
		Graph: Graph{
			Name:         "tiny",
			Nodes:        []Node{{OpType: "Identity", Inputs: []string{"w"}, Outputs: []string{"logits"}}},
			Initializers: []Tensor{FloatTensor("w", []int64{1, 3}, []float32{1, 2, 3})},
			Inputs: []ValueInfo{{Name: "clip", ElemType: Float,
				Shape: []Dim{{Param: "N"}, {Value: 2}, {Value: 3}, {Value: 4}, {Value: 4}}}},
			Outputs: []ValueInfo{{Name: "logits", ElemType: Float,
				Shape: []Dim{{Param: "N"}, {Value: 3}}}},
		},
	}
}

func TestEmbedManifestRoundTrip(t *testing.T) {
	m := testModel()
	want := testManifest()
	if err := EmbedManifest(m, want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadManifest = %+v, want %+v", got, want)
	}
	parsed, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{models.NameKey: "tiny", models.UntrainedKey: "false"} {
		if v, _ := parsed.MetadataValue(key); v != want {
			t.Errorf("metadata %q = %q, want %q", key, v, want)
		}
	}

	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Params != 3 || info.Opset != 17 || info.Manifest.Name != "tiny" ||
		info.Inputs[0].Name != "clip" || info.Outputs[0].Name != "logits" {
		t.Errorf("Inspect = %+v", info)
	}
}

func TestEmbedManifestChecksGraph(t *testing.T) {
	tests := []struct {
		name   string
		modify func(m *models.Manifest)
		want   string
	}{
		{"labels", func(m *models.Manifest) { m.Labels = append(m.Labels, "d") },
			`model output "logits" has shape [N 3], but the manifest has 4 labels`},
		{"segments", func(m *models.Manifest) { m.Segments = 8 },
			`model input "clip" has shape [N 2 3 4 4], but the manifest says [N 8 3 4 4] ('segments', 'input_size')`},
		{"invalid", func(m *models.Manifest) { m.Segments = 0 }, "'segments' must be ≥ 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			man := testManifest()
			tt.modify(&man)
			m := testModel()
			err := EmbedManifest(m, man)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EmbedManifest() = %v, want it to contain %q", err, tt.want)
			}
			if len(m.Metadata) != 0 {
				t.Errorf("a rejected manifest was embedded: %v", m.Metadata)
			}
		})
	}
}

func TestLoadManifestSidecar(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bare.onnx")
	if err := testModel().WriteFile(path); err != nil {
		t.Fatal(err)
	}

	_, err := LoadManifest(path)
	want := `model "` + path + `" has no actiond manifest in its metadata_props and no sidecar "` +
		path + `.json"; write one (see README "Models")`
	if err == nil || err.Error() != want || !errors.Is(err, models.ErrNoManifest) {
		t.Fatalf("without a manifest: err = %v, want %q wrapping models.ErrNoManifest", err, want)
	}
	info, err := Inspect(path)
	if !errors.Is(err, models.ErrNoManifest) || info.Params != 3 || len(info.Inputs) != 1 {
		t.Errorf("Inspect without a manifest = %+v, %v; want the graph's info and models.ErrNoManifest", info, err)
	}

	sidecar := `{"name":"tiny","labels":["a","b","c"],"segments":2,"input_size":4,"short_side":4,
		"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5],"output":"probabilities","untrained":true}`
	if err := os.WriteFile(path+".json", []byte(sidecar), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "tiny" || got.Output != models.OutputProbabilities || !got.Untrained || len(got.Labels) != 3 {
		t.Errorf("sidecar manifest = %+v", got)
	}

	bad := strings.Replace(sidecar, `"untrained"`, `"untrained_typo"`, 1)
	if err := os.WriteFile(path+".json", []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadManifest(path)
	if err == nil || !strings.Contains(err.Error(), `unknown field "untrained_typo"`) {
		t.Errorf("unknown field: err = %v, want it named", err)
	}
}

func TestManifestFromModelStrict(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"unknown field", `{"name":"x","colour":"red"}`, `unknown field "colour"`},
		{"trailing data", `{"name":"tiny","labels":["a","b","c"],"segments":2,"input_size":4,"short_side":4,` +
			`"mean":[0,0,0],"std":[1,1,1],"output":"logits","untrained":false} {}`, "data after the JSON object"},
		{"invalid", `{"name":"x"}`, "'labels' must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := testModel()
			m.SetMetadata(models.ManifestKey, tt.json)
			_, err := ManifestFromModel(m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
