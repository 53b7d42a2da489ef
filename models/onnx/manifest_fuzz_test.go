package onnx

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/actiond/actiond/models"
)

// FuzzManifest feeds arbitrary bytes as the actiond.manifest metadata value
// of an ONNX model, through a marshal/parse round trip, to ManifestFromModel:
// it never panics, and whatever it accepts validates, fits the graph and
// survives EmbedManifest unchanged.
func FuzzManifest(f *testing.F) {
	seed := func(man models.Manifest) {
		b, err := json.Marshal(man)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	seed(testManifest())
	// The PP-TSMv2 manifest with the real Kinetics-400 labels.
	k400 := models.Kinetics400()
	seed(models.Manifest{Name: "pptsmv2", Description: "PP-TSMv2 on Kinetics-400", Labels: k400, Segments: 16,
		InputSize: 224, ShortSide: 256, Mean: models.ImageNetMean, Std: models.ImageNetStd, Output: models.OutputLogits,
		MACsPerClip: 12345678, WindowSeconds: 8})
	f.Add([]byte(`{"name":"tiny","labels":["a","b","c"],"segments":2,"input_size":4,"short_side":5,` +
		`"mean":[0,0,0],"std":[1,1,1],"output":"probabilities","untrained":true}`))
	f.Add([]byte(`{"name":"tiny","labels":["a","a","c"],"segments":2,"input_size":4,"short_side":5,"mean":[0,0,0],"std":[0,1,1e99],"output":"x"}`))
	f.Add([]byte(`{}{}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, in []byte) {
		m := testModel()
		m.SetMetadata(models.ManifestKey, string(in))
		if b, err := m.Marshal(); err == nil {
			if parsed, err := Parse(b); err == nil {
				m = parsed
			}
		}
		man, err := ManifestFromModel(m)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := man.Validate(); err != nil {
			t.Fatalf("accepted manifest does not validate: %v\n%q", err, in)
		}
		if err := man.CheckIO(Tensors(m.Graph.Inputs), Tensors(m.Graph.Outputs)); err != nil {
			t.Fatalf("accepted manifest does not fit the graph: %v", err)
		}
		m2 := testModel()
		if err := EmbedManifest(m2, man); err != nil {
			t.Fatalf("accepted manifest does not embed: %v", err)
		}
		back, err := ManifestFromModel(m2)
		if err != nil {
			t.Fatalf("re-embedded manifest does not read back: %v", err)
		}
		if !reflect.DeepEqual(back, man) {
			t.Fatalf("round trip changed the manifest:\n got %+v\nwant %+v", back, man)
		}
	})
}
