package sink

import (
	"strings"
)

// The event log's layout (server/eventlog): one JetStream stream whose
// subjects are actiond.events.<stream>.<kind>, '.' in a stream name
// written %2E.
const (
	logStream     = "ACTIOND_EVENTS"
	subjectPrefix = "actiond.events."
)

// subject is the log subject of a stream's events of kind; stream may be
// "*".
func subject(stream, kind string) string {
	return subjectPrefix + strings.ReplaceAll(stream, ".", "%2E") + "." + kind
}

// parseSubject returns the stream and kind of a log subject.
func parseSubject(subj string) (stream, kind string, ok bool) {
	rest, ok := strings.CutPrefix(subj, subjectPrefix)
	if !ok {
		return "", "", false
	}
	tok, kind, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(kind, ".") {
		return "", "", false
	}
	return strings.ReplaceAll(tok, "%2E", "."), kind, true
}
