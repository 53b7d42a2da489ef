package fleet

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A node of the next minor release writes records with fields this one
// does not know: they are read, the unknown fields ignored (the formats
// only ever grow).
func TestRecordsOfANewerFormatAreRead(t *testing.T) {
	n, err := decodeNode([]byte(`{"version":2,"name":"n9","instance":"ab","address":"10.0.0.9:50051",
		"streams":["dock-3"],"load":{"cpu":0.5,"inference":0.25,"gpu":0.1},"draining":true,
		"time":"2026-12-04T10:00:00Z","zone":"eu-1"}`))
	if err != nil || n.Name != "n9" || !n.Draining || n.Load.CPU != 0.5 || len(n.Streams) != 1 {
		t.Errorf("node %+v, %v", n, err)
	}
	l, err := decodeLease([]byte(`{"version":2,"node":"n9","instance":"ab","fence":42,"time":"2026-12-04T10:00:00Z","priority":3}`))
	if err != nil || l.Node != "n9" || l.Fence != 42 {
		t.Errorf("lease %+v, %v", l, err)
	}
	for _, bad := range []string{`{}`, `{"version":1}`, `not json`} {
		if _, err := decodeNode([]byte(bad)); err == nil {
			t.Errorf("node record %s accepted", bad)
		}
		if _, err := decodeLease([]byte(bad)); err == nil {
			t.Errorf("lease record %s accepted", bad)
		}
	}
}

// The previous minor release read records with json.Unmarshal into its
// own struct (previousNode): today's records, with fields it does not
// know, read the same for it; and a heartbeat it wrote, without them,
// reads here.
func TestRecordsAcrossThePreviousRelease(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	cur := Node{Version: FormatVersion, Name: "n1", Instance: "ab", Address: "10.0.0.1:50051", ServerVersion: "v0.9.0",
		Streams: []string{"dock-3"}, MaxStreams: 4, Load: Load{CPU: 0.5}, Draining: true,
		Status: map[string]json.RawMessage{"dock-3": json.RawMessage(`{"state":"STREAM_STATE_PLAYING"}`)}, Time: now}
	b, err := encodeNode(cur, false)
	if err != nil {
		t.Fatal(err)
	}
	var old previousNode
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatalf("the previous release cannot read a heartbeat of today: %v", err)
	}
	if old.Name != "n1" || old.Address != cur.Address || old.MaxStreams != 4 || !old.Draining || !old.Time.Equal(now) || len(old.Streams) != 1 {
		t.Errorf("the previous release reads %+v", old)
	}
	b, err = encodeNode(cur, true)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "status") {
		t.Errorf("the previous release's heartbeat has a status: %s", b)
	}
	n, err := decodeNode(b)
	if err != nil || n.Name != "n1" || n.Status != nil || !n.Draining || len(n.Streams) != 1 {
		t.Errorf("a heartbeat of the previous release reads %+v, %v", n, err)
	}
}
