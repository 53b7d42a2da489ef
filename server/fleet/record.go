package fleet

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// FormatVersion is the version of the heartbeat and lease records this
// package writes. Within a version, changes are additive: a field is only
// ever added, with omitempty, and a reader ignores the fields it does not
// know (json.Unmarshal), so nodes one minor release apart work in one
// fleet; a node must also work with a record that lacks the newest fields
// (the previous release's). A change that is not additive (a field
// renamed, removed or given another meaning) bumps it and takes a major
// release: a fleet runs one major release at a time.
const FormatVersion = 1

// Load is a node's own measure of how busy it is, each 0..1 (or more when
// oversubscribed).
type Load struct {
	// CPU is the process's CPU use as a fraction of the cores it may use.
	CPU float64 `json:"cpu"`
	// Inference is the fraction of time the model runner was busy.
	Inference float64 `json:"inference"`
}

// Node is one node's heartbeat record, the value of its key in the nodes
// bucket.
type Node struct {
	Version int `json:"version"`
	// Name is the node's node.name, unique in the fleet.
	Name string `json:"name"`
	// Instance tells two processes with the same name apart.
	Instance string `json:"instance"`
	// Address is where the node's gRPC API listens, as clients reach it.
	Address string `json:"address,omitempty"`
	// ServerVersion is the actiond release the node runs.
	ServerVersion string `json:"server_version,omitempty"`
	// Streams are the streams the node owns, sorted.
	Streams []string `json:"streams"`
	// MaxStreams is the node's cap (fleet.max_streams_per_node), 0 for none.
	MaxStreams int  `json:"max_streams,omitempty"`
	Load       Load `json:"load"`
	Draining   bool `json:"draining,omitempty"`
	// Status is each owned stream's status as the node's stream manager
	// describes it (Config.Status), opaque here: any node answers
	// GetStream for a remote stream from it, at most a heartbeat old.
	Status map[string]json.RawMessage `json:"status,omitempty"`
	// Time is when the node wrote this heartbeat.
	Time time.Time `json:"time"`
}

// previousNode is the heartbeat exactly as the previous minor release
// wrote it (format 1 before Status was added); a node started with
// Config.Previous writes it, for the tests of a fleet in a rolling
// upgrade. When a field is added to Node, this becomes a copy of Node
// without that field.
type previousNode struct {
	Version       int       `json:"version"`
	Name          string    `json:"name"`
	Instance      string    `json:"instance"`
	Address       string    `json:"address,omitempty"`
	ServerVersion string    `json:"server_version,omitempty"`
	Streams       []string  `json:"streams"`
	MaxStreams    int       `json:"max_streams,omitempty"`
	Load          Load      `json:"load"`
	Draining      bool      `json:"draining,omitempty"`
	Time          time.Time `json:"time"`
}

// encodeNode is n as this node writes it: the current format, or the
// previous release's with Config.Previous.
func encodeNode(n Node, previous bool) ([]byte, error) {
	if previous {
		return json.Marshal(previousNode{Version: n.Version, Name: n.Name, Instance: n.Instance, Address: n.Address,
			ServerVersion: n.ServerVersion, Streams: n.Streams, MaxStreams: n.MaxStreams, Load: n.Load,
			Draining: n.Draining, Time: n.Time})
	}
	return json.Marshal(n)
}

// lease is the value of a stream's key in the leases bucket.
type lease struct {
	Version int    `json:"version"`
	Node    string `json:"node"`
	// Instance is the owning process (Node.Instance).
	Instance string `json:"instance"`
	// Fence is the revision at which the lease was claimed; 0 in the claim
	// itself, whose own revision is the fence.
	Fence uint64    `json:"fence,omitempty"`
	Time  time.Time `json:"time"`
}

func decodeNode(b []byte) (Node, error) {
	var n Node
	if err := json.Unmarshal(b, &n); err != nil {
		return Node{}, fmt.Errorf("decode node record: %w", err)
	}
	if n.Version < 1 || n.Name == "" {
		return Node{}, fmt.Errorf("decode node record: version %d, name %q", n.Version, n.Name)
	}
	return n, nil
}

func decodeLease(b []byte) (lease, error) {
	var l lease
	if err := json.Unmarshal(b, &l); err != nil {
		return lease{}, fmt.Errorf("decode lease record: %w", err)
	}
	if l.Version < 1 || l.Node == "" {
		return lease{}, fmt.Errorf("decode lease record: version %d, node %q", l.Version, l.Node)
	}
	return l, nil
}

// streamKey is a stream's key in the leases bucket. Stream names are
// [A-Za-z0-9._-]; KV keys treat dots as separators (no leading, trailing or
// double dot), so a dot is written as "=2E" ('=' never occurs in a name).
func streamKey(stream string) string {
	return strings.ReplaceAll(stream, ".", "=2E")
}

func keyStream(key string) string {
	return strings.ReplaceAll(key, "=2E", ".")
}
