// Package server is the actiond process and its compositions: model loading,
// clip classification (shared by the CLI and, later, the Classify RPC), and
// the terminal progress display.
//
// It composes engine, ingest and models; nothing imports it but cmd.
package server
