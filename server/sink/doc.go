// Package sink pushes events from the event log to other systems: MQTT
// brokers and webhooks, at least once.
//
// Each sink is a durable JetStream consumer of the log named after the
// sink, so its position (the last event its receiver acknowledged) lives in
// JetStream and survives restarts, and adding a sink again under the same
// name resumes where it was. A sink holds one event at a time
// (MaxAckPending 1): events reach the receiver in log order, so in order
// per stream, and an event is acknowledged to the log only once the
// receiver acknowledged it (MQTT QoS 1 PUBACK, HTTP 2xx). Failed
// deliveries are retried with exponential backoff and full jitter, per
// sink, on the sink's own goroutine: a slow or dead receiver never holds
// up another sink, a subscriber or ingest.
//
// In a fleet the sink is one consumer for all nodes, and it drops the late
// events of a replaced owner as the hub does: an event whose fence is below
// the highest seen for its stream earlier in the log is acknowledged, not
// delivered (the highest fences are kept beside the position, so every
// node of the fleet knows them).
//
// The package must not append to the log nor change the stream's
// configuration: it only reads, through its consumers.
package sink
