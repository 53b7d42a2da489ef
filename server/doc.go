// Package server is the actiond process: the configuration (Config), the
// streams (StreamManager, one goroutine per stream around an
// ingest.Stream), the one inference Scheduler that batches every stream's
// windows through the model, the Hub that turns results into numbered
// events (actions by hysteresis) and fans them out to subscribers, the
// gRPC services, auth, metrics, health, the state file and pprof (Server).
// With nats.url the server is a node of a fleet (server/fleet): the fleet
// tells the StreamManager which streams to play (Acquire, Release), and the
// Hub sends subscribers the shared log's events of every node.
//
// It composes classify, engine, ingest, models and proto; nothing imports
// it but cmd and demo. It must not talk to cameras or run models itself
// (ingest and engine do), and it holds no command-line helpers: model
// tools are in modeltool, the progress line in progress, the demo in demo.
package server
