package eventlog

import (
	"strings"

	actiondv1 "github.com/actiond/actiond/proto/actiond/v1"
)

// StreamName is the JetStream stream that holds every event.
const StreamName = "ACTIOND_EVENTS"

// SubjectPrefix begins every event's subject:
// actiond.events.<stream>.<kind>.
const SubjectPrefix = "actiond.events."

// The kinds of event, the last token of a subject.
const (
	KindWindow  = "window"
	KindStarted = "started"
	KindEnded   = "ended"
	KindStatus  = "status"
)

// Kinds lists every kind, in the order of actiondv1.EventKind.
var Kinds = []string{KindWindow, KindStarted, KindEnded, KindStatus}

// Subject returns the subject of an event of kind on the named stream.
// Stream names may contain '.', which NATS reads as a token separator, so
// the name is written with '.' as "%2E" ('%' is not allowed in a stream
// name, so the encoding cannot be ambiguous). stream may be "*" (any).
func Subject(stream, kind string) string {
	return SubjectPrefix + strings.ReplaceAll(stream, ".", "%2E") + "." + kind
}

// ParseSubject splits a subject made by Subject; ok is false for any other.
func ParseSubject(subject string) (stream, kind string, ok bool) {
	rest, found := strings.CutPrefix(subject, SubjectPrefix)
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 0 || i == len(rest)-1 || strings.Contains(rest[:i], ".") {
		return "", "", false
	}
	return strings.ReplaceAll(rest[:i], "%2E", "."), rest[i+1:], true
}

// KindOf returns the kind of ev as a subject token; "" for an event that
// is not logged (Dropped, or none).
func KindOf(ev *actiondv1.Event) string {
	switch ev.GetKind().(type) {
	case *actiondv1.Event_WindowResult:
		return KindWindow
	case *actiondv1.Event_ActionStarted:
		return KindStarted
	case *actiondv1.Event_ActionEnded:
		return KindEnded
	case *actiondv1.Event_StreamStatus:
		return KindStatus
	}
	return ""
}

// KindName returns the subject token of an EventKind; "" for none.
func KindName(k actiondv1.EventKind) string {
	switch k {
	case actiondv1.EventKind_EVENT_KIND_WINDOW_RESULT:
		return KindWindow
	case actiondv1.EventKind_EVENT_KIND_ACTION_STARTED:
		return KindStarted
	case actiondv1.EventKind_EVENT_KIND_ACTION_ENDED:
		return KindEnded
	case actiondv1.EventKind_EVENT_KIND_STREAM_STATUS:
		return KindStatus
	}
	return ""
}

// FilterSubjects returns the subjects that select events of the given
// streams and kinds (empty: all of them).
func FilterSubjects(streams, kinds []string) []string {
	if len(streams) == 0 {
		streams = []string{"*"}
	}
	if len(kinds) == 0 {
		if len(streams) == 1 && streams[0] == "*" {
			return []string{SubjectPrefix + ">"}
		}
		kinds = []string{"*"}
	}
	var out []string
	for _, s := range streams {
		for _, k := range kinds {
			out = append(out, Subject(s, k))
		}
	}
	return out
}
