package bench

import (
	"strings"

	"github.com/actiond/actiond/cmd/internal/fleetsim"
)

// keepFleetSection carries the fleet simulation's section (cmd/fleetsim,
// run on its own) from the old BENCHMARKS.md into the new one.
func keepFleetSection(old, new string) string {
	i, j := strings.Index(old, fleetsim.SectionBegin), strings.Index(old, fleetsim.SectionEnd)
	if i < 0 || j < i {
		return new
	}
	body := strings.TrimSpace(old[i+len(fleetsim.SectionBegin) : j])
	return fleetsim.ReplaceSection(new, body)
}
