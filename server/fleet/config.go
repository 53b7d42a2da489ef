package fleet

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go"
)

// Handler is the stream manager's side of ownership. The fleet calls
// Acquire from the goroutine that also renews the leases: it must return
// well within a tenth of a lease (and not wait for a Release), or the
// node's other leases go unrenewed. Release runs on a goroutine of its
// own, beside other Releases and Acquires of other streams, and may take
// long (a camera slow to hang up); a stream is not acquired again here
// before its Release has returned.
type Handler interface {
	// Acquire starts playing stream, which this node now owns; every event
	// of this ownership carries fence. It starts the stream's supervisor
	// and returns; it does not wait for the camera.
	Acquire(stream string, fence uint64)
	// Release stops stream and returns once it has stopped (its source
	// closed, no more events published): the fleet lets another node
	// claim the stream only after Release returns (or, when this node
	// lost NATS, after the lease expires). It stops; it does not drain.
	Release(stream string)
	// Cut hangs up stream's camera at once, without waiting for anything
	// (a socket closed on the caller's goroutine), when this node is
	// losing the stream's lease: it could not renew it (called before the
	// lease can expire) or another node holds it. The fleet calls it on
	// the renewing goroutine, then Release as for any stop; a graceful
	// hand-over (a drain, a move) calls Release alone.
	Cut(stream string)
}

// Config configures one node's membership in a fleet.
type Config struct {
	// Conn is the connection to the fleet's NATS; the caller owns it. Required.
	Conn *nats.Conn
	// Fleet is the fleet's name (fleet.name): nodes with the same name on
	// one NATS form one fleet. It defaults to "actiond".
	Fleet string
	// Node is this node's name (node.name), unique in the fleet. Required.
	Node string
	// Address is the node's gRPC address as clients reach it, shown in
	// ListNodes.
	Address string
	// ServerVersion is the actiond release, shown in ListNodes.
	ServerVersion string
	// Lease is how long a lease and a heartbeat live without renewal
	// (fleet.lease); it is the fleet's setting, the same on every node. A
	// node renews every Lease/3 and gives a stream up after 2*Lease/3
	// without a successful renewal. It defaults to 10s; at least 1s.
	Lease time.Duration
	// MaxStreams caps the streams this node owns
	// (fleet.max_streams_per_node). It defaults to 0: no cap beyond the
	// fair share plus one that every node keeps to.
	MaxStreams int
	// MovesPerMinute limits how many streams this node gives away per
	// minute while draining or over its cap (fleet.moves_per_minute), in a
	// bucket that holds a minute's worth. Streams of a dead node are not
	// limited. It defaults to 30.
	MovesPerMinute int
	// Replicas is the number of JetStream replicas of the fleet's buckets:
	// 1 on a single NATS server, 3 on a cluster. It defaults to 1.
	Replicas int
	// Handler starts and stops streams. Required.
	Handler Handler
	// Load, if set, reports the node's load for its heartbeat.
	Load func() Load
	// Status, if set, describes each stream this node owns (JSON, e.g. a
	// protojson StreamStatus) for its heartbeat; other nodes read it with
	// StreamStatus. It is called once per heartbeat with the owned streams,
	// on the renewing goroutine: it must be quick.
	Status func(streams []string) map[string]json.RawMessage
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Previous makes the node write its records exactly as the previous
	// minor release did (see FormatVersion): for the tests of a fleet in
	// the middle of a rolling upgrade. Leave it unset.
	Previous bool
}

var bucketSafe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
var nodeSafe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,253}$`)

func (c *Config) setDefaults() error {
	if c.Fleet == "" {
		c.Fleet = "actiond"
	}
	if c.Lease == 0 {
		c.Lease = 10 * time.Second
	}
	if c.MovesPerMinute == 0 {
		c.MovesPerMinute = 30
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.Conn == nil:
		return fmt.Errorf("fleet: no NATS connection")
	case c.Handler == nil:
		return fmt.Errorf("fleet: no handler")
	case !bucketSafe.MatchString(c.Fleet):
		return fmt.Errorf("'fleet.name' %q: use 1 to 64 letters, digits, '-' or '_'", c.Fleet)
	case !nodeSafe.MatchString(c.Node):
		return fmt.Errorf("'node.name' %q: use 1 to 253 letters, digits, '.', '-' or '_'", c.Node)
	case c.Lease < time.Second:
		return fmt.Errorf("'fleet.lease' %s: must be at least 1s", c.Lease)
	case c.MaxStreams < 0:
		return fmt.Errorf("'fleet.max_streams_per_node' %d: must be 0 (unbounded) or more", c.MaxStreams)
	case c.MovesPerMinute < 0:
		return fmt.Errorf("'fleet.moves_per_minute' %d: must be positive", c.MovesPerMinute)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("fleet replicas %d: must be 1 to 5", c.Replicas)
	}
	return nil
}

// NodesBucket and LeasesBucket are the KV buckets of fleet name.
func NodesBucket(name string) string  { return name + "-fleet-nodes" }
func LeasesBucket(name string) string { return name + "-fleet-leases" }

// drainSubject is where node's drain requests go.
func drainSubject(fleet, node string) string {
	return "actiond.fleet." + fleet + ".drain." + streamKey(node)
}
