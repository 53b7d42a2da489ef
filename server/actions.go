package server

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/actiond/actiond/ingest"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// actionRules are a stream's hysteresis settings.
type actionRules struct {
	on, off     float32
	consecutive int
}

// actionTracker turns a stream's window scores into ActionStarted and
// ActionEnded events by hysteresis: a label starts once it has been on top
// at or above on for consecutive windows in a row, and ends once it has
// scored below off for consecutive windows in a row (or the stream is lost
// or removed). Several actions may be open at once (a label can start while
// an older one has not fallen below off yet). It is owned by the hub's
// goroutine.
type actionTracker struct {
	rules actionRules
	// newID returns a fresh action id.
	newID func() string

	// The run of windows with the same label on top at or above on.
	run struct {
		label int // -1: none
		n     int
		first ingest.Span
		peak  float32
	}
	open []*openAction // in the order they started
}

// openAction is an action that started and has not ended.
type openAction struct {
	id    string
	label int
	start ingest.Span
	peak  float32
	// below counts windows in a row that scored the label below off.
	below int
	// last is the last window that scored the label at or above off.
	last ingest.Span
}

func newActionTracker(rules actionRules, newID func() string) *actionTracker {
	t := &actionTracker{rules: rules, newID: newID}
	t.run.label = -1
	return t
}

// observe takes one window: its span, its scores over all labels and the
// label on top (among the allowed ones) with its score. It returns the
// events the window causes, ended actions first. labelName names labels.
func (t *actionTracker) observe(w ingest.Span, scores []float32, top int, labelName func(int) string) []*actiondv1.Event {
	var events []*actiondv1.Event
	// End first: a change of label reads as "A ended, B started".
	kept := t.open[:0]
	for _, a := range t.open {
		s := scores[a.label]
		if s >= t.rules.off {
			a.below, a.last = 0, w
			a.peak = max(a.peak, s)
			kept = append(kept, a)
			continue
		}
		a.below++
		if a.below < t.rules.consecutive {
			kept = append(kept, a)
			continue
		}
		events = append(events, a.ended(labelName(a.label), actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED))
	}
	clear(t.open[len(kept):])
	t.open = kept

	if top < 0 || scores[top] < t.rules.on {
		t.run.label, t.run.n = -1, 0
		return events
	}
	if t.run.label != top {
		t.run.label, t.run.n, t.run.first, t.run.peak = top, 0, w, 0
	}
	t.run.n++
	t.run.peak = max(t.run.peak, scores[top])
	if t.run.n < t.rules.consecutive || t.isOpen(top) {
		return events
	}
	a := &openAction{id: t.newID(), label: top, start: t.run.first, peak: t.run.peak, last: w}
	t.open = append(t.open, a)
	events = append(events, &actiondv1.Event{Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{
		ActionId:   a.id,
		Label:      labelName(top),
		Index:      int32(top),
		MediaStart: durationpb.New(a.start.MediaStart),
		StartTime:  timestamppb.New(a.start.AbsStart),
		Clock:      clockProto(a.start.Clock),
		PeakScore:  a.peak,
	}}})
	return events
}

func (t *actionTracker) isOpen(label int) bool {
	for _, a := range t.open {
		if a.label == label {
			return true
		}
	}
	return false
}

// endAll ends every open action for reason (the stream was lost or
// removed) and forgets the current run.
func (t *actionTracker) endAll(reason actiondv1.ActionEndReason, labelName func(int) string) []*actiondv1.Event {
	var events []*actiondv1.Event
	for _, a := range t.open {
		events = append(events, a.ended(labelName(a.label), reason))
	}
	clear(t.open)
	t.open = t.open[:0]
	t.resetRun()
	return events
}

// resetRun forgets the run of windows towards a start (a new epoch: the
// next window does not follow the last one).
func (t *actionTracker) resetRun() { t.run.label, t.run.n = -1, 0 }

func (a *openAction) ended(label string, reason actiondv1.ActionEndReason) *actiondv1.Event {
	return &actiondv1.Event{Kind: &actiondv1.Event_ActionEnded{ActionEnded: &actiondv1.ActionEnded{
		ActionId:   a.id,
		Label:      label,
		Index:      int32(a.label),
		MediaStart: durationpb.New(a.start.MediaStart),
		MediaEnd:   durationpb.New(a.last.MediaEnd),
		StartTime:  timestamppb.New(a.start.AbsStart),
		EndTime:    timestamppb.New(a.last.AbsEnd),
		Clock:      clockProto(a.last.Clock),
		PeakScore:  a.peak,
		Reason:     reason,
	}}}
}

// newActionID returns an id no server has used: 128 random bits.
func newActionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "act_" + hex.EncodeToString(b[:])
}
