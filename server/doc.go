// Package server is the actiond process and its compositions: the
// configuration (Config), the streams (StreamManager, one goroutine per
// stream around an ingest.Stream), the one inference Scheduler that batches
// every stream's windows through the model, the Hub that turns results into
// numbered events (actions by hysteresis) and fans them out to subscribers,
// the gRPC services, auth, metrics and health (Server), clip classification
// shared by `actiond classify` and the Classify RPC (Classifier), the demo,
// and the terminal progress display. With nats.url the server is a node of
// a fleet (server/fleet): the fleet tells the StreamManager which streams
// to play (Acquire, Release), and the Hub sends subscribers the shared
// log's events of every node.
//
// It composes engine, ingest, models and proto; nothing imports it but cmd.
// It must not talk to cameras or run models itself: ingest and engine do.
package server
