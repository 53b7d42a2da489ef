package engine_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/actiond/actiond/engine"
	"github.com/actiond/actiond/models"
	"github.com/actiond/actiond/models/motion"
	"github.com/actiond/actiond/models/onnx"
)

// tinyClassifier is a runnable clip model for clipManifest: clip
// [N,2,3,4,4] flattened and multiplied by a [96,3] weight into logits [N,3].
func tinyClassifier() *onnx.Model {
	w := make([]float32, 96*3)
	for i := range w {
		w[i] = float32(i%7) / 7
	}
	return &onnx.Model{
		OpsetImports: []onnx.OpsetID{{Version: 17}},
		Graph: onnx.Graph{
			Name: "tiny",
			Nodes: []onnx.Node{
				{OpType: "Flatten", Inputs: []string{"clip"}, Outputs: []string{"flat"}, Attrs: []onnx.Attr{onnx.AttrInt("axis", 1)}},
				{OpType: "MatMul", Inputs: []string{"flat", "w"}, Outputs: []string{"logits"}},
			},
			Initializers: []onnx.Tensor{onnx.FloatTensor("w", []int64{96, 3}, w)},
			Inputs: []onnx.ValueInfo{{Name: "clip", ElemType: onnx.Float,
				Shape: []onnx.Dim{{Param: "N"}, {Value: 2}, {Value: 3}, {Value: 4}, {Value: 4}}}},
			Outputs: []onnx.ValueInfo{{Name: "logits", ElemType: onnx.Float,
				Shape: []onnx.Dim{{Param: "N"}, {Value: 3}}}},
		},
	}
}

func clipManifest() models.Manifest {
	return models.Manifest{
		Name: "tiny", Labels: []string{"a", "b", "c"}, Segments: 2, InputSize: 4, ShortSide: 5,
		Mean: models.ImageNetMean, Std: models.ImageNetStd, Output: models.OutputLogits, MACsPerClip: 288,
	}
}

func writeModel(t *testing.T, m *onnx.Model) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// The server reads a model's manifest through ONNX Runtime (Session.Manifest)
// and gets what the tools read by parsing the file (onnx.LoadManifest): the
// embedded manifest, else the sidecar, else an error that says what to do.
func TestSessionManifest(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		m := tinyClassifier()
		if err := onnx.EmbedManifest(m, clipManifest()); err != nil {
			t.Fatal(err)
		}
		path := writeModel(t, m)
		got, err := openSession(t, path).Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if want := clipManifest(); !reflect.DeepEqual(got, want) {
			t.Errorf("Manifest() = %+v, want %+v", got, want)
		}
	})

	t.Run("sidecar", func(t *testing.T) {
		path := writeModel(t, tinyClassifier())
		s := openSession(t, path)
		_, err := s.Manifest()
		want := `model "` + path + `" has no actiond manifest in its metadata_props and no sidecar "` +
			path + `.json"; write one (see README "Models")`
		if err == nil || err.Error() != want || !errors.Is(err, models.ErrNoManifest) {
			t.Fatalf("without a manifest: err = %v, want %q wrapping ErrNoManifest", err, want)
		}
		b, err := json.Marshal(clipManifest())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path+".json", b, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := s.Manifest()
		if err != nil || !reflect.DeepEqual(got, clipManifest()) {
			t.Errorf("sidecar manifest = %+v, %v; want %+v", got, err, clipManifest())
		}
		bad := strings.Replace(string(b), `"untrained"`, `"untrained_typo"`, 1)
		if err := os.WriteFile(path+".json", []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Manifest(); err == nil || !strings.Contains(err.Error(), `manifest sidecar "`+path+`.json": decode manifest: json: unknown field "untrained_typo"`) {
			t.Errorf("unknown field: err = %v, want it named with the sidecar", err)
		}
	})

	t.Run("does not fit the model", func(t *testing.T) {
		man := clipManifest()
		man.Labels = append(man.Labels, "d")
		b, err := json.Marshal(man)
		if err != nil {
			t.Fatal(err)
		}
		m := tinyClassifier()
		m.SetMetadata(models.ManifestKey, string(b))
		path := writeModel(t, m)
		_, err = openSession(t, path).Manifest()
		want := `model "` + path + `": model output "logits" has shape [N 3], but the manifest has 4 labels`
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %q", err, want)
		}
	})
}

// ParamCount, which the server shows as the model's params, counts what
// the model tools count from the parsed graph.
func TestParamCount(t *testing.T) {
	motionPath := filepath.Join(t.TempDir(), "motion.onnx")
	if err := motion.WriteFile(motionPath); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{writeModel(t, tinyClassifier()), motionPath} {
		m, err := onnx.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := engine.ParamCount(path)
		if want := m.Graph.ParamCount(); err != nil || got != want || got == 0 {
			t.Errorf("ParamCount(%s) = %d, %v; want %d", filepath.Base(path), got, err, want)
		}
	}
	junk := filepath.Join(t.TempDir(), "junk.onnx")
	if err := os.WriteFile(junk, []byte{0x3a, 0xff}, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.ParamCount(junk); err == nil || !strings.Contains(err.Error(), `count params of model "junk.onnx"`) {
		t.Errorf("junk: err = %v", err)
	}
}
