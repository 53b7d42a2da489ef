package server

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
	"google.golang.org/protobuf/proto"
)

// actionIndex is every action the event log keeps, by id, built from its
// ActionStarted and ActionEnded events: what HistoryService answers from.
// The hub adds to it as it appends; it is safe for concurrent use.
type actionIndex struct {
	mu   sync.Mutex
	byID map[string]*actiondv1.Action
}

func newActionIndex() *actionIndex { return &actionIndex{byID: map[string]*actiondv1.Action{}} }

// add records a logged ActionStarted or ActionEnded; others are ignored.
func (x *actionIndex) add(ev *actiondv1.Event) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch k := ev.GetKind().(type) {
	case *actiondv1.Event_ActionStarted:
		s := k.ActionStarted
		a := x.byID[s.GetActionId()]
		if a == nil {
			a = &actiondv1.Action{ActionId: s.GetActionId(), Open: true}
			x.byID[s.GetActionId()] = a
		}
		a.Stream, a.Label, a.Index = ev.GetStream(), s.GetLabel(), s.GetIndex()
		a.MediaStart, a.StartTime, a.Clock = s.GetMediaStart(), s.GetStartTime(), s.GetClock()
		a.PeakScore = max(a.PeakScore, s.GetPeakScore())
		a.StartPosition = ev.GetPosition()
	case *actiondv1.Event_ActionEnded:
		e := k.ActionEnded
		a := x.byID[e.GetActionId()]
		if a == nil {
			// Its start is no longer kept: what the end says is all there is.
			a = &actiondv1.Action{ActionId: e.GetActionId(), Stream: ev.GetStream(), Label: e.GetLabel(), Index: e.GetIndex(),
				MediaStart: e.GetMediaStart(), StartTime: e.GetStartTime(), Clock: e.GetClock()}
			x.byID[e.GetActionId()] = a
		}
		a.MediaEnd, a.EndTime = e.GetMediaEnd(), e.GetEndTime()
		a.PeakScore = max(a.PeakScore, e.GetPeakScore())
		a.EndReason = e.GetReason()
		a.EndPosition = ev.GetPosition()
		a.Open = false
	}
}

// setSnapshot records whether the action has a snapshot; an action not
// known yet gets its entry when its start is added.
func (x *actionIndex) setSnapshot(id string, has bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := x.byID[id]
	if a == nil {
		a = &actiondv1.Action{ActionId: id, Open: true}
		x.byID[id] = a
	}
	a.HasSnapshot = has
}

// get returns a copy of the action; nil when there is none.
func (x *actionIndex) get(id string) *actiondv1.Action {
	x.mu.Lock()
	defer x.mu.Unlock()
	a := x.byID[id]
	if a == nil || a.Stream == "" {
		return nil
	}
	return proto.CloneOf(a)
}

func (x *actionIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.byID)
}

// openActions returns copies of the actions not ended.
func (x *actionIndex) openActions() []*actiondv1.Action {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []*actiondv1.Action
	for _, a := range x.byID {
		if a.Open && a.Stream != "" {
			out = append(out, proto.CloneOf(a))
		}
	}
	slices.SortFunc(out, func(a, b *actiondv1.Action) int { return cmp.Compare(a.StartPosition, b.StartPosition) })
	return out
}

// forgetBefore drops the actions whose events the log no longer keeps:
// both ends (or the start of an open one) older than first.
func (x *actionIndex) forgetBefore(first uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, a := range x.byID {
		last := max(a.StartPosition, a.EndPosition)
		if a.Stream != "" && last < first {
			delete(x.byID, id)
		}
	}
}

// list answers ListActions: the actions that pass req's filters, newest
// start first, one page.
func (x *actionIndex) list(req *actiondv1.ListActionsRequest) ([]*actiondv1.Action, string, error) {
	var errs FieldErrors
	size := int(req.GetPageSize())
	switch {
	case size == 0:
		size = 50
	case size > 1000:
		errs.add("page_size", fmt.Sprintf("must be at most 1000, got %d", size))
	}
	var after *pageKey
	if t := req.GetPageToken(); t != "" {
		k, err := parsePageToken(t)
		if err != nil {
			errs.add("page_token", "not a token this server gave (pass next_page_token as it came)")
		}
		after = &k
	}
	for i, s := range req.GetStreams() {
		if !streamName.MatchString(s) {
			errs.add(fmt.Sprintf("streams[%d]", i), fmt.Sprintf("%q is not a stream name (1 to 64 letters, digits, '.', '-' or '_')", s))
		}
	}
	if s, e := req.GetStartTime(), req.GetEndTime(); s != nil && e != nil && !e.AsTime().After(s.AsTime()) {
		errs.add("end_time", "must be after start_time")
	}
	if err := errs.err(); err != nil {
		return nil, "", err
	}
	streams, labels := setOf(req.GetStreams()), setOf(req.GetLabels())
	x.mu.Lock()
	var out []*actiondv1.Action
	for _, a := range x.byID {
		if a.Stream == "" ||
			(streams != nil && !streams[a.Stream]) || (labels != nil && !labels[a.Label]) ||
			a.PeakScore < req.GetMinPeakScore() {
			continue
		}
		t := a.GetStartTime().AsTime()
		if (req.GetStartTime() != nil && t.Before(req.GetStartTime().AsTime())) ||
			(req.GetEndTime() != nil && !t.Before(req.GetEndTime().AsTime())) {
			continue
		}
		k := keyOf(a)
		if after != nil && !k.after(*after) {
			continue
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *actiondv1.Action) int { return keyOf(b).compare(keyOf(a)) })
	next := ""
	if len(out) > size {
		out = out[:size]
		next = keyOf(out[size-1]).token()
	}
	for i, a := range out {
		out[i] = proto.CloneOf(a)
	}
	x.mu.Unlock()
	return out, next, nil
}

func setOf(names []string) map[string]bool {
	if len(names) == 0 {
		return nil
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// pageKey orders actions for paging: by start time, then position.
type pageKey struct {
	nanos int64
	pos   uint64
}

func keyOf(a *actiondv1.Action) pageKey {
	return pageKey{nanos: a.GetStartTime().AsTime().UnixNano(), pos: a.GetStartPosition()}
}

func (k pageKey) compare(o pageKey) int {
	if c := cmp.Compare(k.nanos, o.nanos); c != 0 {
		return c
	}
	return cmp.Compare(k.pos, o.pos)
}

// after says whether k comes after o in the listing (newest first): k is
// older.
func (k pageKey) after(o pageKey) bool { return k.compare(o) < 0 }

func (k pageKey) token() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d", k.nanos, k.pos))
}

func parsePageToken(t string) (pageKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return pageKey{}, err
	}
	a, c, ok := strings.Cut(string(b), ".")
	if !ok {
		return pageKey{}, fmt.Errorf("bad page token")
	}
	n, err1 := strconv.ParseInt(a, 10, 64)
	p, err2 := strconv.ParseUint(c, 10, 64)
	if err1 != nil || err2 != nil {
		return pageKey{}, fmt.Errorf("bad page token")
	}
	return pageKey{nanos: n, pos: p}, nil
}
