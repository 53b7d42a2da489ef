package fleet

import "testing"

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
