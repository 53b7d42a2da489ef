package bench

import (
	"strings"
	"testing"

	"github.com/actiond/actiond/cmd/internal/fleetsim"
)

// make bench rewrites BENCHMARKS.md whole; the fleet simulation's section,
// written by cmd/fleetsim on its own, survives it.
func TestKeepFleetSection(t *testing.T) {
	old := fleetsim.ReplaceSection("# Benchmarks\n\nold figures\n\n## Reproduce\n\nmake bench\n", "## Fleet\n\nsimulated")
	got := keepFleetSection(old, "# Benchmarks\n\nnew figures\n\n## Reproduce\n\nmake bench\n")
	if !strings.Contains(got, "new figures") || !strings.Contains(got, "## Fleet\n\nsimulated\n\n"+fleetsim.SectionEnd+"\n\n## Reproduce") {
		t.Errorf("got:\n%s", got)
	}
	if got := keepFleetSection("# none", "# new"); got != "# new" {
		t.Errorf("without a section: %q", got)
	}
}
