// Package fleet makes many actiond nodes share one NATS JetStream: every
// camera stream is owned by exactly one live node, by lease.
//
// Three things live in JetStream KV buckets named after the fleet:
// heartbeats (one key per node, expiring after one lease), leases (one key
// per stream, claimed with create-if-absent, renewed with compare-and-set on
// the revision, expiring after one lease) and nothing else; the stream
// registry is the event log's. The revision at which a lease was claimed is
// the fencing token that every event of that ownership carries: it grows
// with every new owner, so a reader that has seen a newer fence for a stream
// drops the older owner's late events (Fences).
//
// Placement is rendezvous hashing of the stream name over the live nodes
// that are not draining, with a per-node cap and stickiness: a stream moves
// only when its owner dies, drains or is over its cap. The cap is the
// smaller of fleet.max_streams_per_node and the node's fair share plus one
// (ceil(streams/nodes)+1), so nodes that start one after another, or join
// later, still share the streams. Every node computes
// the same plan from the same view and acts only for itself (claims what
// the plan gives it, sheds what it must give away), so there is no leader.
//
// The package knows nothing of cameras or decoding: it tells its Handler to
// Acquire or Release a stream by name. It must not publish events or touch
// the stream registry itself.
package fleet
