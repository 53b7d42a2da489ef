package server

import (
	"fmt"
	"math"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// subscription is one Subscribe call as the hub sees it: what it wants and
// where its events wait.
type subscription struct {
	filter subscriptionFilter
	queue  *subscriberQueue
	// seam is the newest log position when the hub took the subscription:
	// every event after it reaches the queue (unless dropped).
	seam uint64
}

// subscriptionFilter is a SubscribeRequest, checked. A nil set passes all.
type subscriptionFilter struct {
	streams  map[string]bool
	labels   map[string]bool
	minScore float32
	kinds    map[actiondv1.EventKind]bool
}

// newSubscriptionFilter checks req against the model's labels.
func newSubscriptionFilter(req *actiondv1.SubscribeRequest, labels []string) (subscriptionFilter, error) {
	var f subscriptionFilter
	var errs FieldErrors
	if len(req.GetStreams()) > 0 {
		f.streams = map[string]bool{}
		for i, s := range req.GetStreams() {
			if !streamName.MatchString(s) {
				errs.add(fmt.Sprintf("streams[%d]", i), fmt.Sprintf("%q is not a stream name (1 to 64 letters, digits, '.', '-' or '_')", s))
			}
			f.streams[s] = true
		}
	}
	if len(req.GetLabels()) > 0 {
		known := map[string]bool{}
		for _, l := range labels {
			known[l] = true
		}
		f.labels = map[string]bool{}
		for i, l := range req.GetLabels() {
			if !known[l] {
				errs.add(fmt.Sprintf("labels[%d]", i), fmt.Sprintf("%q is not a label of the model (GetModel lists them)", l))
			}
			f.labels[l] = true
		}
	}
	if m := req.GetMinScore(); m < 0 || m > 1 || math.IsNaN(float64(m)) {
		errs.add("min_score", fmt.Sprintf("must be between 0 and 1, got %v", m))
	}
	f.minScore = req.GetMinScore()
	if len(req.GetKinds()) > 0 {
		f.kinds = map[actiondv1.EventKind]bool{}
		for i, k := range req.GetKinds() {
			if _, named := actiondv1.EventKind_name[int32(k)]; !named || k == actiondv1.EventKind_EVENT_KIND_UNSPECIFIED {
				errs.add(fmt.Sprintf("kinds[%d]", i), fmt.Sprintf("%v is not an event kind: use EVENT_KIND_WINDOW_RESULT, EVENT_KIND_ACTION_STARTED, EVENT_KIND_ACTION_ENDED or EVENT_KIND_STREAM_STATUS", k))
			}
			f.kinds[k] = true
		}
	}
	return f, errs.err()
}

// apply returns ev as this subscriber gets it, or nil when the filter leaves
// it out. ev is shared between subscribers and never changed: a WindowResult
// whose labels are filtered is copied.
func (f *subscriptionFilter) apply(ev *actiondv1.Event) *actiondv1.Event {
	if f.streams != nil && !f.streams[ev.GetStream()] {
		return nil
	}
	var kind actiondv1.EventKind
	switch k := ev.GetKind().(type) {
	case *actiondv1.Event_WindowResult:
		kind = actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT
		if f.labels != nil || f.minScore > 0 {
			if f.kinds != nil && !f.kinds[kind] {
				return nil
			}
			return f.window(ev, k.WindowResult)
		}
	case *actiondv1.Event_ActionStarted:
		kind = actiondv1.EventKind_EVENT_KIND_ACTION_STARTED
		if f.labels != nil && !f.labels[k.ActionStarted.GetLabel()] {
			return nil
		}
	case *actiondv1.Event_ActionEnded:
		kind = actiondv1.EventKind_EVENT_KIND_ACTION_ENDED
		if f.labels != nil && !f.labels[k.ActionEnded.GetLabel()] {
			return nil
		}
	case *actiondv1.Event_StreamStatus:
		kind = actiondv1.EventKind_EVENT_KIND_STREAM_STATUS
	}
	if f.kinds != nil && !f.kinds[kind] {
		return nil
	}
	return ev
}

// window filters a WindowResult's labels.
func (f *subscriptionFilter) window(ev *actiondv1.Event, w *actiondv1.WindowResult) *actiondv1.Event {
	var top []*actiondv1.LabelScore
	for _, l := range w.GetTop() {
		if (f.labels == nil || f.labels[l.GetLabel()]) && l.GetScore() >= f.minScore {
			top = append(top, l)
		}
	}
	if len(top) == 0 {
		return nil
	}
	if len(top) == len(w.GetTop()) {
		return ev
	}
	cp := &actiondv1.WindowResult{
		MediaStart:       w.MediaStart,
		MediaEnd:         w.MediaEnd,
		StartTime:        w.StartTime,
		EndTime:          w.EndTime,
		Clock:            w.Clock,
		Epoch:            w.Epoch,
		Top:              top,
		InferenceLatency: w.InferenceLatency,
		Untrained:        w.Untrained,
		Model:            w.Model,
		CompletedTime:    w.CompletedTime,
		Reused:           w.Reused,
	}
	return &actiondv1.Event{Stream: ev.Stream, Sequence: ev.Sequence, Position: ev.Position, Logged: ev.Logged, Fence: ev.Fence,
		Kind: &actiondv1.Event_WindowResult{WindowResult: cp}}
}
