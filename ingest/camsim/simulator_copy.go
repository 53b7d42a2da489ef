package camsim

import (
	"fmt"
	"log/slog"
)

// AddCopy serves at rtsp://ADDR/name the clip that the served path from
// plays (a file or a scene), without encoding it again: many cameras for
// the price of one encoding (the soak's eight). The copy is a camera of its
// own: it keeps its own schedule, timestamps and sequence numbers, and
// breaks (DropConnections, Stall, …) on its own.
func (s *Simulator) AddCopy(name, from string) error {
	if err := s.checkAdd(name); err != nil {
		return fmt.Errorf("add copy of %q: %w", from, err)
	}
	p := s.path(from)
	if p == nil || p.clip == nil {
		// A published path has no clip: it relays what arrives.
		return fmt.Errorf("add copy of %q: %w (or not served by the simulator)", from, ErrSimPathNotFound)
	}
	// The clip is read-only once encoded: its paths share it.
	return s.addClip(name, p.clip, slog.String("copy_of", from))
}
