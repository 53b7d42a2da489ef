// Package demo is the first-run demo: `actiond demo` (the motion model on
// synthetic scenes, labels checked) and `actiond serve --demo` (a
// simulated camera and the instructions to watch its actions).
//
// It uses only the server's exported API, as any program embedding the
// server would, and must not be imported by the server.
package demo
