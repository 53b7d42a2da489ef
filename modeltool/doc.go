// Package modeltool is what `actiond model` does: build PP-TSMv2 (float
// or int8) from a checkpoint or seeded weights, fetch the official
// checkpoint, describe a model file, and benchmark a model or its feature
// cache halves.
//
// It is for the command line and benchmarks only: the server must not
// import it.
package modeltool
