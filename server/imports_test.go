package server

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/actiond/actiond/internal/testenv"
)

// The server process reads model files through ONNX Runtime only (engine):
// the ONNX reader/writer and the model builders are the tools' (DESIGN.md,
// Packages), and none of server/... may pull them in, even indirectly.
func TestServerImportsNoModelTools(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(testenv.Tool(t, "go"), "list", "-deps", "./...").Output()
	if err != nil {
		t.Fatalf("go list -deps ./...: %v", err)
	}
	const models = "github.com/actiond/actiond/models/"
	for pkg := range strings.FieldsSeq(string(out)) {
		for _, banned := range []string{"onnx", "motion", "pptsmv2"} {
			if pkg == models+banned || strings.HasPrefix(pkg, models+banned+"/") {
				t.Errorf("server/... imports %s (go list -deps ./... in server/)", pkg)
			}
		}
	}
}
