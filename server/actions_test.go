package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/actiond/actiond/ingest"
	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// Labels of the hysteresis table: scores are given for A and B; the rest of
// the probability is shared by C and D, so that neither reaches on.
var tableLabels = []string{"A", "B", "C", "D"}

func TestActionHysteresis(t *testing.T) {
	rules := actionRules{on: 0.6, off: 0.4, consecutive: 2}
	type step struct{ a, b float32 }
	for _, tc := range []struct {
		name  string
		rules actionRules
		steps []step
		// want is the events, window by window: "+A@0" started A with
		// its first window 0, "-A@0-2" ended A started at window 0 whose
		// last window at or above off was window 2, "." nothing.
		want  string
		final string // after the stream is lost: endAll
	}{
		{
			name:  "one window on top is not enough",
			steps: []step{{0.9, 0}, {0.1, 0}, {0.9, 0}, {0.1, 0}},
			want:  ". . . .",
		},
		{
			name:  "k windows on top start it, at the first of them",
			steps: []step{{0.9, 0}, {0.8, 0}, {0.95, 0}},
			want:  ". +A@0 .",
			final: "-A@0-2",
		},
		{
			name:  "below on does not count, even on top",
			steps: []step{{0.55, 0}, {0.59, 0}, {0.6, 0}, {0.6, 0}},
			want:  ". . . +A@2",
			final: "-A@2-3",
		},
		{
			name:  "between off and on keeps it going",
			steps: []step{{0.9, 0}, {0.9, 0}, {0.45, 0}, {0.41, 0}, {0.4, 0}, {0.5, 0}},
			want:  ". +A@0 . . . .",
			final: "-A@0-5",
		},
		{
			name:  "k windows below off end it, at the last window at or above off",
			steps: []step{{0.9, 0}, {0.9, 0}, {0.5, 0}, {0.3, 0}, {0.2, 0}},
			want:  ". +A@0 . . -A@0-2",
		},
		{
			name:  "one window below off is forgiven",
			steps: []step{{0.9, 0}, {0.9, 0}, {0.3, 0}, {0.9, 0}, {0.3, 0}, {0.1, 0}},
			want:  ". +A@0 . . . -A@0-3",
		},
		{
			name:  "a change of label ends the old before the new starts",
			steps: []step{{0.9, 0.05}, {0.9, 0.05}, {0.1, 0.8}, {0.1, 0.8}, {0.1, 0.8}},
			want:  ". +A@0 . -A@0-1 +B@2 .",
			final: "-B@2-4",
		},
		{
			name:  "the run must be unbroken",
			steps: []step{{0.9, 0}, {0.1, 0.7}, {0.9, 0}, {0.1, 0.7}, {0.1, 0.7}},
			want:  ". . . . +B@3",
			final: "-B@3-4",
		},
		{
			name:  "an action that ended can start again",
			steps: []step{{0.9, 0}, {0.9, 0}, {0.1, 0}, {0.1, 0}, {0.9, 0}, {0.9, 0}},
			want:  ". +A@0 . -A@0-1 . +A@4",
			final: "-A@4-5",
		},
		{
			name:  "k of 1 starts and ends at once",
			rules: actionRules{on: 0.6, off: 0.4, consecutive: 1},
			steps: []step{{0.7, 0}, {0.3, 0.65}},
			want:  "+A@0 -A@0-0 +B@1",
			final: "-B@1-1",
		},
		{
			name:  "k of 3",
			rules: actionRules{on: 0.6, off: 0.4, consecutive: 3},
			steps: []step{{0.9, 0}, {0.9, 0}, {0.9, 0}, {0.1, 0}, {0.1, 0}, {0.1, 0}},
			want:  ". . +A@0 . . -A@0-2",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rules
			if r == (actionRules{}) {
				r = rules
			}
			n := 0
			tr := newActionTracker(r, func() string { n++; return fmt.Sprintf("id%d", n) })
			name := func(i int) string { return tableLabels[i] }
			started := map[string]int{} // action id → window
			var got []string
			describe := func(w int, evs []*actiondv1.Event) string {
				var parts []string
				for _, ev := range evs {
					switch k := ev.GetKind().(type) {
					case *actiondv1.Event_ActionStarted:
						a := k.ActionStarted
						first := int(a.GetMediaStart().AsDuration() / time.Second)
						started[a.GetActionId()] = first
						parts = append(parts, fmt.Sprintf("+%s@%d", a.GetLabel(), first))
						if a.GetPeakScore() < r.on {
							t.Errorf("window %d: %s started with peak %v, below on", w, a.GetLabel(), a.GetPeakScore())
						}
					case *actiondv1.Event_ActionEnded:
						a := k.ActionEnded
						first, ok := started[a.GetActionId()]
						if !ok {
							t.Errorf("window %d: %s ended with unknown action id %q", w, a.GetLabel(), a.GetActionId())
						}
						last := int(a.GetMediaEnd().AsDuration()/time.Second) - 1
						if ms := int(a.GetMediaStart().AsDuration() / time.Second); ms != first {
							t.Errorf("ended: media_start window %d, its start said %d", ms, first)
						}
						parts = append(parts, fmt.Sprintf("-%s@%d-%d", a.GetLabel(), first, last))
					}
				}
				if len(parts) == 0 {
					return "."
				}
				return strings.Join(parts, " ")
			}
			for i, s := range tc.steps {
				// Window i spans [i, i+1) s.
				span := ingest.Span{MediaStart: time.Duration(i) * time.Second, MediaEnd: time.Duration(i+1) * time.Second}
				scores := []float32{s.a, s.b, (1 - s.a - s.b) / 2, (1 - s.a - s.b) / 2}
				top := topLabels(scores, nil, 1)[0].Index
				got = append(got, describe(i, tr.observe(span, scores, top, name)))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("events %q, want %q", g, tc.want)
			}
			end := describe(len(tc.steps), tr.endAll(actiondv1.ActionEndReason_ACTION_END_REASON_STREAM_LOST, name))
			if tc.final == "" {
				tc.final = "."
			}
			if end != tc.final {
				t.Errorf("at stream loss: %q, want %q", end, tc.final)
			}
		})
	}
}

// Every event of an action carries what the API promises: the same id in
// ActionStarted and ActionEnded, times from the right windows, peak over
// the whole action, the reason.
func TestActionEventFields(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	tr := newActionTracker(actionRules{on: 0.6, off: 0.4, consecutive: 2}, newActionID)
	name := func(i int) string { return motionLabels[i] }
	var events []*actiondv1.Event
	for i, s := range []float32{0.7, 0.8, 0.95, 0.5, 0.1, 0.1} {
		span := ingest.Span{
			MediaStart: time.Duration(i) * 500 * time.Millisecond, MediaEnd: time.Duration(i)*500*time.Millisecond + 2*time.Second,
			Clock: ingest.ClockRTCP,
		}
		span.AbsStart, span.AbsEnd = t0.Add(span.MediaStart), t0.Add(span.MediaEnd)
		r := (1 - s) / 3
		scores := []float32{r, s, r, r, 0}
		events = append(events, tr.observe(span, scores, topLabels(scores, nil, 1)[0].Index, name)...)
	}
	if len(events) != 2 {
		t.Fatalf("%d events, want started and ended: %v", len(events), events)
	}
	st, en := events[0].GetActionStarted(), events[1].GetActionEnded()
	if st == nil || en == nil {
		t.Fatalf("events %v, want started then ended", events)
	}
	if st.GetActionId() != en.GetActionId() || !strings.HasPrefix(st.GetActionId(), "act_") || len(st.GetActionId()) != 36 {
		t.Errorf("action ids %q and %q, want the same act_ + 32 hex digits", st.GetActionId(), en.GetActionId())
	}
	if st.GetLabel() != "moving_right" || st.GetIndex() != 1 || st.GetPeakScore() != 0.8 || st.GetClock() != actiondv1.Clock_CLOCK_RTCP {
		t.Errorf("started %v: want moving_right (1), peak 0.8 (of the two windows that started it), rtcp", st)
	}
	if st.GetMediaStart().AsDuration() != 0 || !st.GetStartTime().AsTime().Equal(t0) {
		t.Errorf("started at %v (%v), want the first window's start 0s (%v)", st.GetMediaStart().AsDuration(), st.GetStartTime().AsTime(), t0)
	}
	// Window 3 (1.5s..3.5s) is the last at or above off (0.5).
	if en.GetMediaEnd().AsDuration() != 3500*time.Millisecond || !en.GetEndTime().AsTime().Equal(t0.Add(3500*time.Millisecond)) {
		t.Errorf("ended at %v, want 3.5s, the end of the last window at or above off", en.GetMediaEnd().AsDuration())
	}
	if en.GetPeakScore() != 0.95 || en.GetReason() != actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED {
		t.Errorf("ended: peak %v reason %v, want 0.95 over the whole action, SCORE_DROPPED", en.GetPeakScore(), en.GetReason())
	}
}

var motionLabels = []string{"moving_left", "moving_right", "moving_up", "moving_down", "still"}

func TestTopLabelsAllowlist(t *testing.T) {
	scores := []float32{0.1, 0.5, 0.05, 0.3, 0.05}
	got := topLabels(scores, []int{0, 3, 4}, 2)
	if len(got) != 2 || got[0].Index != 3 || got[1].Index != 0 || got[0].Score != 0.3 {
		t.Errorf("top 2 of {0,3,4}: %v, want index 3 (0.3) then 0 (0.1): scores stay the model's", got)
	}
}
