// Package eventlog is actiond's durable event log: one NATS JetStream
// stream (ACTIOND_EVENTS) that every event is appended to before anyone
// sees it, read back by position for resume, history and sinks.
//
// By default it runs a NATS server inside the process, with JetStream on a
// file store in the data directory, reached in-process (no listener unless
// one is configured); or it connects to an external NATS. It knows events,
// subjects and retention; it must not know about streams, the hub or gRPC.
package eventlog
