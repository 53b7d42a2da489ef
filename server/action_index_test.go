package server

import (
	"errors"
	"slices"
	"testing"
	"time"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// ListActions' filters and paging over the index: streams, labels, the
// start time range, the peak score; newest start first; pages that follow
// their tokens list every action once; bad requests name the field.
func TestActionIndexList(t *testing.T) {
	x := newActionIndex()
	t0 := time.Date(2026, 12, 4, 14, 0, 0, 0, time.UTC)
	var pos uint64
	add := func(id, stream, label string, at time.Duration, peak float32, ended bool) {
		pos++
		x.add(&actiondv1.Event{Stream: stream, Position: pos, Logged: true, Kind: &actiondv1.Event_ActionStarted{ActionStarted: &actiondv1.ActionStarted{
			ActionId: id, Label: label, StartTime: timestamppb.New(t0.Add(at)), PeakScore: peak}}})
		if ended {
			pos++
			x.add(&actiondv1.Event{Stream: stream, Position: pos, Logged: true, Kind: &actiondv1.Event_ActionEnded{ActionEnded: &actiondv1.ActionEnded{
				ActionId: id, Label: label, StartTime: timestamppb.New(t0.Add(at)), EndTime: timestamppb.New(t0.Add(at + time.Minute)),
				PeakScore: peak + 0.1, Reason: actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED}}})
		}
	}
	add("a", "dock-3", "welding", 0, 0.7, true)
	add("b", "dock-3", "lifting", time.Hour, 0.8, true)
	add("c", "gate", "welding", 2*time.Hour, 0.6, true)
	add("d", "gate", "welding", 3*time.Hour, 0.9, false)

	ids := func(req *actiondv1.ListActionsRequest) []string {
		t.Helper()
		got, _, err := x.list(req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range got {
			out = append(out, a.GetActionId())
		}
		return out
	}
	for name, tc := range map[string]struct {
		req  *actiondv1.ListActionsRequest
		want []string
	}{
		"all, newest first": {&actiondv1.ListActionsRequest{}, []string{"d", "c", "b", "a"}},
		"stream":            {&actiondv1.ListActionsRequest{Streams: []string{"dock-3"}}, []string{"b", "a"}},
		"label":             {&actiondv1.ListActionsRequest{Labels: []string{"welding"}}, []string{"d", "c", "a"}},
		"time range":        {&actiondv1.ListActionsRequest{StartTime: timestamppb.New(t0.Add(time.Hour)), EndTime: timestamppb.New(t0.Add(3 * time.Hour))}, []string{"c", "b"}},
		"peak (the end's)":  {&actiondv1.ListActionsRequest{MinPeakScore: 0.8}, []string{"d", "b", "a"}},
	} {
		if got := ids(tc.req); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	if a := x.get("d"); !a.GetOpen() || a.GetEndPosition() != 0 {
		t.Errorf("d: %v, want open", a)
	}
	if a := x.get("a"); a.GetOpen() || a.GetEndReason() != actiondv1.ActionEndReason_ACTION_END_REASON_SCORE_DROPPED || a.GetStartPosition() != 1 || a.GetEndPosition() != 2 {
		t.Errorf("a: %v", a)
	}

	var paged []string
	req := &actiondv1.ListActionsRequest{PageSize: 3}
	for {
		page, next, err := x.list(req)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			paged = append(paged, a.GetActionId())
		}
		if next == "" {
			break
		}
		req.PageToken = next
	}
	if !slices.Equal(paged, []string{"d", "c", "b", "a"}) {
		t.Errorf("pages of 3: %v", paged)
	}

	for _, bad := range []*actiondv1.ListActionsRequest{
		{PageSize: 1001}, {PageToken: "garbage!"}, {Streams: []string{"a b"}},
		{StartTime: timestamppb.New(t0), EndTime: timestamppb.New(t0)},
	} {
		_, _, err := x.list(bad)
		var fe FieldErrors
		if !errors.As(err, &fe) {
			t.Errorf("%v: %v, want a field error", bad, err)
		}
	}

	// What the log no longer keeps leaves the index.
	x.forgetBefore(5)
	if x.get("a") != nil || x.get("b") != nil || x.get("c") == nil {
		t.Errorf("after forgetting before 5: a %v, b %v, c %v", x.get("a"), x.get("b"), x.get("c"))
	}
}
