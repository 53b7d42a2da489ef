package engine

import (
	"github.com/actiond/actiond/models"
)

// Manifest returns the manifest of the session's model: from its
// metadata_props, as ONNX Runtime read them, or else from the sidecar file
// beside the model (models.ResolveManifest), checked against the model's
// input and output. Without either it returns an error that wraps
// models.ErrNoManifest and says how to fix it.
func (s *Session) Manifest() (models.Manifest, error) {
	return models.ResolveManifest(s.path, s.metadata,
		[]models.Tensor{s.input.manifestTensor()}, []models.Tensor{s.output.manifestTensor()})
}

// manifestTensor describes t as models.Manifest.CheckIO takes it. Open
// takes float32 tensors only; ONNX Runtime gives no dimensions for a shape
// of unknown rank.
func (t Tensor) manifestTensor() models.Tensor {
	mt := models.Tensor{Name: t.Name, ElemType: models.FloatType}
	if len(t.Shape) > 0 {
		mt.Shape = append([]int64(nil), t.Shape...)
	}
	return mt
}
